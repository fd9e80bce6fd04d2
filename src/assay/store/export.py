"""Records out to files for notebooks and spreadsheets: CSV or JSON Lines."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Literal

import orjson

from assay.records import Annotations, Record

__all__ = ["EXPORT_COLUMNS", "export_records", "write_export"]

# Derived latencies come first: they are what people plot. Raw stamps follow for anyone who wants to recompute.
_DERIVED = ("ttft_ms", "e2e_ms", "tpot_ms", "output_tokens_per_s")
EXPORT_COLUMNS: tuple[str, ...] = (
    *_DERIVED,
    *(f.name for f in dataclasses.fields(Record) if f.name not in ("content_offsets_us",)),
    "annotations",  # {kind: value} of the Record's latest annotations (score, safety, verdict, item)
)


def _row(r: Record, notes: Annotations) -> dict[str, object]:
    row: dict[str, object] = {k: getattr(r, k) for k in _DERIVED}
    for name in EXPORT_COLUMNS[len(_DERIVED) : -1]:
        row[name] = getattr(r, name)
    kinds = {f.name: getattr(notes, f.name) for f in dataclasses.fields(notes)}
    row["annotations"] = {k: dataclasses.asdict(v) for k, v in kinds.items() if v is not None}
    row["itl_ms"] = r.itl_ms()
    return row


def export_records(rows: Iterable[tuple[Record, Annotations]], out: IO[str], fmt: Literal["csv", "jsonl"]) -> int:
    """Write one row per Record; returns how many. CSV keeps ITLs and annotations as JSON in one cell each."""
    n = 0
    if fmt == "jsonl":
        for r, notes in rows:
            out.write(orjson.dumps(_row(r, notes), option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
            n += 1
        return n
    writer = csv.DictWriter(out, fieldnames=[*EXPORT_COLUMNS, "itl_ms"])
    writer.writeheader()
    for r, notes in rows:
        row = _row(r, notes)
        for key, value in row.items():  # a spreadsheet cell holds text: nested values as JSON
            if isinstance(value, dict | list):
                row[key] = orjson.dumps(value).decode()
        writer.writerow(row)
        n += 1
    return n


def write_export(rows: Iterable[tuple[Record, Annotations]], path: Path, fmt: Literal["csv", "jsonl"]) -> int:
    """Export to `path` atomically: a refused or failed export leaves no partial file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        n = export_records(rows, f, fmt)
    tmp.replace(path)
    return n
