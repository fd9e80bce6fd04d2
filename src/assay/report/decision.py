"""The scorecard's decision section: the recommendation, gates, ranking, Pugh matrix, Pareto front, sensitivity.

It reads the plain dict `assay decide --json` prints (its figures unrounded) and formats every figure here,
through `assay.report.formats`, so the templates only place text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assay.report.formats import (
    margin_in_unit,
    pct_sign,
    plural,
    rank_range,
    unit_interval,
    value_in_unit,
)
from assay.report.verdict import describe

__all__ = [
    "DecisionView",
    "GateCheck",
    "GateRow",
    "PughView",
    "RankRow",
    "SensitivityRow",
    "build_decision_view",
    "failed_op",
    "sensitivity_order",
]

# How a bound reads when it holds, and when it does not: a `max` bound fails when the value is over it.
_OPS = {"max": ("≤", ">"), "min": ("≥", "<"), "eq": ("=", "≠")}
_PUGH = {1: ("+", "plus"), 0: ("0", "zero"), -1: ("−", "minus")}


@dataclass
class GateCheck:
    """One failed (or at-risk) bound of a target, in the criterion's unit."""

    criterion: str
    value: str
    bound: str  # with the comparison that failed: "> $1,500"
    margin: str  # signed, positive when passed: "−$186.20"
    p_pass: str  # share of resamples in which it would pass: "0%"

    @property
    def text(self) -> str:
        """'cost $1,686 > $1,500', the words of a chip."""
        return f"{self.criterion} {self.value} {self.bound}"


@dataclass
class GateRow:
    target: str
    colour: str
    passed: bool | None  # None: no gate names this target
    failed: list[GateCheck]
    note: str  # for a target that passed: how many checks, and any that pass in too few resamples

    @property
    def mark(self) -> str:
        return "–" if self.passed is None else "✓" if self.passed else "✗"


@dataclass
class RankRow:
    target: str
    colour: str
    score: str
    p_first: str
    p_first_pct: float  # the inline bar's width, 0-100
    rank_interval: str
    topsis: str
    topsis_rank: str
    winner: bool


@dataclass
class PughView:
    datum: str
    targets: list[str]  # columns, the datum first
    out: set[str]  # targets out on gates, marked in the header
    rows: list[tuple[str, str, dict[str, tuple[str, str]]]]  # criterion, weight, target -> (sign, css class)
    totals: list[tuple[str, dict[str, str]]]  # "+", "0", "−", "net" -> target -> count


@dataclass
class SensitivityRow:
    criterion: str
    weight: str
    stays: str  # the weights over which the winner stays first: "0.12–1.00"
    flip_at: str
    new_winner: str


@dataclass
class DecisionView:
    winner: str | None
    winner_colour: str | None
    recommendation: str
    why: str
    caveats: list[str]
    method: str
    chips: list[str]  # the page's headline when a decision is given
    gates: list[GateRow]
    ranking: list[RankRow]
    separation: str | None  # said only when the top two are not separated
    stability: str | None
    pugh: PughView | None
    pareto: str | None
    sensitivity: list[SensitivityRow]
    sensitivity_note: str | None
    plots: dict[str, str] = field(default_factory=dict)


def failed_op(op: str) -> str:
    """The comparison a failed bound shows: '>' for a `max` bound."""
    return _OPS.get(op, (op, f"not {op}"))[1]


def _held_op(op: str) -> str:
    """The comparison a bound states when it holds: '≤' for a `max` bound."""
    return _OPS.get(op, (op, op))[0]


def sensitivity_order(sensitivity: dict[str, Any]) -> list[str]:
    """Criteria nearest to a flip first (smallest |flip - weight|); those that never flip last."""

    def key(name: str) -> tuple[bool, float]:
        s = sensitivity[name]
        flip = s.get("flip_at_weight")
        return (flip is None, 0.0 if flip is None else abs(flip - (s.get("weight") or 0.0)))

    return sorted(sensitivity, key=key)


def _units(decision: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c.get("unit") or "number" for c in decision.get("criteria", [])}


def _gate_check(check: dict[str, Any], unit: str, failed: bool) -> GateCheck:
    op = str(check.get("op", "max"))
    shown = failed_op(op) if failed else _held_op(op)
    p_pass = check.get("p_pass")
    return GateCheck(
        criterion=str(check["criterion"]),
        value=value_in_unit(check.get("value"), unit),
        bound=f"{shown} {value_in_unit(check.get('bound'), unit)}",
        margin=margin_in_unit(check.get("margin"), unit),
        p_pass="–" if p_pass is None else pct_sign(p_pass, 0),
    )


