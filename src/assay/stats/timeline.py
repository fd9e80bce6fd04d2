"""Per-second series of a run: what was offered and sent, what came back, what was in flight, TTFT."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from assay.records import Record
from assay.stats.distribution import Distribution

__all__ = ["timeline"]


def timeline(records: Iterable[Record], bucket_s: float = 1.0, t0_ns: int | None = None) -> list[dict[str, Any]]:
    """Per `bucket_s` of the run: offered and sent requests, successes, errors by class, output tokens,
    requests in flight at the bucket's start, and TTFT p50/p99 of the requests sent in it.

    With `t0_ns` (the run's first intended send) the Records are streamed and memory stays
    per bucket; without it they are read into memory once to find the start.
    """
    if t0_ns is None:
        records = [r for r in records if r.error_class != "cancelled" and (r.intended_ns or r.sent_ns)]
        if not records:
            return []
        t0_ns = min(r.intended_ns or r.sent_ns for r in records)
    width = int(bucket_s * 1e9)
    rows: dict[int, dict[str, Any]] = {}
    ttft: dict[int, Distribution] = {}
    delta: Counter[int] = Counter()  # +1 where a request starts, -1 where it ends

    def row(i: int) -> dict[str, Any]:
        if i not in rows:
            rows[i] = {
                "t_s": i * bucket_s,
                "offered": 0,
                "sent": 0,
                "ok": 0,
                "errors": {},
                "output_tokens": 0,
            }
        return rows[i]

    for r in records:
        start = r.intended_ns or r.sent_ns
        if r.error_class == "cancelled" or not start:
            continue
        row(max(0, (start - t0_ns) // width))["offered"] += 1
        if not r.sent_ns:
            continue
        i = max(0, (r.sent_ns - t0_ns) // width)
        here = row(i)
        here["sent"] += 1
        delta[i] += 1
        delta[max(i, ((r.done_ns or r.sent_ns) - t0_ns) // width + 1)] -= 1
        if r.ok:
            here["ok"] += 1
            here["output_tokens"] += r.output_tokens
            if (x := r.ttft_ms) is not None:
                ttft.setdefault(i, Distribution()).add(x)
        elif r.error_class:
            here["errors"][r.error_class] = here["errors"].get(r.error_class, 0) + 1
    if not rows:
        return []
    out = []
    active = 0
    for i in range(max(rows) + 1):
        r_ = row(i)
        r_["in_flight"] = active  # requests still running when this bucket begins
        active += delta.get(i, 0)
        r_["ttft_ms"] = (ttft[i] if i in ttft else Distribution()).to_json(rank_ci=True)
        out.append(r_)
    return out
