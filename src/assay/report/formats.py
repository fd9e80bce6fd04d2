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
    "margin_in_unit",
    "ms",
    "pct",
    "pct_sign",
    "pct_with_ci",
    "plural",
    "points",
    "rank_range",
    "rate",
    "signed_points",
    "unit_interval",
    "usd_text",
    "value_in_unit",
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


def signed_points(diff: float) -> str:
    """A difference of two shares in percentage points, with its sign: +31.7, −4.0."""
    return f"{diff * 100:+.1f}".replace("-", "−")


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


def unit_interval(v: float | None) -> str:
    """A figure on [0, 1] that is not a share of anything (a weight, a weighted score): 0.71 · –."""
    return "–" if v is None else f"{v:.2f}"


def rank_range(lo: int, hi: int) -> str:
    """Ranks a target took across resamples: '1–2', or '1' when it never moved."""
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _number(v: float) -> str:
    """A plain number to three significant figures, never in scientific notation: 1,234 · 12.3 · 0.123."""
    if v == 0 or abs(v) >= 100:
        return f"{v:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{v:.{digits}f}"


def value_in_unit(v: object, unit: str) -> str:
    """A decision criterion's value in its unit (share, ms, usd, rps, count, score, bool, text, number)."""
    if v is None:
        return "–"
    if unit == "bool" or isinstance(v, bool):
        return "yes" if v else "no"
    if unit == "text" or not isinstance(v, int | float):
        return str(v)
    x = float(v)
    if unit == "share":
        return pct_sign(x)
    if unit == "ms":
        return f"{ms(x)} ms"
    if unit == "usd":
        return usd_text(x)
    if unit == "rps":
        return f"{rate(x)}/s"
    if unit == "count":
        return f"{x:,.0f}"
    return _number(x)


def margin_in_unit(margin: float | None, unit: str) -> str:
    """A signed distance to a bound in the bound's unit, positive when passed: +150 ms · −$186 · −18.0 pts.

    Shares differ in percentage points, not percent; a bool or text bound has no distance (–).
    """
    if margin is None or unit in ("bool", "text"):
        return "–"
    sign = "+" if margin > 0 else "−" if margin < 0 else "±"
    size = abs(margin)
    if unit == "share":
        return f"{sign}{points(size)} pts"
    return sign + value_in_unit(size, unit)
