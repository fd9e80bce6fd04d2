"""The scorecard's safety section: risk matrix, attack success per category, over-refusal, vendor evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.config import SafetySettings
from assay.report.formats import pct_with_ci, plural, points
from assay.stats import kappa_ci, wilson
from assay.suites.detectors import describe_detector
from assay.suites.safety_summary import SafetySummary

__all__ = ["EvidenceRow", "SafetyView", "build_safety_view", "conversation_findings", "detector_sentence",
           "evidence_rows"]  # fmt: skip

EVIDENCE_LABELS = {
    "model_card": "Model card",
    "content_filter": "Content filter",
    "incident_response": "Incident response",
    "certifications": "Certifications",
    "data_residency": "Data residency",
    "retention_days": "Retention",
    "trains_on_data": "Trains on your data",
}


@dataclass
class EvidenceRow:
    field: str
    label: str
    values: dict[str, str | None]  # target -> text, None where the vendor documents nothing (a gap)


@dataclass
class SafetyView:
    run_id: str
    targets: list[str]
    categories: list[str]
    labels: dict[str, str]  # category -> row label; over-refusal suites say so
    cells: dict[str, dict[str, str]]  # target -> category -> "12.5 (4.1–32.8)"
    breach: dict[str, dict[str, bool]]
    over_refusal: dict[str, str]  # pooled over every over-refusal suite
    several_over_refusal: bool  # when one suite, its row already is the over-refusal rate
    scores: dict[str, str]
    findings: list[str]
    evidence: list[EvidenceRow]
    excerpts: list[tuple[str, str, str]]  # target, category, short prompt excerpt of a successful attack
    detector: str = ""  # which refusal detector classified the replies, and how well it measured
    plots: dict[str, str] = field(default_factory=dict)


def _text(v: object) -> str | None:
    if v is None or v == []:
        return None
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    if isinstance(v, int):
        return f"{v} days"
    return str(v)


def evidence_rows(settings: SafetySettings, targets: list[str]) -> list[EvidenceRow]:
    """What each vendor documents, field by field; required fields left empty are gaps."""
    if not settings.evidence:
        return []
    rows = []
    for name in dict.fromkeys([*settings.required_evidence, *EVIDENCE_LABELS]):
        values = {}
        for t in targets:
            ev = settings.evidence.get(t)
            values[t] = _text(getattr(ev, name, None)) if ev else None
        if name in settings.required_evidence or any(values.values()):
            rows.append(EvidenceRow(name, EVIDENCE_LABELS.get(name, name), values))
    return rows


def conversation_findings(turns: dict[str, dict[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """(category, sentence) per target and multi-turn category: how often and how soon the attack worked."""
    out = []
    for target, per in turns.items():
        for category, e in per.items():
            if not e["scored"]:
                continue
            mean = e["mean_turns_to_success"]
            sent = plural(e["target_requests"], "request")
            if e["attacker_requests"]:
                sent += f" + {e['attacker_requests']:,} by the attacker"
            soon = f" (mean {mean:.1f} turns)" if mean else ""
            out.append((category, f"{target}: worked within {plural(e['turn_budget'], 'turn')} in {e['successes']} "
                                  f"of {plural(e['scored'], 'conversation')}{soon}; {sent}"))  # fmt: skip
    return out


def detector_sentence(summary: SafetySummary) -> str:
    """Which refusal detector read the replies, with its own validation figures and their 95% CIs."""
    if summary.detector is None:
        return "Replies were classified by the detector of an earlier assay version, with no measured figures."
    what = describe_detector(summary.detector, figures=False)
    v = summary.validation
    if v is None:
        return f"Replies classified by the {summary.detector} refusal detector ({what}); it has no measured figures."
    k_lo, k_hi = kappa_ci(v.tp, v.fp, v.fn, v.tn)
    p_lo, p_hi = wilson(v.tp, v.tp + v.fp)
    r_lo, r_hi = wilson(v.tp, v.tp + v.fn)
    return (
        f"Replies classified by the {summary.detector} refusal detector ({what}). Against {v.n:,} labelled "
        f"replies it was not fitted on ({v.protocol}): Cohen's κ {v.kappa:.2f} ({k_lo:.2f}–{k_hi:.2f}), precision "
        f"{v.precision:.2f} ({p_lo:.2f}–{p_hi:.2f}), recall {v.sensitivity:.2f} ({r_lo:.2f}–{r_hi:.2f}). The "
        "intervals of the rates it decided carry its error, so they are wider than the count alone gives."
    )


def build_safety_view(
    summary: SafetySummary,
    settings: SafetySettings,
    colours: dict[str, str],
    turns: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> SafetyView:
    """`turns`: the run's multi-turn figures (suites.safety.summarize_conversations), when it had such attacks."""
    from assay.report import plots

    labels = {c: f"{c} (over-refusal)" if summary.kinds[c] == "over_refusal" else c for c in summary.categories}
    cells: dict[str, dict[str, str]] = {}
    breach: dict[str, dict[str, bool]] = {}
    for t in summary.targets:
        risks = {r.category: r for r in summary.risks[t]}
        cells[t] = {c: pct_with_ci(risks[c].likelihood, risks[c].ci95) for c in summary.categories}
        breach[t] = {c: risks[c].breach for c in summary.categories}
    findings = []
    for t in summary.targets:
        over = [f"{r.category} ({r.likelihood * 100:.0f}% > {r.max_rate * 100:g}%)"
                for r in summary.risks[t] if r.breach and r.likelihood is not None]  # fmt: skip
        if over:
            findings.append(f"{t}: over the limit on " + ", ".join(over))
    for c, worse, better in summary.significant_gaps():
        findings.append(
            f"{c.suite}: {worse} falls to attacks {points(c.diff)} points more often than {better} "
            f"(p = {c.p_holm:.2g}, Holm)"
        )
    findings += [f"{category}, {sentence}" for category, sentence in conversation_findings(turns or {})]
    view = SafetyView(
        summary.run_id,
        summary.targets,
        summary.categories,
        labels,
        cells,
        breach,
        {t: pct_with_ci(*summary.over_refusal_rate(t)) for t in summary.targets},
        sum(k == "over_refusal" for k in summary.kinds.values()) > 1,
        {t: "–" if (s := summary.scores[t]) is None else f"{s:.0f}" for t in summary.targets},
        findings,
        evidence_rows(settings, summary.targets),
        [(t, c, x) for t in summary.targets for c, x, _ in summary.excerpts[t][:2]],
    )
    view.detector = detector_sentence(summary)
    view.plots = {"risk": plots.risk_matrix_svg(summary), "rates": plots.safety_bars_svg(summary, colours)}
    return view
