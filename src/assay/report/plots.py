"""Plots as inline SVG strings, so a report is one self-contained file."""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from assay.errors import ERROR_CLASSES
from assay.report.decision import sensitivity_order
from assay.report.formats import unit_interval, value_in_unit
from assay.stats import TargetSummary

__all__ = [
    "PALETTE",
    "cost_latency_svg",
    "cost_volume_svg",
    "error_bars_svg",
    "latency_cdf_svg",
    "load_timeline_svg",
    "pareto_svg",
    "quality_bars_svg",
    "quality_cost_svg",
    "tco_svg",
    "tornado_svg",
    "uptime_svg",
]

CDF_MAX_POINTS = 2000  # points per plotted CDF: finer than a reader can see, small enough for an inline SVG
PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"]
ERROR_COLOURS = {
    "rate_limited": "#f59e0b",
    "overloaded": "#fb923c",
    "server_error": "#ef4444",
    "client_error": "#a855f7",
    "timeout": "#64748b",
    "connection": "#0ea5e9",
    "stream_broken": "#ec4899",
    "bad_response": "#84cc16",
}

_STYLE: Any = {
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#94a3b8",
    "axes.labelcolor": "#334155",
    "xtick.color": "#475569",
    "ytick.color": "#475569",
    "axes.grid": True,
    "grid.color": "#e2e8f0",
    "grid.linewidth": 0.6,
    "svg.fonttype": "none",
    "svg.hashsalt": "assay",  # stable element ids: the same run renders the same file
}


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def latency_cdf_svg(summaries: Sequence[TargetSummary]) -> str:
    """TTFT, inter-token and E2E cumulative distributions, one line per target."""
    panels = (("ttft", "Time to first token"), ("itl", "Between tokens (ITL)"), ("e2e", "End-to-end latency"))
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.0))
        for ax, (metric, title) in zip(axes, panels, strict=True):
            for i, s in enumerate(summaries):
                dist = getattr(s, metric)
                if not dist.n:
                    continue
                if dist.exact and dist.n <= CDF_MAX_POINTS:
                    values = np.sort(np.asarray(dist.values))
                    y = np.arange(1, len(values) + 1) / len(values)
                else:  # a long run has millions of gaps; the curve needs a few thousand points
                    y = np.linspace(1 / CDF_MAX_POINTS, 1.0, CDF_MAX_POINTS)
                    values = np.array([dist.quantile(q) for q in y], dtype=float)
                ax.step(values, y, where="post", color=PALETTE[i % len(PALETTE)], lw=1.6, label=s.target)
            ax.set_title(title, fontsize=10, loc="left", color="#0f172a")
            ax.set_xlabel("milliseconds")
            ax.set_ylim(0, 1.02)
            ax.set_xlim(left=0)
            for q in (0.5, 0.9, 0.99):
                ax.axhline(q, color="#cbd5e1", lw=0.6, ls="--", zorder=0)
        axes[0].set_ylabel("share of requests")
        axes[1].set_ylabel("share of gaps")
        axes[2].legend(frameon=False, loc="lower right")
        fig.tight_layout()
        return _svg(fig)


def error_bars_svg(summaries: Sequence[TargetSummary]) -> str:
    """Failed attempts by class, as a share of attempts, one bar per target."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 0.5 + 0.42 * len(summaries)))
        names = [s.target for s in summaries][::-1]
        left = np.zeros(len(names))
        for cls in ERROR_CLASSES:
            shares = np.array([s.attempt_errors.get(cls, 0) / max(s.attempts, 1) * 100 for s in summaries][::-1])
            if shares.any():
                ax.barh(names, shares, left=left, color=ERROR_COLOURS[cls], label=cls.replace("_", " "), height=0.6)
                left += shares
        ax.set_xlabel("% of attempts failed")
        ax.set_xlim(0, max(1.0, float(left.max()) * 1.15))
        ax.grid(axis="y", visible=False)
        if left.any():
            ax.legend(frameon=False, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        else:
            ax.text(0.5, 0.5, "no failures", transform=ax.transAxes, ha="center", va="center", color="#059669")
        fig.tight_layout()
        return _svg(fig)


def uptime_svg(summaries: Sequence[TargetSummary]) -> str:
    """One row per target: each time bucket green when up, red when down, shaded by success share."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 0.5 + 0.42 * len(summaries)))
        for row, s in enumerate(summaries[::-1]):
            for b in s.buckets:
                share = b.succeeded / b.attempts
                colour = "#10b981" if b.up else "#ef4444"
                ax.broken_barh(
                    [(b.start_s, s.bucket_s * 0.92)],
                    (row - 0.3, 0.6),
                    color=colour,
                    alpha=0.35 + 0.65 * (share if b.up else 1 - share),
                )
        ax.set_yticks(range(len(summaries)), [s.target for s in summaries][::-1])
        ax.set_xlabel("seconds since start")
        ax.grid(axis="y", visible=False)
        ax.set_xlim(left=0)
        fig.tight_layout()
        return _svg(fig)


