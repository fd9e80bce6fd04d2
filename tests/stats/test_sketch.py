"""The quantile sketch: within its relative error of numpy's exact quantiles, mergeable, small."""

from __future__ import annotations

import numpy as np
import pytest

from assay.stats.sketch import Sketch


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "exponential"])
def test_quantiles_are_within_the_relative_error(dist: str) -> None:
    rng = np.random.default_rng(0)
    xs = {
        "lognormal": rng.lognormal(5, 1, 200_000),
        "uniform": rng.uniform(1, 5000, 200_000),
        "exponential": rng.exponential(300, 200_000),
    }[dist]
    s = Sketch(0.01).extend(xs.tolist())
    for q in (0.01, 0.5, 0.9, 0.99, 0.999):
        exact = float(np.quantile(xs, q, method="lower"))
        assert s.quantile(q) == pytest.approx(exact, rel=0.021), q  # bucket error plus a rank step
    assert len(s.counts) < 2000, "memory follows the range of values, not their number"


def test_sketches_merge_like_one() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(4, 1, 50_000), rng.lognormal(6, 0.5, 50_000)
    merged = Sketch().extend(a.tolist()).merge(Sketch().extend(b.tolist()))
    whole = Sketch().extend(np.concatenate([a, b]).tolist())
    assert merged.counts == whole.counts and merged.count == 100_000
    assert merged.quantile(0.9) == whole.quantile(0.9)


def test_edges() -> None:
    assert Sketch().quantile(0.5) is None
    s = Sketch().extend([0.0, 0.0, 5.0])
    assert s.quantile(0.0) == 0.0 and s.quantile(1.0) == pytest.approx(5.0, rel=0.01)
    with pytest.raises(ValueError):
        Sketch(0.01).merge(Sketch(0.02))
