"""Plots as inline SVG strings, so a report is one self-contained file."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from assay.errors import ERROR_CLASSES
from assay.stats import TargetSummary

__all__ = ["PALETTE", "error_bars_svg", "latency_cdf_svg", "uptime_svg"]

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
                values = np.sort(np.asarray(getattr(s, metric).values))
                if len(values) == 0:
                    continue
                y = np.arange(1, len(values) + 1) / len(values)
                if len(values) > CDF_MAX_POINTS:  # a long run has millions of gaps; the curve needs a few thousand
                    y = np.linspace(1 / CDF_MAX_POINTS, 1.0, CDF_MAX_POINTS)
                    values = np.quantile(values, y)
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