def _gates(decision: dict[str, Any], colours: dict[str, str], confidence: float) -> list[GateRow]:
    units = _units(decision)
    gates = decision.get("gates") or {}
    ranked = {r["target"] for r in decision.get("ranking") or []}
    rows = []
    for t in decision.get("targets", []):
        g = gates.get(t)
        if g is None:  # no gate named it: it passed if it was ranked, else nothing is known
            rows.append(GateRow(t, colours[t], True if t in ranked else None, [], "no gates" if t in ranked else ""))
            continue
        checks = g.get("checks") or []
        failed = [_gate_check(c, units.get(c["criterion"], "number"), True) for c in checks if not c.get("passed")]
        # A bound that holds on the measured value but fails in many resamples is worth a reader's eye.
        shaky = [
            f"{c['criterion']} passes in {pct_sign(c['p_pass'], 0)} of resamples"
            for c in checks
            if c.get("passed") and c.get("p_pass") is not None and c["p_pass"] < confidence
        ]
        note = "" if failed else f"{plural(len(checks), 'check')} passed" + "".join(f"; {s}" for s in shaky)
        rows.append(GateRow(t, colours[t], bool(g.get("passed")), failed, note))
    return rows


def _ranking(decision: dict[str, Any], colours: dict[str, str]) -> list[RankRow]:
    rows = []
    for r in decision.get("ranking") or []:
        lo, hi = r.get("rank_interval") or (None, None)
        topsis_rank = r.get("topsis_rank")
        p_first = r.get("p_first")
        rows.append(
            RankRow(
                target=r["target"],
                colour=colours.get(r["target"], "#64748b"),
                score=unit_interval(r.get("score")),
                p_first=pct_sign(p_first, 0),
                p_first_pct=0.0 if p_first is None else max(0.0, min(100.0, p_first * 100)),
                rank_interval="–" if lo is None or hi is None else rank_range(int(lo), int(hi)),
                topsis=unit_interval(r.get("topsis")),
                topsis_rank="–" if topsis_rank is None else str(topsis_rank),
                winner=r["target"] == decision.get("winner"),
            )
        )
    return rows


def _pugh(decision: dict[str, Any]) -> PughView | None:
    datum = decision.get("pugh_datum") or (decision.get("method") or {}).get("datum")
    pugh = decision.get("pugh") or {}
    if datum is None or not pugh:
        return None
    others = [t for t in decision.get("targets", []) if t != datum and t in pugh]
    targets = [datum, *others]
    rows = []
    for c in decision.get("criteria", []):
        cells = {datum: ("datum", "datum")}
        for t in others:
            cells[t] = _PUGH.get(pugh[t].get(c["name"]), ("–", "none"))
        rows.append((str(c["name"]), unit_interval(c.get("weight")), cells))
    totals = decision.get("pugh_totals") or {}
    labelled = (("+", "plus"), ("0", "zero"), ("−", "minus"), ("net", "net"))
    total_rows = []
    for label, key in labelled:
        counts = {datum: ""}
        for t in others:
            n = (totals.get(t) or {}).get(key)
            counts[t] = "–" if n is None else (f"{n:+d}".replace("-", "−") if key == "net" and n else str(n))
        total_rows.append((label, counts))
    out = {t for t, g in (decision.get("gates") or {}).items() if g.get("passed") is False}
    return PughView(datum, targets, out, rows, total_rows)


def _pareto(decision: dict[str, Any]) -> str | None:
    front = decision.get("pareto") or []
    criteria = decision.get("pareto_criteria") or []
    if not criteria:
        return None
    p = decision.get("pareto_p") or {}
    named = [f"{t} ({pct_sign(p[t], 0)})" if p.get(t) is not None else t for t in front]
    if named and p.get(front[0]) is not None:  # the first says what the share is; the rest follow its pattern
        named[0] = f"{front[0]} (non-dominated in {pct_sign(p[front[0]], 0)} of resamples)"
    # Whether the producer drops gated-out targets before the front is its business; say which these are.
    out = {t for t, g in (decision.get("gates") or {}).items() if g.get("passed") is False}
    rest = [t + (" (out on gates)" if t in out else "") for t in decision.get("targets", []) if t not in front]
    text = f"Pareto front on {_and(criteria)}: {', '.join(named) if named else 'none'}"
    return text + (f"; not on it: {', '.join(rest)}." if rest else ".")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _sensitivity(decision: dict[str, Any]) -> tuple[list[SensitivityRow], str | None]:
    sens = decision.get("sensitivity") or {}
    rows = []
    for name in sensitivity_order(sens):
        s = sens[name]
        flip = s.get("flip_at_weight")
        rows.append(
            SensitivityRow(
                criterion=name,
                weight=unit_interval(s.get("weight")),
                stays=f"{unit_interval(s.get('stays_from'))}–{unit_interval(s.get('stays_to'))}",
                flip_at=unit_interval(flip),
                new_winner=s.get("new_winner") or "none in 0–1",
            )
        )
    winner = decision.get("winner")
    flips = [n for n in sensitivity_order(sens) if sens[n].get("flip_at_weight") is not None]
    if not rows or winner is None:
        return rows, None
    if not flips:
        return rows, f"No single weight between 0 and 1 changes the winner: {winner} stays first."
    s = sens[flips[0]]
    way = "down" if s["flip_at_weight"] < (s.get("weight") or 0.0) else "up"
    note = (
        f"Nearest flip: {flips[0]}'s weight {way} from {unit_interval(s.get('weight'))} to "
        f"{unit_interval(s['flip_at_weight'])} makes {s.get('new_winner') or 'another target'} the winner."
    )
    return rows, note