_ARCH_STYLE = {"serverless": "-", "provisioned": "--", "self_hosted": ":"}


def _dollars(ax: Any) -> None:
    """Dollar tick labels ($0.001, $10, $10k) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    def fmt(v: float, _pos: int) -> str:
        if v >= 1e6:
            return f"${v / 1e6:g}M"
        if v >= 1e3:
            return f"${v / 1e3:g}k"
        return f"${v:g}"

    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(fmt))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))


def cost_volume_svg(
    curves: Mapping[str, tuple[str, str, list[tuple[float, Any]]]],
    evens: Sequence[Any],
    dau: float,
    colours: dict[str, str],
    budget: float | None,
) -> str:
    """Monthly cost against users per day, one line per (target, architecture); break-evens marked."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(3.7, 2.9))
        for label, (target, arch, points) in curves.items():
            xs = [p[0] for p in points]
            ys = [float(p[1]) for p in points]
            ax.plot(xs, ys, _ARCH_STYLE.get(arch, "-"), color=colours.get(target, "#64748b"), lw=1.5, label=label)
        seen = set()
        for b in evens:  # first crossing of each pair, inside the plotted range
            if (b.a, b.b) in seen or not dau / 100 <= b.daily_active_users <= dau * 100:
                continue
            seen.add((b.a, b.b))
            cost = next(float(c) for u, c in curves[b.a][2] if u >= b.daily_active_users)
            ax.plot([b.daily_active_users], [cost], "o", ms=4, mfc="white", mec="#0f172a", mew=1.0, zorder=5)
        ax.axvline(dau, color="#0f172a", lw=0.8, ls="-", alpha=0.5)
        ax.annotate(
            "your workload",
            (dau, 1),
            xycoords=("data", "axes fraction"),
            fontsize=7.5,
            color="#334155",
            xytext=(3, -10),
            textcoords="offset points",
        )
        if budget:
            ax.axhline(budget, color="#b91c1c", lw=0.8, ls="--")
            ax.annotate(
                "budget",
                (0, budget),
                xycoords=("axes fraction", "data"),
                fontsize=7.5,
                color="#b91c1c",
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("users per day")
        ax.set_ylabel("per month")
        _dollars(ax)
        ax.legend(frameon=False, fontsize=6.5, loc="lower right")
        fig.tight_layout()
        return _svg(fig)


def tco_svg(lines: Sequence[Any], colours: dict[str, str]) -> str:
    """Cumulative cost month by month, one line per (target, architecture)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(3.7, 2.9))
        for line in lines:
            cumulative = np.cumsum([float(v) for v in line.monthly])
            months = np.arange(1, len(cumulative) + 1)
            ax.plot(
                months,
                cumulative,
                _ARCH_STYLE.get(line.architecture, "-"),
                color=colours.get(line.target, "#64748b"),
                lw=1.5,
                label=line.label,
            )
        ax.set_xlabel("month")
        ax.set_ylabel("cumulative cost")
        ax.set_yscale("log")
        _dollars(ax)
        ax.legend(frameon=False, fontsize=6.5, loc="lower right")
        ax.set_xlim(1, max((len(ln.monthly) for ln in lines), default=1))
        fig.tight_layout()
        return _svg(fig)


def cost_latency_svg(
    points: Sequence[tuple[str, float, float]], colours: dict[str, str], p95_limit: float | None
) -> str:
    """Cost per interaction against measured p95 latency: the cheap-and-fast corner is bottom left."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(3.7, 2.9))
        for name, cost, p95 in points:
            ax.scatter([p95], [cost], s=46, color=colours.get(name, "#64748b"), zorder=3)
            ax.annotate(name, (p95, cost), fontsize=8, xytext=(5, 3), textcoords="offset points")
        if p95_limit:
            ax.axvline(p95_limit, color="#b91c1c", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xlabel("E2E p95, ms (measured)")
        ax.set_ylabel("per interaction")
        _dollars(ax)
        lo, hi = min(p[1] for p in points), max(p[1] for p in points)
        ax.set_ylim(lo / 2.5, hi * 2.5)
        ax.set_xlim(left=0, right=max([p[2] for p in points] + [p95_limit or 0]) * 1.25)
        fig.tight_layout()
        return _svg(fig)


def _ci_bars_svg(
    rows: Sequence[str],
    values: Mapping[str, Mapping[str, tuple[float, tuple[float, float] | None]]],
    colours: dict[str, str],
    xlabel: str,
    row_height: float = 0.55,
) -> str:
    """Horizontal bars of shares (0-1) per row and target, grouped by row, with 95% CI whiskers."""
    targets = list(values)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(5.2, 0.6 + row_height * len(rows) * max(1, len(targets)) / 2))
        height = 0.8 / max(1, len(targets))
        for j, t in enumerate(targets):
            ys, xs, lo, hi = [], [], [], []
            for i, row in enumerate(rows):
                if row not in values[t]:
                    continue
                v, ci = values[t][row]
                ci = ci or (v, v)
                ys.append(i + (j - (len(targets) - 1) / 2) * height)
                xs.append(v * 100)
                lo.append((v - ci[0]) * 100)
                hi.append((ci[1] - v) * 100)
            ax.barh(ys, xs, height=height * 0.9, color=colours.get(t, "#64748b"), label=t, alpha=0.85)
            ax.errorbar(xs, ys, xerr=[lo, hi], fmt="none", ecolor="#0f172a", elinewidth=0.9, capsize=2)
        ax.set_yticks(range(len(rows)), rows)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        ax.legend(frameon=False, fontsize=7.5, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(targets))
        fig.tight_layout()
        return _svg(fig)


def quality_bars_svg(summary: Any, colours: dict[str, str]) -> str:
    """Score per suite and target, with the 95% CI as an error bar."""
    values = {
        t: {s: (sc.score, sc.ci95) for s in summary.suites
            if (sc := summary.scores[t].get(s)) is not None and sc.score is not None}
        for t in summary.targets
    }  # fmt: skip
    return _ci_bars_svg(summary.suites, values, colours, "score, % (bars: 95% CI)")


def quality_cost_svg(summary: Any, colours: dict[str, str]) -> str:
    """Mean score across suites against cost per scored item: the top-left corner is good value."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(3.9, 2.3))
        for t in summary.targets:
            scs = [sc for sc in summary.scores[t].values() if sc.score is not None and sc.scored]
            if not scs or any(sc.cost_usd is None for sc in scs) or not sum(sc.cost_usd for sc in scs):
                continue  # an unpriced (or free) target has no place on a log axis of cost
            score = sum(sc.score for sc in scs) / len(scs) * 100
            per_item = sum(sc.cost_usd for sc in scs) / sum(sc.scored for sc in scs)
            ax.scatter([per_item], [score], s=46, color=colours.get(t, "#64748b"), zorder=3)
            ax.annotate(t, (per_item, score), fontsize=8, xytext=(5, 3), textcoords="offset points")
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        lo, hi = ax.get_xlim()
        ax.set_xlim(lo / 1.6, hi * 1.6)  # room for the names
        # Label dollars at powers of ten, or at 1-2-5 steps when costs span less than a decade; never
        # the minor ticks, whose scientific labels overlap.
        subs = (1.0,) if hi / lo > 10 else (1.0, 2.0, 5.0)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: "$" + f"{v:.8f}".rstrip("0").rstrip(".")))
        ax.set_xlabel("cost per scored item (log)")
        ax.set_ylabel("mean score, %")
        fig.tight_layout()
        return _svg(fig)


def load_timeline_svg(lines: Mapping[str, Sequence[Mapping[str, Any]]], colours: dict[str, str]) -> str:
    """Per second of a load run: requests sent and succeeded, TTFT p50 and p99, failed requests."""
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(11.0, 2.7))
        rate_ax, ttft_ax, err_ax = axes
        for target, rows in lines.items():
            c = colours.get(target, "#64748b")
            t = [r["t_s"] for r in rows]
            rate_ax.plot(t, [r["sent"] for r in rows], color=c, lw=1.0, ls="--", alpha=0.7)
            rate_ax.plot(t, [r["ok"] for r in rows], color=c, lw=1.6, label=target)
            p50 = [r["ttft_ms"]["p50"] if r["ttft_ms"]["p50"] is not None else np.nan for r in rows]
            p99 = [r["ttft_ms"]["p99"] if r["ttft_ms"]["p99"] is not None else np.nan for r in rows]
            ttft_ax.plot(t, p50, color=c, lw=1.6)
            ttft_ax.plot(t, p99, color=c, lw=1.0, ls=":")
            err_ax.plot(t, [sum(r["errors"].values()) for r in rows], color=c, lw=1.4)
        rate_ax.set_title("Requests per second (dashed: sent)", fontsize=10, loc="left")
        ttft_ax.set_title("TTFT, ms (solid p50, dotted p99)", fontsize=10, loc="left")
        err_ax.set_title("Failed requests per second", fontsize=10, loc="left")
        for ax in axes:
            ax.set_xlabel("seconds")
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
        rate_ax.legend(frameon=False, fontsize=7.5, loc="lower right")
        fig.tight_layout()
        return _svg(fig)


def risk_matrix_svg(summary: Any) -> str:
    """Risk = likelihood x severity per category (rows) and target (columns); breaches outlined in red."""
    cats, targets = summary.categories, summary.targets
    grid = np.full((len(cats), len(targets)), np.nan)
    labels = [["–"] * len(targets) for _ in cats]
    breached = []
    for j, t in enumerate(targets):
        risks = {r.category: r for r in summary.risks[t]}
        for i, c in enumerate(cats):
            r = risks[c]
            if r.likelihood is not None:
                grid[i, j] = r.likelihood * r.severity
                labels[i][j] = f"{r.likelihood * 100:.0f}% × {r.severity}"
            if r.breach:
                breached.append((i, j))
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(1.2 + 1.35 * len(targets), 0.5 + 0.38 * len(cats)))
        cmap = LinearSegmentedColormap.from_list("risk", ["#dcfce7", "#fef9c3", "#fecaca", "#b91c1c"])
        ax.imshow(np.nan_to_num(grid, nan=0.0), cmap=cmap, vmin=0, vmax=2.5, aspect="auto")
        for i in range(len(cats)):
            for j in range(len(targets)):
                strong = not np.isnan(grid[i, j]) and grid[i, j] > 1.6
                ax.text(
                    j, i, labels[i][j], ha="center", va="center", fontsize=8, color="white" if strong else "#0f172a"
                )
        for i, j in breached:
            ax.add_patch(Rectangle((j - 0.48, i - 0.46), 0.96, 0.92, fill=False, ec="#dc2626", lw=1.6))
        ax.set_xticks(range(len(targets)), targets)
        ax.set_yticks(range(len(cats)), [f"{c} (over-refusal)" if summary.kinds[c] == "over_refusal" else c
                                         for c in cats])  # fmt: skip
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.grid(False)
        for side in ax.spines.values():
            side.set_visible(False)
        fig.tight_layout()
        return _svg(fig)


def safety_bars_svg(summary: Any, colours: dict[str, str]) -> str:
    """Attack success (or over-refusal) rate per category and target, with the 95% CI."""
    values = {
        t: {r.category: (r.likelihood, r.ci95) for r in summary.risks[t] if r.likelihood is not None}
        for t in summary.targets
    }
    xlabel = "attack success, % (over-refusal for over-refusal suites; bars: 95% CI)"
    return _ci_bars_svg(summary.categories, values, colours, xlabel, row_height=0.5)


def sweep_svg(steps: Mapping[str, Sequence[Any]], knees: Mapping[str, float | None], colours: dict[str, str]) -> str:
    """A sweep's curve: goodput and TTFT p50/p99 against the offered rate; failed steps hollow, knees dotted."""
    with plt.rc_context(_STYLE):
        fig, (good, lat) = plt.subplots(1, 2, figsize=(7.6, 2.5))
        top = max((p.rate_rps for st in steps.values() for p in st), default=1.0)
        good.plot([0, top], [0, top], ls="--", lw=0.8, color="#94a3b8", label="goodput = offered")
        for t, st in steps.items():
            c = colours.get(t, "#64748b")
            xs = [p.rate_rps for p in st]
            good.plot(xs, [p.goodput_rps for p in st], color=c, lw=1.4, label=t)
            lat.plot(xs, [p.ttft_p50_ms for p in st], color=c, lw=1.4, label=f"{t} p50")
            lat.plot(xs, [p.ttft_p99_ms for p in st], color=c, lw=1.0, ls=":", label=f"{t} p99")
            for ax, ys in ((good, [p.goodput_rps for p in st]), (lat, [p.ttft_p99_ms for p in st])):
                ax.scatter(xs, ys, s=22, zorder=3, color=[c if p.sustained else "white" for p in st], edgecolors=c)
            if (knee := knees.get(t)) is not None:
                for ax in (good, lat):
                    ax.axvline(knee, color=c, lw=0.9, ls=":")
        good.set_xlabel("offered rate, requests/s")
        good.set_ylabel("goodput, requests/s")
        lat.set_xlabel("offered rate, requests/s")
        lat.set_ylabel("TTFT, ms")
        lat.set_yscale("log")
        good.legend(frameon=False, fontsize=7.5)
        lat.legend(frameon=False, fontsize=7, ncol=2)
        fig.tight_layout()
        return _svg(fig)


# A decision criterion's unit on an axis; shares are plotted as percentages.
_UNIT_AXIS = {"share": "%", "ms": "ms", "usd": "$", "rps": "requests/s", "count": "count", "score": "score 0–100"}
_OUT_GREY = "#94a3b8"


def _criterion_label(c: Mapping[str, Any]) -> str:
    """'cost · cost.monthly_cost_usd, $   ← better': on a y axis the arrow, turned with the text, points up or down."""
    unit = _UNIT_AXIS.get(c.get("unit") or "", "")
    said = f"{c['name']} · {c.get('metric') or c['name']}" + (f", {unit}" if unit else "")
    return said + ("   ← better" if c.get("direction") == "min" else "   better →")


def _plotted(decision: Mapping[str, Any], target: str, c: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """A target's value on a criterion with its low and high, in plotted units; None when not measured."""
    cell = (decision.get("values") or {}).get(target, {}).get(c["name"]) or {}
    value = cell.get("value")
    if not isinstance(value, int | float):
        return None
    scale = 100.0 if c.get("unit") == "share" else 1.0
    low, high = cell.get("low"), cell.get("high")
    low = value if not isinstance(low, int | float) else min(low, value)
    high = value if not isinstance(high, int | float) else max(high, value)
    return value * scale, low * scale, high * scale


def _unit_ticks(axis: Any, unit: str | None) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(5))  # dollar labels are wide: five fit the half-page figure

    if unit == "usd":
        axis.set_major_formatter(FuncFormatter(lambda v, _p: f"${v / 1e3:g}k" if abs(v) >= 1e3 else f"${v:g}"))
    elif unit == "share":
        axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}%"))


