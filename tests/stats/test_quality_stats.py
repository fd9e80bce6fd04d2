"""Quality statistics against scipy and statsmodels reference values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from assay.stats import holm, items_needed, mcnemar_exact, mean_ci, paired_bootstrap, wilson


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (9, 10), (10, 10), (170, 200), (1, 1319), (500, 1000)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert wilson(k, n) == pytest.approx((lo, hi), abs=1e-12)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (5, 1), (12, 30), (40, 41), (3, 17)])
def test_exact_mcnemar_matches_statsmodels(b: int, c: int) -> None:
    ref = mcnemar([[50, b], [c, 50]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(ref, abs=1e-12)
    if b + c:
        assert mcnemar_exact(b, c) == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, abs=1e-12)


def test_holm_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 8)).tolist()
        assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)


def test_items_needed_agrees_with_the_normal_approximation() -> None:
    from statsmodels.stats.power import NormalIndPower

    # Independent targets at 80% vs 78%: Connor's paired formula with ψ from independence.
    n = items_needed(0.02, base=0.80)
    psi = 0.8 * 0.22 + 0.78 * 0.2
    z = sps.norm.ppf(0.975) * np.sqrt(psi) + sps.norm.ppf(0.8) * np.sqrt(psi - 0.0004)
    assert n == int(np.ceil(z**2 / 0.0004))
    assert 6000 < n < 7000  # two points is expensive: thousands of items
    # Correlated models disagree on fewer items and need fewer of them.
    assert items_needed(0.02, base=0.80, discordant=0.08) < n / 3
    # An unpaired two-sample test of the same effect needs more items than the paired one at small ψ.
    h = 2 * (np.arcsin(0.8**0.5) - np.arcsin(0.78**0.5))
    unpaired = NormalIndPower().solve_power(effect_size=h, power=0.8, alpha=0.05, nobs1=None)
    assert items_needed(0.02, base=0.80, discordant=0.08) < unpaired
    with pytest.raises(ValueError, match="rate difference"):
        items_needed(2.0)


def test_paired_bootstrap_finds_real_differences_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.0, 300)
    diff, p, (lo, hi) = paired_bootstrap(a, a - 0.05 + rng.normal(0, 0.01, 300))
    assert diff == pytest.approx(0.05, abs=0.005) and p < 0.001 and lo < diff < hi
    same = paired_bootstrap(a, a + rng.normal(0, 0.05, 300))
    assert same[1] > 0.05
    # Agrees with a paired t-test on well-behaved data.
    b = a + rng.normal(0.01, 0.05, 300)
    assert paired_bootstrap(a, b)[1] == pytest.approx(sps.ttest_rel(a, b).pvalue, abs=0.03)


def test_mean_ci_covers_the_mean() -> None:
    x = np.random.default_rng(1).uniform(0, 1, 200)
    lo, hi = mean_ci(x)  # type: ignore[misc]
    assert lo < x.mean() < hi and hi - lo < 0.12
    assert mean_ci([]) is None and mean_ci([0.5]) == (0.5, 0.5)


def test_items_needed_command() -> None:
    import subprocess

    from tests.conftest import ASSAY

    ok = subprocess.run([ASSAY, "items-needed", "--diff", "0.02"], capture_output=True, text=True)
    assert ok.returncode == 0 and "6,513 items to detect 2 points" in ok.stdout
    args = [ASSAY, "items-needed", "--diff", "0.5", "--discordant", "0.1"]
    bad = subprocess.run(args, capture_output=True, text=True)
    assert bad.returncode == 2 and "cannot produce a difference" in bad.stderr


@pytest.mark.parametrize("n", [1, 3, 12, 37, 400])
def test_wilson_bounds_are_exact_at_the_edges(n: int) -> None:
    # A plot draws rate - low as an error bar; 1e-17 above zero made matplotlib refuse it.
    assert wilson(0, n)[0] == 0.0
    assert wilson(n, n)[1] == 1.0
    assert wilson(0, n)[1] < 1.0 and wilson(n, n)[0] > 0.0
