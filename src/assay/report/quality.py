"""The scorecard's quality section: scores with CIs, significant differences, slices, quality per dollar."""

from __future__ import annotations

from dataclasses import dataclass, field

from assay.report.formats import pct_with_ci, points
from assay.suites.quality_summary import EvalSummary, Slice

__all__ = ["QualityView", "build_quality_view"]


@dataclass
class QualityView:
    run_id: str
    suites: list[str]
    targets: list[str]
    cells: dict[str, dict[str, str]]  # target -> suite -> "84.0 (79.5–90.7)"
    unscored: dict[str, int]
    findings: list[str]  # significant paired differences, in words
    slices: list[tuple[str, str, dict[str, str]]]  # (suite, tag, target -> text)
    disagreements: int
    plots: dict[str, str] = field(default_factory=dict)


def build_quality_view(summary: EvalSummary, colours: dict[str, str]) -> QualityView:
    from assay.report import plots

    cells = {t: {s: pct_with_ci(sc.score, sc.ci95) for s, sc in summary.scores[t].items()} for t in summary.targets}
    findings = []
    for c in summary.comparisons:
        if c.p_holm < 0.05:
            better, worse = (c.a, c.b) if c.diff > 0 else (c.b, c.a)
            findings.append(f"{c.suite}: {better} beats {worse} by {points(c.diff)} points (p = {c.p_holm:.2g}, Holm)")
    tied = [c for c in summary.comparisons if c.p_holm >= 0.05]
    if tied:
        findings.append(
            "No significant difference: "
            + "; ".join(f"{c.suite} {c.a} vs {c.b} (p = {c.p_holm:.2g})" for c in tied[:4])
            + ("…" if len(tied) > 4 else "")
        )

    # The slices worth a reader's eye: enough items to mean something, widest spread between targets first.
    def spread(s: Slice) -> float:
        vals = [v for n, v, _ in s.scores.values() if v is not None]
        return max(vals) - min(vals) if len(vals) > 1 else 0.0

    sized = [s for s in summary.slices if min((n for n, _, _ in s.scores.values()), default=0) >= 5]
    chosen = sorted(sized, key=spread, reverse=True)[:10]
    slices = [
        (s.suite, s.tag, {t: pct_with_ci(v, ci) + f" n={n}" for t, (n, v, ci) in s.scores.items()}) for s in chosen
    ]
    view = QualityView(
        summary.run_id,
        summary.suites,
        summary.targets,
        cells,
        {t: sum(sc.unscored for sc in summary.scores[t].values()) for t in summary.targets},
        findings,
        slices,
        len(summary.disagreements),
    )
    view.plots = {
        "scores": plots.quality_bars_svg(summary, colours),
        "value": plots.quality_cost_svg(summary, colours),
    }
    return view
