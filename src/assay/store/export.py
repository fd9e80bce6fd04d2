"""Records out to files for notebooks and spreadsheets: CSV or JSON Lines."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Literal

import orjson

from assay.model import Record

__all__ = ["EXPORT_COLUMNS", "export_records", "write_export"]

# Derived latencies come first: they are what people plot. Raw stamps follow for anyone who wants to recompute.
_DERIVED = ("ttft_ms", "e2e_ms", "tpot_ms", "output_tokens_per_s")
EXPORT_COLUMNS: tuple[str, ...] = _DERIVED + tuple(
    f.name for f in dataclasses.fields(Record) if f.name not in ("content_offsets_us",)
)


def _row(r: Record) -> dict[str, object]:
    row: dict[str, object] = {k: getattr(r, k) for k in _DERIVED}
    for name in EXPORT_COLUMNS[len(_DERIVED) :]:
        value = getattr(r, name)
        row[name] = orjson.dumps(value).decode() if isinstance(value, dict) else value
    row["itl_ms"] = r.itl_ms()
    return row


def export_records(records: Iterable[Record], out: IO[str], fmt: Literal["csv", "jsonl"]) -> int:
    """Write one row per Record; returns how many. CSV keeps ITLs as a JSON list in one cell."""
    n = 0
    if fmt == "jsonl":
        for r in records:
            out.write(orjson.dumps(_row(r), option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
            n += 1
        return n
    writer = csv.DictWriter(out, fieldnames=[*EXPORT_COLUMNS, "itl_ms"])
    writer.writeheader()
    for r in records:
        row = _row(r)
        row["itl_ms"] = orjson.dumps(row["itl_ms"]).decode()
        writer.writerow(row)
        n += 1
    return n


def write_export(records: Iterable[Record], path: Path, fmt: Literal["csv", "jsonl"]) -> int:
    """Export to `path` atomically: a refused or failed export leaves no partial file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        n = export_records(records, f, fmt)
    tmp.replace(path)
    return n
