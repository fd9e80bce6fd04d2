"""The scorecard's fine-tuning section: base against tuned on the same items, per-tag changes, cost, break-even."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from assay.economics.training import BreakEven
from assay.report.formats import ms, pct, signed_points, usd_text
from assay.suites.finetune_compare import FinetuneComparison

__all__ = ["FinetuneView", "break_even_sentence", "build_finetune_view", "slice_changes_svg"]


@dataclass
class FinetuneView:
    run_id: str
    suite: str
    rows: list[dict[str, str]]  # role, name, score, cost, p50, p95
    verdict: str  # the one sentence: tuned − base with its CI and p-value
    good: bool | None  # True: significantly better; False: significantly worse; None: not separated
    slices: list[dict[str, str]]  # tag, n, base, tuned, diff, p, verdict
    money: list[str]  # training cost and break-even, in words
    plots: dict[str, str] = field(default_factory=dict)


def _verdict(c: FinetuneComparison) -> tuple[str, bool | None]:
    lo, hi = c.ci95
    how = (
        f"exact McNemar p = {c.p_value:.2g}: {c.tuned_only} items only the tuned model got right, {c.base_only} "
        "only the base"
        if c.test == "mcnemar_exact"
        else f"paired bootstrap p = {c.p_value:.2g}"
    )
    head = f"{c.tuned} against {c.base} on {c.suite}: {signed_points(c.diff)} points "
    head += f"(95% CI {signed_points(lo)} to {signed_points(hi)}, n = {c.n}; {how})."
    if not c.significant:
        return head + " Not separated at this many items.", None
    return head, c.diff > 0


def _money(c: FinetuneComparison) -> list[str]:
    out = []
    if c.training_usd is not None:
        out.append(f"Training cost {usd_text(c.training_usd)} ({c.training_source}).")
    be = c.breakeven
    if be is None:
        if c.training_usd is None and c.training_source:
            out.append(f"Training cost unknown ({c.training_source}), so no break-even.")
        elif c.training_usd is None:
            out.append("No training cost given (--training-usd or --training-run), so no break-even.")
        return out
    out.append(break_even_sentence(be, c.base, "as measured"))
    return out


def _duration(months: Decimal) -> str:
    days = months * 30
    if days < Decimal(1) / 24:
        return "under an hour"
    return f"{days * 24:.0f} hours" if days < 1 else f"{days:.1f} days" if months < 1 else f"{months:.1f} months"


def break_even_sentence(be: BreakEven, against: str, how: str) -> str:
    """The break-even in words, for the terminal and the page: the saving, the volume that repays, the payback."""
    if be.break_even_monthly_requests is None:
        return (
            f"Never pays back: the tuned model costs {usd_text(-be.saving_per_request_usd)} more a request "
            f"than {against} ({how})."
        )
    text = (
        f"Saves {usd_text(be.saving_per_request_usd)} a request against {against} ({how}); repays the training "
        f"within {be.months} months from {be.break_even_monthly_requests:,.0f} requests a month"
    )
    if be.payback_months is not None and be.monthly_requests is not None:
        text += f"; at the workload's {be.monthly_requests:,.0f} a month, in {_duration(be.payback_months)}"
    return text + "."


def build_finetune_view(c: FinetuneComparison) -> FinetuneView:
    rows = []
    for role, name, score in (("base", c.base, c.base_score), ("tuned", c.tuned, c.tuned_score)):
        lat = c.latency_ms[name]
        rows.append(
            {
                "role": role,
                "name": name,
                "score": pct(score),
                "cost": usd_text(c.cost_per_request_usd[name]),
                "p50": f"{ms(lat['p50'])} ms",
                "p95": f"{ms(lat['p95'])} ms",
            }
        )
    slices = [
        {
            "tag": s.tag,
            "n": str(s.n),
            "base": pct(s.base),
            "tuned": pct(s.tuned),
            "diff": signed_points(s.diff),
            "p": f"{s.p_holm:.2g}",
            "verdict": s.verdict,
        }
        for s in sorted(c.slices, key=lambda s: s.diff)
    ]
    verdict, good = _verdict(c)
    view = FinetuneView(c.run_id, c.suite, rows, verdict, good, slices, _money(c))
    if c.slices:
        view.plots["slices"] = slice_changes_svg(c)
    return view


def slice_changes_svg(c: FinetuneComparison) -> str:
    """Tuned − base per tag, worst first: red where it regressed, green where it improved (Holm, 5%)."""
    import matplotlib.pyplot as plt

    from assay.report.plots import _STYLE, _svg

    rows = sorted(c.slices, key=lambda s: s.diff)
    colour: dict[str, Any] = {"regressed": "#dc2626", "improved": "#059669", "unchanged": "#94a3b8"}
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(3.9, 0.45 + 0.28 * len(rows)))
        y = list(range(len(rows)))
        ax.barh(y, [s.diff * 100 for s in rows], color=[colour[s.verdict] for s in rows], height=0.6)
        ax.set_yticks(y, [f"{s.tag} (n={s.n})" for s in rows], fontsize=8)
        ax.axvline(0, color="#334155", linewidth=0.8)
        ax.set_xlabel("tuned − base, points")
        fig.tight_layout()
        return _svg(fig)