def _stability(decision: dict[str, Any]) -> str | None:
    st = decision.get("stability")
    winner = decision.get("winner")
    if not st or winner is None or st.get("winner_share") is None:
        return None
    draws = st.get("draws")
    others = [f"{t} {pct_sign(v, 0)}" for t, v in (st.get("share_first") or {}).items() if t != winner and v]
    how = f"{draws:,} random weightings" if draws else "random weightings"
    if st.get("concentration") is not None:
        how += f" near the stated ones (Dirichlet, concentration {st['concentration']:g})"
    text = f"Weight stability: {winner} is first under {pct_sign(st['winner_share'], 0)} of {how}"
    return text + (f"; {', '.join(others)}." if others else ".")


def _method(decision: dict[str, Any]) -> str:
    m = decision.get("method") or {}
    arrows = {"max": "↑", "min": "↓"}
    said = []
    for c in decision.get("criteria", []):
        must = c.get("must") or {}
        unit = c.get("unit") or "number"
        bounds = ", ".join(f"{_held_op(op)} {value_in_unit(v, unit)}" for op, v in must.items())
        weight = unit_interval(c.get("weight"))
        must_text = f" (must {bounds})" if bounds else ""
        said.append(f"{c['name']} {arrows.get(c.get('direction', ''), '')} {weight}{must_text}")
    parts = []
    if said:
        parts.append("Criteria (↑ higher is better, ↓ lower; weight): " + ", ".join(said))
    how = f"weighted sum of {m['normalize']}-normalised scores" if m.get("normalize") else "weighted sum"
    if m.get("draws"):
        how += f"; {m['draws']:,} resamples of the measurements (seed {m.get('seed', 0)})"
    if m.get("confidence") is not None:
        how += f"; separated at {pct_sign(m['confidence'], 0)}"
    parts.append(how[0].upper() + how[1:])
    return ". ".join(parts) + "."


def _chips(decision: dict[str, Any], gates: list[GateRow], ranking: list[RankRow]) -> list[str]:
    """The headline: the recommendation, every caveat, then each target out on gates.

    The caveats come right after the recommendation: a winner named without them reads as "meets every
    objective", which the rest of the page may contradict.
    """
    winner = decision.get("winner")
    chips = []
    if winner is None:
        chips.append("No recommendation: no target passes every gate.")
    else:
        first = next((r for r in ranking if r.target == winner), None)
        said = f"Recommended: {winner}"
        if first is not None and first.p_first != "–":
            said += f" (first in {first.p_first} of resamples"
            sep = decision.get("separation") or {}
            if sep.get("separated") is False:
                rival = next((t for t in sep.get("top_two") or [] if t != winner), None)
                said += f"; not yet separated from {rival}" if rival else "; not yet separated"
            said += ")"
        chips.append(said + ".")
    chips.extend(f"Caveat: {c['text']}" for c in describe(decision)["caveat_text"])
    for g in gates:
        if g.passed is False:
            because = "; ".join(c.text for c in g.failed) or "a gate"
            chips.append(f"{g.target} out: {because}.")
    return chips


def build_decision_view(decision: dict[str, Any], colours: dict[str, str]) -> DecisionView:
    """The decision section from `assay decide`'s dict; `colours` by target name (others get the palette's)."""
    from assay.report import plots

    targets = list(decision.get("targets", []))
    # A target the run did not measure (a decision may draw on several runs) takes the palette by its place.
    colours = {**{t: plots.PALETTE[i % len(plots.PALETTE)] for i, t in enumerate(targets)}, **colours}
    confidence = float((decision.get("method") or {}).get("confidence") or 0.95)
    gates = _gates(decision, colours, confidence)
    ranking = _ranking(decision, colours)
    sensitivity, sensitivity_note = _sensitivity(decision)
    winner = decision.get("winner")
    words = describe(decision)
    view = DecisionView(
        winner=winner,
        winner_colour=colours.get(winner) if winner else None,
        recommendation=words["recommendation"],
        why=words["why"],
        caveats=[c["text"] for c in words["caveat_text"]],
        method=_method(decision),
        chips=_chips(decision, gates, ranking),
        gates=gates if decision.get("gates") else [],
        ranking=ranking,
        separation=words["separation"],
        stability=_stability(decision),
        pugh=_pugh(decision),
        pareto=_pareto(decision),
        sensitivity=sensitivity,
        sensitivity_note=sensitivity_note,
    )
    view.plots = {"pareto": plots.pareto_svg(decision, colours), "tornado": plots.tornado_svg(decision, colours)}
    return view
