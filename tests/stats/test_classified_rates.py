"""Rates read through an imperfect classifier: the interval covers the true rate, Wilson's does not."""

from __future__ import annotations

import numpy as np
import pytest

from assay.stats import classified_rate_ci, kappa_ci, wilson


def _trial(rng: np.random.Generator, p: float, se: float, sp: float, n: int, m: int) -> tuple[int, tuple, tuple]:
    """n items with true rate p classified with (se, sp); the classifier validated on m positives and m negatives."""
    truth = rng.random(n) < p
    said = np.where(truth, rng.random(n) < se, rng.random(n) >= sp)
    tp = int((rng.random(m) < se).sum())
    tn = int((rng.random(m) < sp).sum())
    return int(said.sum()), (tp, m - tp), (tn, m - tn)


@pytest.mark.parametrize(("p", "se", "sp"), [(0.1, 0.85, 0.95), (0.3, 0.9, 0.9), (0.05, 0.95, 0.97)])
def test_interval_covers_the_true_rate_where_wilson_misses(p: float, se: float, sp: float) -> None:
    rng = np.random.default_rng(11)
    covered = wilson_covered = 0
    trials = 400
    for _ in range(trials):
        k, hits, rejections = _trial(rng, p, se, sp, n=300, m=400)
        lo, hi = classified_rate_ci(k, 300, hits, rejections)
        covered += lo <= p <= hi
        wlo, whi = wilson(k, 300)
        wilson_covered += wlo <= p <= whi
        assert lo <= wlo and hi >= whi  # never narrower than the interval that trusts the classifier
    assert covered / trials >= 0.93
    assert wilson_covered / trials < covered / trials - 0.1  # the observed rate is biased by q = p*Se + (1-p)(1-Sp)


def test_a_perfect_classifier_leaves_wilson_alone_and_the_draws_are_seeded() -> None:
    big = 10**6
    lo, hi = classified_rate_ci(30, 200, (big, 0), (big, 0))
    assert (lo, hi) == pytest.approx(wilson(30, 200), abs=0.01)
    assert classified_rate_ci(30, 200, (90, 10), (95, 5)) == classified_rate_ci(30, 200, (90, 10), (95, 5))


def test_kappa_interval_covers_kappa_as_often_as_it_claims() -> None:
    # True cells: tp .3, fp .05, fn .05, tn .6 -> kappa = (.9 - (.35*.35 + .65*.65)) / (1 - .545) = .7802
    cells = np.array([0.3, 0.05, 0.05, 0.6])
    truth = (0.9 - (0.35 * 0.35 + 0.65 * 0.65)) / (1 - (0.35 * 0.35 + 0.65 * 0.65))
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(300):
        tp, fp, fn, tn = rng.multinomial(400, cells)
        lo, hi = kappa_ci(int(tp), int(fp), int(fn), int(tn), draws=2000)
        hits += lo <= truth <= hi
    assert 0.92 <= hits / 300 <= 0.985
