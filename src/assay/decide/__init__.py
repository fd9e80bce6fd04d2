"""The decision layer: from the evidence of runs (or a table) to gates, a ranking with its uncertainty,
Pugh and Pareto views, sensitivity, and the routes that put the winner into production."""

from assay.decide.decision import Decision, GateCheck, decide
from assay.decide.evidence import Caveat, Evidence, Measure, resample
from assay.decide.methods import Flip, flip_points, nondominated, normalize, topsis, weighted
from assay.decide.sources import decide_runs, evidence_from_runs, resolve_runs

__all__ = [
    "Caveat",
    "Decision",
    "Evidence",
    "Flip",
    "GateCheck",
    "Measure",
    "decide",
    "decide_runs",
    "evidence_from_runs",
    "flip_points",
    "nondominated",
    "normalize",
    "resample",
    "resolve_runs",
    "topsis",
    "weighted",
]
