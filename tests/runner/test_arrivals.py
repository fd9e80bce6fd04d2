"""Arrival schedules: the right statistics, always bounded, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from assay.runner.arrivals import Arrivals, schedule


def test_poisson_gaps_are_exponential_by_a_goodness_of_fit_test() -> None:
    times = schedule(Arrivals("poisson", rate=50, seed=1), duration_s=200)
    gaps = np.diff(times)
    assert len(times) == pytest.approx(50 * 200, rel=0.03)
    # Kolmogorov-Smirnov against Exp(mean 1/50): a wrong shape or rate fails at this sample size.
    assert sps.kstest(gaps, "expon", args=(0, 1 / 50)).pvalue > 0.01
    assert sps.kstest(gaps, "expon", args=(0, 1 / 40)).pvalue < 1e-6
    # Counts per second are Poisson: variance close to the mean.
    counts = np.bincount(np.floor(times).astype(int), minlength=200)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.15)


def test_gamma_burstiness_is_the_coefficient_of_variation() -> None:
    for cv in (0.5, 2.0):
        gaps = np.diff(schedule(Arrivals("gamma", rate=20, burstiness=cv, seed=2), requests=20_000))
        assert gaps.mean() == pytest.approx(1 / 20, rel=0.05)
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.07)


def test_constant_ramp_step_and_trace() -> None:
    assert schedule(Arrivals("constant", rate=4), duration_s=1) == [0, 0.25, 0.5, 0.75]
    assert len(schedule(Arrivals("constant", rate=4), duration_s=10, requests=7)) == 7
    ramp = schedule(Arrivals("ramp", rate=10, rate_end=30), duration_s=10)
    assert len(ramp) == 200  # the mean of 10 and 30 requests/s, for 10 s
    first, last = ramp[1] - ramp[0], ramp[-1] - ramp[-2]  # the instantaneous rate at each end
    assert first == pytest.approx(1 / 10, rel=0.05) and last == pytest.approx(1 / 30, rel=0.05)
    step = schedule(Arrivals("step", steps=((2, 1), (1, 10), (2, 1))))
    assert len(step) == 2 + 10 + 2 and step[2] == 2.0 and step[-1] == pytest.approx(4.0)
    assert schedule(Arrivals("trace", times=(0.0, 0.5, 0.5, 2.0))) == [0.0, 0.5, 0.5, 2.0]


def test_schedules_are_seeded_and_bounded() -> None:
    a = schedule(Arrivals("poisson", rate=10, seed=7), duration_s=5)
    assert a == schedule(Arrivals("poisson", rate=10, seed=7), duration_s=5)
    assert a != schedule(Arrivals("poisson", rate=10, seed=8), duration_s=5)
    assert all(t < 5 for t in a) and a == sorted(a)
    with pytest.raises(ValueError, match="must end by itself"):
        schedule(Arrivals("poisson", rate=10))
    with pytest.raises(ValueError, match="rate above 0"):
        Arrivals("constant", rate=0)
    with pytest.raises(ValueError, match="increasing order"):
        Arrivals("trace", times=(1.0, 0.5))
