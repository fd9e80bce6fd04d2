"""The scorecard's load section: rates, goodput, service vs response time, lag, the rate-limit verdict,
timelines, and for a run that is a step of a `--sweep`, the whole sweep's curve and each target's knee."""

from __future__ import annotations

from dataclasses import dataclass, field

from assay.config import SLO
from assay.stats import TargetSummary
from assay.store import RunInfo, Store
from assay.suites.load import load_summaries, sustains

__all__ = ["LoadView", "SweepStep", "build_load_view"]


@dataclass
class SweepStep:
    rate_rps: float
    goodput_rps: float
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    sustained: bool
    run_id: str


@dataclass
class LoadView:
    mode: str  # "open loop, poisson at 20/s" or "closed loop, 8 in flight"
    slo: dict[str, float]
    summaries: dict[str, TargetSummary]
    plots: dict[str, str] = field(default_factory=dict)
    sweep: dict[str, list[SweepStep]] = field(default_factory=dict)  # target -> steps by rate
    knees: dict[str, float | None] = field(default_factory=dict)  # highest sustained rate per target


def _mode(params: dict[str, object]) -> str:
    if params.get("rate") or params.get("arrival") in ("step", "trace"):
        cap = f", at most {params['max_in_flight']} in flight" if params.get("max_in_flight") else ""
        rate = f" at {params['rate']:g}/s" if isinstance(params.get("rate"), int | float) else ""
        return f"open loop, {params.get('arrival')} arrivals{rate}{cap}"
    return f"closed loop, {params.get('concurrency')} in flight"


def sweep_steps(store: Store, sweep_id: str) -> dict[str, list[SweepStep]]:
    """Every step of one sweep, per target, by offered rate, judged as `assay load --sweep` judged it."""
    steps: dict[str, list[SweepStep]] = {}
    for run in store.sweep_runs(sweep_id):
        for t, s in load_summaries(store, run.run_id).summaries.items():
            ttft = s.ttft.p
            steps.setdefault(t, []).append(
                SweepStep(float(run.params["rate"]), s.goodput_rps, ttft["p50"], ttft["p99"], sustains(s), run.run_id)
            )
    return {t: sorted(v, key=lambda p: p.rate_rps) for t, v in steps.items()}


def build_load_view(run: RunInfo, store: Store, colours: dict[str, str]) -> LoadView:
    from assay.report import plots

    result = load_summaries(store, run.run_id, with_timelines=True)
    slo = SLO.model_validate(run.params.get("slo") or {})
    view = LoadView(_mode(run.params), slo.bounds, result.summaries)
    view.plots["timeline"] = plots.load_timeline_svg(result.timelines or {}, colours)
    sweep_id = run.params.get("sweep_id")
    if isinstance(sweep_id, str):
        view.sweep = sweep_steps(store, sweep_id)
        view.knees = {t: max((p.rate_rps for p in st if p.sustained), default=None) for t, st in view.sweep.items()}
        view.plots["sweep"] = plots.sweep_svg(view.sweep, view.knees, colours)
    return view