def _front_line(points: Sequence[tuple[float, float]], x_min: bool, y_min: bool) -> tuple[list[float], list[float]]:
    """The non-dominated points joined as a staircase: between two neighbours the corner sits at the worse of
    each coordinate, the edge of the region the front dominates."""
    pts = sorted(points)
    xs, ys = [pts[0][0]], [pts[0][1]]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        corner_x = max(x0, x1) if x_min else min(x0, x1)
        corner_y = max(y0, y1) if y_min else min(y0, y1)
        xs += [corner_x, x1]
        ys += [corner_y, y1]
    return xs, ys


def pareto_svg(decision: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    """The first two Pareto criteria against each other, one point per target with its interval; the front
    drawn as a staircase, targets out on gates hollow and grey, a third criterion as marker size."""
    by_name = {c["name"]: c for c in decision.get("criteria", [])}
    crits = [by_name[n] for n in decision.get("pareto_criteria") or [] if n in by_name]
    front = set(decision.get("pareto") or [])
    winner = decision.get("winner")
    targets = list(decision.get("targets", []))
    with plt.rc_context(_STYLE):
        # one criterion is a dot plot, one row per target: as tall as its rows
        fig, ax = plt.subplots(figsize=(4.8, 3.5 if len(crits) != 1 else 0.9 + 0.4 * max(len(targets), 1)))
        if not crits:
            ax.text(0.5, 0.5, "no Pareto criteria", transform=ax.transAxes, ha="center", va="center", color="#64748b")
            ax.set_axis_off()
            return _svg(fig)
        x_c, y_c = crits[0], crits[1] if len(crits) > 1 else None
        size_c = crits[2] if len(crits) > 2 else None
        drawn = _pareto_points(ax, decision, colours, (x_c, y_c, size_c))
        on_front = [(x, y) for t, x, y in drawn if t in front]
        if y_c is not None and len(on_front) > 1:
            xs, ys = _front_line(on_front, x_c.get("direction") == "min", y_c.get("direction") == "min")
            ax.plot(xs, ys, color="#0f172a", lw=1.0, alpha=0.55, zorder=1, label="Pareto front")
        for c, line in ((x_c, ax.axvline), (y_c, ax.axhline)):
            _bound_lines(c, line)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=7.5, loc="best")
        if not drawn:
            ax.text(0.5, 0.5, "no target has values on these criteria", transform=ax.transAxes, ha="center",
                    va="center", color="#64748b")  # fmt: skip
        ax.set_xlabel(_criterion_label(x_c))
        _unit_ticks(ax.xaxis, x_c.get("unit"))
        if y_c is not None:
            ax.set_ylabel(_criterion_label(y_c))
            _unit_ticks(ax.yaxis, y_c.get("unit"))
        else:  # one criterion: a dot plot, one row per target
            ax.set_yticks(range(len(targets)), targets[::-1])  # the names are the ticks: points carry no label
            for tick in ax.get_yticklabels():
                tick.set_fontweight("bold" if tick.get_text() == winner else "normal")
            ax.set_ylim(-0.6, len(targets) - 0.4)
            ax.grid(axis="y", visible=False)
        ax.margins(x=0.18, y=0.15)
        notes = [f"marker size: {size_c['name']}, larger is better"] if size_c is not None else []
        if len(crits) > 3:
            notes.append("front also on " + ", ".join(c["name"] for c in crits[3:]))
        if notes:
            ax.set_title("; ".join(notes), fontsize=7.5, loc="left", color="#64748b")
        fig.tight_layout()
        return _svg(fig)


