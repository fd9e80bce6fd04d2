"""The decision in words: the recommendation, why, the winner's caveats and what would separate the top two.

One place builds these sentences from `assay decide`'s dict, so the terminal, `--json` and the
scorecard say the same thing. A winner is never named without the caveats other sections of
the page raise against it (a safety limit over, an SLO missed, a cost constraint broken).
"""

from __future__ import annotations

import math
from typing import Any

from assay.report.formats import pct_sign, unit_interval, value_in_unit

__all__ = ["caveat_text", "describe"]

_COST_WORDS = {"monthly_budget_usd": "the monthly budget", "max_cost_per_interaction_usd": "the cost per interaction"}


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def caveat_text(target: str, caveats: list[dict[str, Any]]) -> list[str]:
    """One sentence per section for one target: 'meridian is over the safety limit on injection (28% > 10%)…'."""
    mine = [c for c in caveats if c["target"] == target]
    out = []
    safety = [c for c in mine if c["section"] == "safety"]
    if safety:
        said = [
            f"{c['what']} ({value_in_unit(c['value'], 'share')} > {value_in_unit(c['limit'], 'share')})" for c in safety
        ]
        out.append(f"{target} is over the red-team limit on {_and(said)}.")
    slo = [c for c in mine if c["section"] == "slo"]
    if slo:
        said = [
            f"{c['what']} {value_in_unit(c['value'], c['unit'])} "
            f"{'<' if c['unit'] == 'share' else '>'} {value_in_unit(c['limit'], c['unit'])}"
            for c in slo
        ]
        out.append(f"{target} misses the SLO: {_and(said)}.")
    cost = [c for c in mine if c["section"] == "cost"]
    if cost:
        said = [
            f"{_COST_WORDS.get(c['what'], c['what'])} ({value_in_unit(c['value'], 'usd')} > "
            f"{value_in_unit(c['limit'], 'usd')})"
            for c in cost
        ]
        out.append(f"{target} is over {_and(said)}.")
    return out


def _failed(decision: dict[str, Any], target: str) -> list[str]:
    """'cost $1,686 > $1,500' for each gate a target fails."""
    units = {c["name"]: c.get("unit") or "number" for c in decision.get("criteria", [])}
    out = []
    for g in (decision.get("gates", {}).get(target) or {}).get("checks", []):
        if g["passed"]:
            continue
        unit = units.get(g["criterion"], "number")
        if g["op"] == "measured":
            out.append(f"{g['criterion']} not measured")
        elif g["op"] in ("min", "max"):
            sign = "<" if g["op"] == "min" else ">"
            out.append(f"{g['criterion']} {value_in_unit(g['value'], unit)} {sign} {value_in_unit(g['bound'], unit)}")
        elif g["op"] == "includes":
            have = set(g["value"] or [])
            out.append(f"{g['criterion']} lacks {', '.join(x for x in g['bound'] if x not in have)}")
        else:
            out.append(f"{g['criterion']} is {g['value']}, not {g['bound']}")
    return out


def _why(decision: dict[str, Any], winner: str, rival: str | None) -> str:
    """What puts the winner ahead of the runner-up, by weighted normalised contribution, and who is out."""
    parts = []
    if rival is not None:
        units = {c["name"]: c.get("unit") or "number" for c in decision["criteria"]}
        weights = {c["name"]: c["weight"] for c in decision["criteria"]}
        norm = decision.get("normalized", {})
        values = decision.get("values", {})
        lead = []
        for name, w in weights.items():
            gap = w * (norm.get(winner, {}).get(name, 0.0) - norm.get(rival, {}).get(name, 0.0))
            a = value_in_unit(values.get(winner, {}).get(name, {}).get("value"), units[name])
            b = value_in_unit(values.get(rival, {}).get(name, {}).get("value"), units[name])
            # each side's own figure first: "quality (85.0% vs 60.0%)", "latency (300 ms vs 500 ms)"
            lead.append((gap, f"{name} ({a} vs {b})" if gap > 0 else f"{name} ({b} vs {a})"))
        ahead = [text for gap, text in sorted(lead, key=lambda x: -x[0]) if gap > 1e-12]
        behind = [text for gap, text in sorted(lead, key=lambda x: x[0]) if gap < -1e-12]
        said = f"it leads {rival} on {_and(ahead)}" if ahead else f"it ties {rival}"
        if behind:
            said += f"; {rival} leads on {_and(behind)}"
        parts.append(said)
    out = [t for t, g in decision.get("gates", {}).items() if not g["passed"]]
    for t in out:
        parts.append(f"{t} is out ({'; '.join(_failed(decision, t))})")
    ranking = decision.get("ranking") or []
    ranked = [r for r in ranking if r.get("topsis_rank") is not None]
    by_topsis = min(ranked, key=lambda r: r["topsis_rank"])["target"] if ranked else None
    if by_topsis is not None and by_topsis != winner:
        parts.append(f"TOPSIS, the second opinion, puts {by_topsis} first")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "." if text else ""


