"""The scorecard's load section: rates, goodput, service vs response time, lag, the rate-limit verdict, timelines."""

from __future__ import annotations

from dataclasses import dataclass, field

from assay.model import Record
from assay.stats import LoadSummary, summarize_load, timeline
from assay.store import RunInfo

__all__ = ["LoadView", "build_load_view"]


@dataclass
class LoadView:
    mode: str  # "open loop, poisson at 20/s" or "closed loop, 8 in flight"
    slo: dict[str, float]
    summaries: dict[str, LoadSummary]
    plots: dict[str, str] = field(default_factory=dict)


def _mode(params: dict[str, object]) -> str:
    if params.get("rate") or params.get("arrival") in ("step", "trace"):
        cap = f", at most {params['max_in_flight']} in flight" if params.get("max_in_flight") else ""
        rate = f" at {params['rate']:g}/s" if isinstance(params.get("rate"), int | float) else ""
        return f"open loop, {params.get('arrival')} arrivals{rate}{cap}"
    return f"closed loop, {params.get('concurrency')} in flight"


def build_load_view(run: RunInfo, records: list[Record], colours: dict[str, str]) -> LoadView:
    from assay.report import plots

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
    view = LoadView(_mode(params), slo, summaries)
    lines = {t: timeline(rs, 1.0) for t, rs in by_target.items()}
    view.plots["timeline"] = plots.load_timeline_svg(lines, colours)
    return view
