"""Token economics: what a workload costs on each target and architecture, now and over years."""

from __future__ import annotations

from assay.economics.analysis import (
    BreakEven,
    CostReport,
    LimitCheck,
    Swing,
    TargetCost,
    TcoLine,
    all_options,
    break_even,
    break_evens,
    cost_curve,
    cost_report,
    tco,
    tornado,
    usd,
)
from assay.economics.architectures import ARCHITECTURES, Architecture, MonthCost, Option, options_for
from assay.economics.measured import Measured, measure, with_measured_tokens
from assay.economics.workload import Volume, conversation_list_cost, turn_tokens, volume

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "BreakEven",
    "CostReport",
    "LimitCheck",
    "Measured",
    "MonthCost",
    "Option",
    "Swing",
    "TargetCost",
    "TcoLine",
    "Volume",
    "all_options",
    "break_even",
    "break_evens",
    "conversation_list_cost",
    "cost_curve",
    "cost_report",
    "measure",
    "options_for",
    "tco",
    "tornado",
    "turn_tokens",
    "usd",
    "volume",
    "with_measured_tokens",
]