def _separation(decision: dict[str, Any]) -> str | None:
    sep = decision.get("separation") or {}
    if sep.get("separated") is not False or len(sep.get("top_two", [])) < 2:
        return None
    a, b = sep["top_two"]
    conf = (decision.get("method") or {}).get("confidence", 0.95)
    said = (
        f"The evidence cannot yet separate {a} from {b}: {a} is first in {pct_sign(sep['p_first'], 0)} of "
        f"resamples, under the {pct_sign(conf, 0)} asked for"
    )
    k = sep.get("factor")
    if k is None or (isinstance(k, float) and math.isinf(k)):
        return said + "; their scores are equal within the evidence, so more samples alone may not separate them."
    units = {"eval": "items", "redteam": "attacks", "probe": "requests", "load": "requests", "gateway": "requests"}
    more = [f"{g} {now:,} → {need:,} {units.get(g, 'samples')}" for g, (now, need) in sep.get("samples", {}).items()]
    return said + f"; about {k:.1f}× the samples would" + (f" ({', '.join(more)} per target)." if more else ".")


def describe(decision: dict[str, Any]) -> dict[str, Any]:
    """The sentences: `recommendation`, `why`, `caveat_text` ([{target, text}] of the winner), `separation`."""
    winner = decision.get("winner")
    ranking = decision.get("ranking") or []
    caveats = decision.get("caveats") or []
    if winner is None:
        closest = sorted(decision.get("targets", []), key=lambda t: len(_failed(decision, t)))
        said = "No target passes every gate"
        if closest:
            said += f"; the closest is {closest[0]} ({'; '.join(_failed(decision, closest[0]))})"
        return {"recommendation": said + ".", "why": "", "caveat_text": [], "separation": None}
    top = ranking[0]
    rival = ranking[1]["target"] if len(ranking) > 1 else None
    separated = (decision.get("separation") or {}).get("separated", True)
    gates = "passes every gate" if any(g["checks"] for g in decision.get("gates", {}).values()) else "has no gates"
    if rival is None:
        rec = f"Choose {winner}: it is the only target that passes every gate."
    elif abs(top["score"] - ranking[1]["score"]) <= 1e-9:
        rec = (f"No clear choice: {winner} and {rival} tie on the weighted score ({unit_interval(top['score'])} of 1); "
               f"{winner} is named first only because the config lists it first.")
    elif separated:
        rec = (
            f"Choose {winner}: it {gates} and scores highest ({unit_interval(top['score'])} of 1), first in "
            f"{pct_sign(top['p_first'], 0)} of resamples."
        )
    else:
        rec = (
            f"Lean to {winner}: it {gates} and scores highest ({unit_interval(top['score'])} of 1), but is "
            f"first in only {pct_sign(top['p_first'], 0)} of resamples."
        )
    mine = caveat_text(winner, caveats)
    return {
        "recommendation": rec,
        "why": _why(decision, winner, rival),
        "caveat_text": [{"target": winner, "text": t} for t in mine],
        "separation": _separation(decision),
    }
