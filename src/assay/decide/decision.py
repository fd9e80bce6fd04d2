"""A decision from evidence: gates, weighted ranking with its uncertainty, TOPSIS, Pugh, Pareto, sensitivity.

`decide(settings, evidence)` is pure given its seed. The order of work:

1. gates: a target failing a `must` (or without a value for a criterion) is out, with the margin;
2. the weighted sum over the targets that pass, with the stated normalisation; TOPSIS beside it;
3. resampling every criterion jointly (`evidence.resample`): each target's probability of
   first place and its 95% rank interval; whether the top two are separated and, if not,
   about how many more samples would separate them (CI widths shrink as 1/√n);
4. the Pugh matrix against the datum: +1/−1 only where the difference is significant (the
   paired tests the eval and red-team sections show, else the resampled difference's 95%
   interval excludes 0; an exact figure differs when it differs);
5. the Pareto front of the passing targets over two or three criteria, and each one's
   probability of being non-dominated under resampling;
6. sensitivity: each weight's range over which the winner stays (the others rescaled in
   proportion) and the nearest flip; the winner's share of first places when all weights are
   drawn from a Dirichlet around the stated ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from assay.config.decision import Criterion, DecisionSettings
from assay.decide.evidence import Evidence, Measure, resample
from assay.decide.methods import flip_points, nondominated, normalize, topsis, weighted

__all__ = ["STABILITY_CONCENTRATION", "Decision", "GateCheck", "decide"]

# Dirichlet concentration of the weight perturbation: a weight of 0.35 draws with sd ≈ 0.085 (a quarter of it).
STABILITY_CONCENTRATION = 30.0
STABILITY_DRAWS = 1000


@dataclass(frozen=True)
class GateCheck:
    criterion: str
    op: str  # min | max | equals | includes | measured
    bound: Any
    value: Any
    margin: float | None  # signed distance to the bound, > 0 passed by that much; None for equals/includes
    passed: bool
    p_pass: float | None  # share of resamples in which it passes; None where not resampled

    def to_json(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "op": self.op,
            "bound": self.bound,
            "value": self.value,
            "margin": self.margin,
            "passed": self.passed,
            "p_pass": self.p_pass,
        }


@dataclass
class Decision:
    settings: DecisionSettings
    targets: list[str]
    values: dict[str, dict[str, Measure | None]]  # target -> criterion -> measure
    gates: dict[str, list[GateCheck]]
    passing: list[str]
    winner: str | None
    ranking: list[dict[str, Any]]
    normalized: dict[str, dict[str, float]]
    separation: dict[str, Any]
    pareto: list[str]
    pareto_p: dict[str, float]
    pugh: dict[str, dict[str, int]]
    datum: str | None
    sensitivity: dict[str, dict[str, Any]]
    stability: dict[str, Any]
    caveats: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)

    def p_first(self, target: str) -> float:
        return next((r["p_first"] for r in self.ranking if r["target"] == target), 0.0)

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        weights = _weights(s.criteria)
        totals = {
            t: {
                "plus": sum(v == 1 for v in row.values()),
                "zero": sum(v == 0 for v in row.values()),
                "minus": sum(v == -1 for v in row.values()),
                "net": sum(row.values()),
            }
            for t, row in self.pugh.items()
        }
        return {
            "winner": self.winner,
            "method": {
                "normalize": s.normalize,
                "draws": s.draws,
                "seed": s.seed,
                "confidence": s.confidence,
                "datum": self.datum,
                "weights": dict(zip([c.name for c in s.criteria], weights.tolist(), strict=True)),
                "rank_interval_level": 0.95,
                "interval_level": 0.95,
                "weights_rescaled": "in proportion, so that all sum to 1",
            },
            "criteria": [
                {
                    "name": c.name,
                    "metric": c.metric,
                    "weight": float(w),
                    "direction": c.direction,
                    "must": c.must.model_dump(exclude_none=True) if c.must else None,
                    "unit": c.unit,
                    "label": _label(c),
                }
                for c, w in zip(s.criteria, weights, strict=True)
            ],
            "targets": self.targets,
            "runs": self.runs,
            "values": {
                t: {
                    c: (m.to_json() if m else {"value": None, "low": None, "high": None, "n": None, "source": None})
                    for c, m in row.items()
                }
                for t, row in self.values.items()
            },
            "gates": {
                t: {
                    "passed": t in self.passing,
                    "failed": [g.criterion for g in checks if not g.passed],
                    "checks": [g.to_json() for g in checks],
                }
                for t, checks in self.gates.items()
            },
            "ranking": self.ranking,
            "normalized": self.normalized,
            "separation": self.separation,
            "pareto": self.pareto,
            "pareto_criteria": s.pareto_criteria,
            "pareto_p": self.pareto_p,
            "pugh": self.pugh,
            "pugh_datum": self.datum,
            "pugh_totals": totals,
            "sensitivity": self.sensitivity,
            "stability": self.stability,
            "caveats": self.caveats,
        }


def _weights(criteria: list[Criterion]) -> np.ndarray:
    w = np.array([c.weight for c in criteria], dtype=np.float64)
    return np.asarray(w / w.sum())


def _value(m: Measure | None) -> float | None:
    return None if m is None else m.value


def _label(c: Criterion) -> str:
    """'quality (eval.math.score)': what an axis or a column says."""
    return f"{c.name} ({c.metric})"


def _gate(c: Criterion, m: Measure | None, draws: np.ndarray | None) -> list[GateCheck]:
    must = c.must
    if m is None or (m.value is None and m.raw is None):
        return [GateCheck(c.name, "measured", None, None, None, False, None)]
    if must is None:
        return []
    out = []
    for op, bound in (("min", must.min), ("max", must.max)):
        if bound is None:
            continue
        v = float(m.value) if m.value is not None else math.nan
        margin = v - bound if op == "min" else bound - v
        passed = margin >= 0
        p = None
        if draws is not None and m.source not in ("exact", "point") and not np.isnan(draws).all():
            p = float(np.mean(draws >= bound) if op == "min" else np.mean(draws <= bound))
        out.append(GateCheck(c.name, op, bound, m.value, margin, bool(passed), p))
    if must.equals is not None:
        raw = m.raw if m.raw is not None else m.value
        same = raw == must.equals or (
            isinstance(raw, int | float) and isinstance(must.equals, int | float) and float(raw) == float(must.equals)
        )
        out.append(GateCheck(c.name, "equals", must.equals, raw, None, bool(same), None))
    if must.includes is not None:
        have = [str(x) for x in (m.raw or [])]
        lacking = [x for x in must.includes if x not in have]
        out.append(GateCheck(c.name, "includes", must.includes, have, float(-len(lacking)), not lacking, None))
    return out


def decide(settings: DecisionSettings, evidence: Evidence, targets: list[str] | None = None) -> Decision:
    """The whole decision over `targets` (default: every target the evidence names, in its order)."""
    names = list(targets or evidence.targets)
    crit = settings.criteria
    w = _weights(crit)
    directions = np.array([1.0 if c.direction == "max" else -1.0 for c in crit])
    rng = np.random.default_rng(settings.seed)
    draws = resample(evidence, [c.metric for c in crit], names, settings.draws, rng)
    values = {t: {c.name: evidence.get(c.metric, t) for c in crit} for t in names}

    gates = {
        t: [g for c in crit for g in _gate(c, values[t][c.name], draws[c.metric][:, i])] for i, t in enumerate(names)
    }
    passing = [t for t in names if all(g.passed for g in gates[t])]
    idx = [names.index(t) for t in passing]

    x = np.array([[_value(values[t][c.name]) for c in crit] for t in passing], dtype=np.float64).reshape(
        len(passing), len(crit)
    )  # every value is there: a missing one fails its gate
    bounds = np.array([(c.must.bound(c.direction) if c.must else None) for c in crit], dtype=np.float64)
    caveats = [cv.to_json() for cv in evidence.caveats if cv.target in names]
    datum = settings.datum if settings.datum in names else (names[0] if names else None)
    pugh = _pugh(crit, evidence, names, datum, draws)
    if not passing:
        return Decision(
            settings,
            names,
            values,
            gates,
            passing,
            None,
            [],
            {},
            {"separated": False, "top_two": []},
            [],
            {},
            pugh,
            datum,
            {},
            {},
            caveats,
            dict(evidence.runs),
        )

    n = normalize(x, directions, settings.normalize, bounds)
    score = weighted(n, w)
    close = topsis(x, w, directions)
    order = sorted(range(len(passing)), key=lambda k: (-round(float(score[k]), 12), k))  # ties: config order
    winner_k = order[0]
    topsis_rank = {k: r + 1 for r, k in enumerate(sorted(range(len(passing)), key=lambda k: (-close[k], k)))}

    xd = np.stack([draws[c.metric][:, idx] for c in crit], axis=-1)  # (draws, passing, criteria)
    xd = np.where(np.isnan(xd), x[None, :, :], xd)
    sd = weighted(normalize(xd, directions, settings.normalize, bounds), w)  # (draws, passing)
    # rank 1 = best; ties broken by config order, as for the point ranking
    # ties share a rank (1, 1, 3) and split first place: two targets equal in every draw are 50% each, never
    # 100% to the one listed first
    sd = np.round(sd, 12)  # equal scores summed in another order must still tie
    ranks = (sd[:, None, :] > sd[:, :, None]).sum(axis=-1) + 1  # [draw, k]: 1 + how many score above k
    firsts = ranks == 1
    p_first = (firsts / firsts.sum(axis=1, keepdims=True)).mean(axis=0)
    ranking = []
    for k in order:
        lo, hi = np.quantile(ranks[:, k], [0.025, 0.975])
        ranking.append(
            {
                "target": passing[k],
                "score": float(score[k]),
                "p_first": float(p_first[k]),
                "rank_interval": [math.floor(lo), math.ceil(hi)],
                "topsis": float(close[k]),
                "topsis_rank": topsis_rank[k],
            }
        )
    separation = _separation(settings, evidence, crit, passing, order, sd, p_first, values)

    front_cols = [j for j, c in enumerate(crit) if c.name in settings.pareto_criteria]
    front = nondominated(x[:, front_cols], directions[front_cols])
    front_p = nondominated(xd[:, :, front_cols], directions[front_cols]).mean(axis=0)
    flips = flip_points(n, w, winner_k)
    sensitivity = {
        c.name: {
            "weight": f.weight,
            "stays_from": float(f.stays_from),
            "stays_to": float(f.stays_to),
            "flip_at_weight": f.flip_at,
            "new_winner": passing[f.new_winner] if f.new_winner is not None else None,
        }
        for c, f in zip(crit, flips, strict=True)
    }
    stability = _stability(n, w, passing, winner_k, rng)
    return Decision(
        settings,
        names,
        values,
        gates,
        passing,
        passing[winner_k],
        ranking,
        {t: {c.name: float(n[k, j]) + 0.0 for j, c in enumerate(crit)} for k, t in enumerate(passing)},
        separation,
        [t for k, t in enumerate(passing) if front[k]],
        {t: float(front_p[k]) for k, t in enumerate(passing)},
        pugh,
        datum,
        sensitivity,
        stability,
        caveats,
        dict(evidence.runs),
    )


def _separation(
    settings: DecisionSettings,
    evidence: Evidence,
    crit: list[Criterion],
    passing: list[str],
    order: list[int],
    sd: np.ndarray,
    p_first: np.ndarray,
    values: dict[str, dict[str, Measure | None]],
) -> dict[str, Any]:
    """Whether the winner is first with at least `confidence`; if not, the sample multiple that would make it so.

    With D the resampled score lead of the winner over the runner-up (mean μ, sd σ), the lead is
    separated at confidence c when μ ≥ z_c·σ; σ shrinks as 1/√n, so k = (z_c·σ/μ)² times the samples.
    """
    top = order[0]
    p = float(p_first[top])
    if len(order) < 2:
        return {"separated": True, "top_two": [passing[top]], "p_first": p, "factor": None, "samples": {}}
    second = order[1]
    lead = sd[:, top] - sd[:, second]
    mu, sigma = float(lead.mean()), float(lead.std())
    separated = p >= settings.confidence
    out: dict[str, Any] = {
        "separated": separated,
        "top_two": [passing[top], passing[second]],
        "p_first": p,
        "lead_mean": mu,
        "lead_sd": sigma,
        "factor": None,
        "samples": {},
    }
    if separated or (sigma == 0 and mu > 0):
        return out
    if mu <= 0:
        out["factor"] = math.inf
        return out
    z = NormalDist().inv_cdf(settings.confidence)
    k = max(1.0, (z * sigma / mu) ** 2)
    out["factor"] = k
    samples: dict[str, list[int]] = {}
    for c in crit:
        for t in (passing[top], passing[second]):
            m = values[t][c.name]
            if m is not None and m.source != "exact" and m.n and m.group:
                now = samples.get(m.group, [0, 0])[0]
                samples[m.group] = [max(now, m.n), math.ceil(max(now, m.n) * k)]
    out["samples"] = samples
    return out


def _pugh(
    crit: list[Criterion], evidence: Evidence, names: list[str], datum: str | None, draws: dict[str, np.ndarray]
) -> dict[str, dict[str, int]]:
    """+1 / 0 / −1 per criterion against the datum, 0 where the difference is not significant at 5%."""
    if datum is None:
        return {}
    d = names.index(datum)
    out: dict[str, dict[str, int]] = {}
    for i, t in enumerate(names):
        if t == datum:
            continue
        row = {}
        for c in crit:
            a, b = evidence.get(c.metric, t), evidence.get(c.metric, datum)
            sign = 1 if c.direction == "max" else -1
            if a is None or b is None or a.value is None or b.value is None:
                row[c.name] = 0
                continue
            diff = (a.value - b.value) * sign
            p = evidence.tests.get((c.metric, t, datum))
            if "point" in (a.source, b.source):
                significant = False  # no interval to say it with
            elif p is not None:
                significant = p < 0.05
            elif a.source == "exact" and b.source == "exact":
                significant = abs(a.value - b.value) > 1e-12 * max(1.0, abs(a.value), abs(b.value))
            else:
                delta = draws[c.metric][:, i] - draws[c.metric][:, d]
                lo, hi = np.nanquantile(delta, [0.025, 0.975])
                significant = bool(lo > 0 or hi < 0)
            row[c.name] = (1 if diff > 0 else -1) if significant and diff != 0 else 0
        out[t] = row
    return out


def _stability(
    n: np.ndarray, w: np.ndarray, passing: list[str], winner: int, rng: np.random.Generator
) -> dict[str, Any]:
    """First places when the weights are drawn from Dirichlet(κ·w) (zero weights stay zero)."""
    on = w > 0
    ws = np.zeros((STABILITY_DRAWS, len(w)))
    ws[:, on] = rng.dirichlet(STABILITY_CONCENTRATION * w[on], size=STABILITY_DRAWS)
    scores = ws @ n.T  # (draws, passing)
    firsts = np.argmax(scores, axis=1)
    share = np.bincount(firsts, minlength=len(passing)) / STABILITY_DRAWS
    return {
        "winner_share": float(share[winner]),
        "share_first": {t: float(share[k]) for k, t in enumerate(passing)},
        "concentration": STABILITY_CONCENTRATION,
        "draws": STABILITY_DRAWS,
    }