def _pareto_points(
    ax: Any, decision: Mapping[str, Any], colours: Mapping[str, str], crits: tuple[Any, Any, Any]
) -> list[tuple[str, float, float]]:
    """Each target with values as a point with its whiskers and name; (target, x, y) of those drawn.

    With no second criterion, y is the target's row (a dot plot).
    """
    x_c, y_c, size_c = crits
    targets = list(decision.get("targets", []))
    gates = decision.get("gates") or {}
    sizes = _marker_sizes(decision, targets, size_c)
    drawn = []
    for i, t in enumerate(targets):
        x = _plotted(decision, t, x_c)
        y = _plotted(decision, t, y_c) if y_c else (float(len(targets) - 1 - i),) * 3
        if x is None or y is None:
            continue
        gate = gates.get(t) or {}
        out = gate.get("passed") is False
        colour = _OUT_GREY if out else colours.get(t, "#64748b")
        ax.errorbar([x[0]], [y[0]], xerr=[[x[0] - x[1]], [x[2] - x[0]]], yerr=[[y[0] - y[1]], [y[2] - y[0]]],
                    fmt="none", ecolor=colour, elinewidth=0.9, capsize=2, alpha=0.8, zorder=2)  # fmt: skip
        ax.scatter([x[0]], [y[0]], s=sizes[t], zorder=3, color="white" if out else colour, edgecolors=colour,
                   linewidths=1.4)  # fmt: skip
        label = (t if y_c else "") + (f" (out: {', '.join(gate.get('failed') or ['gates'])})" if out else "")
        weight = "bold" if t == decision.get("winner") else "normal"
        ax.annotate(label.strip(), (x[0], y[0]), fontsize=8, xytext=(7, 5), textcoords="offset points",
                    color="#64748b" if out else "#0f172a", weight=weight)  # fmt: skip
        drawn.append((t, x[0], y[0]))
    return drawn


