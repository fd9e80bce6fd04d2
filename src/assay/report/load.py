"""The scorecard's load section: rates, goodput, service vs response time, lag, the rate-limit verdict,
timelines, and for a run that is a step of a `--sweep`, the whole sweep's curve and each target's knee."""

from __future__ import annotations

from dataclasses import dataclass, field

from assay.model import Record
from assay.stats import LoadSummary, summarize_load, timeline
from assay.store import RunInfo, Store

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
    summaries: dict[str, LoadSummary]
    plots: dict[str, str] = field(default_factory=dict)
    sweep: dict[str, list[SweepStep]] = field(default_factory=dict)  # target -> steps by rate
    knees: dict[str, float | None] = field(default_factory=dict)  # highest sustained rate per target


def _mode(params: dict[str, object]) -> str:
    if params.get("rate") or params.get("arrival") in ("step", "trace"):
        cap = f", at most {params['max_in_flight']} in flight" if params.get("max_in_flight") else ""
        rate = f" at {params['rate']:g}/s" if isinstance(params.get("rate"), int | float) else ""
        return f"open loop, {params.get('arrival')} arrivals{rate}{cap}"
    return f"closed loop, {params.get('concurrency')} in flight"


def _summaries(run: RunInfo, records: list[Record]) -> tuple[dict[str, LoadSummary], dict[str, list[Record]]]:
    params = run.params
    slo = {k: float(v) for k, v in (params.get("slo") or {}).items()}
    by_target: dict[str, list[Record]] = {}
    for r in records:
        by_target.setdefault(r.target, []).append(r)
    schedule_s = float(params.get("duration_s") or 0) or max(
        ((max(r.done_ns for r in rs if r.done_ns) - min(r.intended_ns or r.sent_ns for r in rs)) / 1e9)
        for rs in by_target.values()
    )
    summaries = {t: summarize_load(t, rs, len({r.item_id for r in rs}), schedule_s, slo) for t, rs in by_target.items()}
    return summaries, by_target


def sweep_steps(store: Store, sweep_id: str) -> dict[str, list[SweepStep]]:
    """Every step of one sweep, per target, by offered rate, judged as `assay load --sweep` judged it."""
    from assay.suites.load import sustains

    steps: dict[str, list[SweepStep]] = {}
    for run in store.sweep_runs(sweep_id):
        records = store.records(run.run_id)
        if not records:
            continue
        summaries, _ = _summaries(run, records)
        for t, s in summaries.items():
            ttft = s.latency["ttft_ms"]
            steps.setdefault(t, []).append(
                SweepStep(
                    float(run.params["rate"]), s.goodput_rps, ttft.get("p50"), ttft.get("p99"), sustains(s), run.run_id
                )
            )
    return {t: sorted(v, key=lambda p: p.rate_rps) for t, v in steps.items()}


def build_load_view(run: RunInfo, store: Store, colours: dict[str, str]) -> LoadView:
    from assay.report import plots

    summaries, by_target = _summaries(run, store.records(run.run_id))
    slo = {k: float(v) for k, v in (run.params.get("slo") or {}).items()}
    view = LoadView(_mode(run.params), slo, summaries)
    lines = {t: timeline(rs, 1.0) for t, rs in by_target.items()}
    view.plots["timeline"] = plots.load_timeline_svg(lines, colours)
    sweep_id = run.params.get("sweep_id")
    if isinstance(sweep_id, str):
        view.sweep = sweep_steps(store, sweep_id)
        view.knees = {t: max((p.rate_rps for p in st if p.sustained), default=None) for t, st in view.sweep.items()}
        view.plots["sweep"] = plots.sweep_svg(view.sweep, view.knees, colours)
    return view
