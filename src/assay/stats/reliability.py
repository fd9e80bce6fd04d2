"""What availability means: a time bucket is up when at least half its countable attempts succeeded.

The buckets themselves are cut by the per-target summary (stats/summary.py), the one place Records are read.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UPTIME_THRESHOLD", "Bucket"]

UPTIME_THRESHOLD = 0.5  # a bucket is "up" when at least half its countable attempts succeeded


@dataclass(frozen=True, slots=True)
class Bucket:
    start_s: float  # seconds since the first attempt
    attempts: int
    succeeded: int
    up: bool