def _bound_lines(c: Mapping[str, Any] | None, line: Any) -> None:
    """A gate on a plotted criterion as a dashed red line, so a target out on it is seen past it."""
    if c is None:
        return
    unit = c.get("unit") or "number"
    for op, bound in (c.get("must") or {}).items():
        if op in ("max", "min") and isinstance(bound, int | float):
            said = f"must {'≤' if op == 'max' else '≥'} {value_in_unit(bound, unit)}"
            line(bound * (100.0 if unit == "share" else 1.0), color="#b91c1c", lw=0.8, ls="--", zorder=1, label=said)


def _marker_sizes(decision: Mapping[str, Any], targets: Sequence[str], c: Mapping[str, Any] | None) -> dict[str, float]:
    """Marker area per target: larger where the third criterion is better; the middle size when unmeasured."""
    base = {t: 60.0 for t in targets}
    if c is None:
        return base
    values = {t: got[0] for t in targets if (got := _plotted(decision, t, c)) is not None}
    if not values:
        return base
    lo, hi = min(values.values()), max(values.values())
    for t, v in values.items():
        good = 0.5 if hi == lo else (v - lo) / (hi - lo)
        base[t] = 30.0 + 170.0 * (1 - good if c.get("direction") == "min" else good)
    return base


def tornado_svg(decision: Mapping[str, Any], colours: Mapping[str, str] | None = None) -> str:
    """Per criterion, the range of its weight (0-1) over which the winner stays first; the current weight marked,
    the flip point labelled with the target that would win past it. Nearest flips on top."""
    colours = colours or {}
    sens = decision.get("sensitivity") or {}
    names = sensitivity_order(sens)
    winner = decision.get("winner")
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(4.8, 0.9 + 0.42 * max(len(names), 1) if names and winner else 1.0))
        if not names or winner is None:
            said = "no winner: no weights to vary" if winner is None else "no sensitivity analysis"
            ax.text(0.5, 0.5, said, transform=ax.transAxes, ha="center", va="center", color="#64748b")
            ax.set_axis_off()
            return _svg(fig)
        colour = colours.get(winner, PALETTE[0])
        n = len(names)
        for row, name in enumerate(names):
            s = sens[name]
            y = n - 1 - row  # nearest flip on top
            lo, hi = s.get("stays_from") or 0.0, s.get("stays_to") if s.get("stays_to") is not None else 1.0
            ax.barh([y], [1.0], left=0, height=0.56, color="#f1f5f9", zorder=1)
            ax.barh([y], [hi - lo], left=lo, height=0.56, color=colour, alpha=0.8, zorder=2)
            if s.get("weight") is not None:
                ax.plot([s["weight"]], [y], marker="D", ms=5.5, color="#0f172a", mec="white", mew=0.8, zorder=4,
                        clip_on=False)  # fmt: skip
            flip = s.get("flip_at_weight")
            if flip is None:
                said, tint = "never flips", "#64748b"
            else:
                ax.plot([flip, flip], [y - 0.34, y + 0.34], color="#b91c1c", lw=1.6, zorder=3)
                new = s.get("new_winner") or "?"
                said, tint = f"{new} at {unit_interval(flip)}", colours.get(new, "#b91c1c")
            ax.annotate(said, (1.0, y), xycoords=("axes fraction", "data"), xytext=(6, 0), textcoords="offset points",
                        fontsize=8, va="center", color=tint)  # fmt: skip
        ax.set_yticks(range(n), [f"{name} ({unit_interval(sens[name].get('weight'))})" for name in names][::-1])
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xlabel("weight of the criterion")
        ax.grid(axis="y", visible=False)
        ax.set_title(f"bar: weights at which {winner} stays first · ◆ the weight now · red: the flip", fontsize=7.5,
                     loc="left", color="#64748b")  # fmt: skip
        fig.tight_layout()
        return _svg(fig)
