"""Error counts, success rate and uptime from Records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from assay.errors import ERROR_CLASSES
from assay.records import Record

__all__ = ["UPTIME_THRESHOLD", "Bucket", "error_counts", "error_examples", "uptime"]

UPTIME_THRESHOLD = 0.5  # a bucket is "up" when at least half its countable attempts succeeded


@dataclass(frozen=True, slots=True)
class Bucket:
    start_s: float  # seconds since the first attempt
    attempts: int
    succeeded: int
    up: bool


def error_counts(records: Sequence[Record]) -> dict[str, int]:
    """Failed records by class; every class in the taxonomy is present, zero or not."""
    counts = dict.fromkeys(ERROR_CLASSES, 0)
    for r in records:
        if not r.ok and r.error_class and r.error_class != "cancelled":
            counts[r.error_class] = counts.get(r.error_class, 0) + 1
    return counts


def error_examples(records: Sequence[Record]) -> dict[str, str]:
    """One example message per error class (the first seen)."""
    out: dict[str, str] = {}
    for r in records:
        if not r.ok and r.error_class and r.error_class not in out:
            out[r.error_class] = r.error_message or ""
    return out


def uptime(records: Sequence[Record], bucket_s: float | None = None) -> tuple[float | None, list[Bucket], float]:
    """Share of time buckets in which the API was up, the buckets, and the bucket width used.

    Client errors (4xx but 429) and cancellations are the caller's doing and do
    not count for or against availability. Buckets with no attempts are left out.
    """
    counted = [r for r in records if r.error_class not in ("client_error", "cancelled")]
    if not counted:
        return None, [], bucket_s or 1.0
    t0 = min(r.wall_start_s for r in counted)
    span = max(r.wall_start_s for r in counted) - t0
    width = bucket_s or max(1.0, span / 20)
    n_buckets = int(span // width) + 1
    attempts = [0] * n_buckets
    ok = [0] * n_buckets
    for r in counted:
        i = min(n_buckets - 1, int((r.wall_start_s - t0) // width))
        attempts[i] += 1
        ok[i] += r.ok
    buckets = [
        Bucket(i * width, a, s, s >= math.ceil(UPTIME_THRESHOLD * a))
        for i, (a, s) in enumerate(zip(attempts, ok, strict=True))
        if a
    ]
    pct = 100.0 * sum(b.up for b in buckets) / len(buckets)
    return pct, buckets, width
