"""Evaluation datasets: built-in public ones (loaded from a local copy or their home, cached) and golden sets."""

from __future__ import annotations

from assay.datasets.items import LETTERS, EvalItem
from assay.datasets.loaders import BUILTIN, Dataset, data_dir, golden_item, load_golden, load_items, select

__all__ = [
    "BUILTIN",
    "LETTERS",
    "Dataset",
    "EvalItem",
    "data_dir",
    "golden_item",
    "load_golden",
    "load_items",
    "select",
]
