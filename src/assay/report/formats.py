"""Display formatters: the one place numbers are rounded, for terminals, HTML and Markdown alike.

JSON carries unrounded figures (DESIGN.md invariant 9); everything a person reads goes through here.
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = [
    "ci_range",
    "count_text",
    "fraction",
    "ms",
    "pct",
    "pct_sign",
    "pct_with_ci",
    "plural",
    "points",
    "rate",
    "usd_text",
]


def ms(v: float | None) -> str:
    """Milliseconds: 1,234 · 123 · 12.3 · – (none)."""
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def pct(v: float | None, digits: int = 1) -> str:
    """A share (0-1) as a percentage number without the sign: 12.5 · –."""
    return "–" if v is None else f"{v * 100:.{digits}f}"


def pct_sign(v: float | None, digits: int = 1) -> str:
    """A share (0-1) as a percentage: 12.5% · –."""
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def ci_range(ci: tuple[float, float] | None, digits: int = 1) -> str:
    """A share's interval as percentages: 37.7–62.3 · –."""
    return "–" if ci is None else f"{ci[0] * 100:.{digits}f}–{ci[1] * 100:.{digits}f}"


def pct_with_ci(v: float | None, ci: tuple[float, float] | None) -> str:
    """A share and its interval for a table cell: 50.0 (38–62) · –."""
    if v is None:
        return "–"
    return pct(v) + (f" ({ci_range(ci, 0)})" if ci else "")


def points(diff: float) -> str:
    """A difference of two shares in percentage points, unsigned: 31.7."""
    return f"{abs(diff) * 100:.1f}"


def fraction(v: float | None) -> str:
    """An agreement statistic in [0, 1] (accuracy, kappa): 0.922 · –."""
    return "–" if v is None else f"{v:.3f}"


def rate(v: float | None) -> str:
    """Requests or tokens per second: 12.3 · –."""
    return "–" if v is None else f"{v:,.1f}"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 target' · '3 targets'."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def count_text(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def usd_text(v: float | Decimal | None) -> str:
    """Dollars as people read them: $1,234 · $12.35 · $0.00751 (three significant figures, never 7.5e-05)."""
    if v is None:
        return "–"
    x = float(v)
    if abs(x) >= 1000:
        return f"${x:,.0f}"
    if abs(x) >= 1 or x == 0:
        return f"${x:,.2f}"
    digits = 2 - math.floor(math.log10(abs(x)))
    text = f"{x:.{digits}f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"
