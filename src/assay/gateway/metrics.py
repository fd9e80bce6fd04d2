"""Prometheus metrics at /metrics, named by the OpenTelemetry GenAI semantic conventions.

OTel names map to Prometheus as the OTel collector's exporter does: dots become
underscores, the unit is suffixed (`_seconds`), counters end in `_total`. Histogram
buckets are the conventions' advisory ones. Our own small code rather than
prometheus-client: observing is two dict lookups and a bisect on the hot path, with
no lock (one event loop writes).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

__all__ = ["DURATION_BUCKETS", "TOKEN_BUCKETS", "TTFT_BUCKETS", "Counter", "Gauge", "Histogram", "Metrics"]

# gen_ai.client.operation.duration and gen_ai.server.request.duration
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# gen_ai.client.token.usage
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# gen_ai.server.time_to_first_token
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# gen_ai.server.time_per_output_token
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
# assay's own: time the gateway itself adds (sub-millisecond is the point)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

Labels = tuple[str, ...]


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Labels, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    def __init__(self, name: str, help: str, labels: Sequence[str]) -> None:
        self.name, self.help, self.label_names = name, help, tuple(labels)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels, by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        out += [f"{self.name}{_labels(self.label_names, k)} {v:g}" for k, v in sorted(self.values.items())]
        return out


class Gauge(Counter):
    def set(self, labels: Labels, value: float) -> None:
        self.values[labels] = value

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        out += [f"{self.name}{_labels(self.label_names, k)} {v:g}" for k, v in sorted(self.values.items())]
        return out


class Histogram:
    def __init__(self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.help, self.label_names, self.buckets = name, help, tuple(labels), tuple(buckets)
        self.series: dict[Labels, list[float]] = {}  # per-bucket counts, then +Inf, then the sum

    def observe(self, labels: Labels, value: float) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        row[bisect.bisect_left(self.buckets, value)] += 1
        row[-1] += value

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, row in sorted(self.series.items()):
            acc = 0.0
            for bound, n in zip((*self.buckets, float("inf")), row[:-1], strict=True):
                acc += n
                le = 'le="+Inf"' if bound == float("inf") else f'le="{bound:g}"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {acc:g}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {row[-1]:.9g}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {acc:g}")
        return out


_ATTEMPT = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model",
            "assay_target", "error_type")  # fmt: skip
_TOKENS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "assay_target",
           "gen_ai_token_type")  # fmt: skip
_SERVER = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "assay_target")


class Metrics:
    """Every metric the gateway exports; `render` is the /metrics body."""

    def __init__(self) -> None:
        self.duration = Histogram("gen_ai_client_operation_duration_seconds",
                                  "GenAI operation duration, per upstream attempt.", _ATTEMPT, DURATION_BUCKETS)
        self.tokens = Histogram("gen_ai_client_token_usage", "Tokens used per upstream attempt.", _TOKENS,
                                TOKEN_BUCKETS)
        self.ttft = Histogram("gen_ai_server_time_to_first_token_seconds",
                              "Time to the first content token, per successful streaming attempt.", _SERVER,
                              TTFT_BUCKETS)
        self.tpot = Histogram("gen_ai_server_time_per_output_token_seconds",
                              "Time per output token after the first, per successful attempt.", _SERVER, TPOT_BUCKETS)
        self.request_duration = Histogram("gen_ai_server_request_duration_seconds",
                                          "Gateway request duration as its client sees it.",
                                          ("gen_ai_operation_name", "assay_route", "http_status"), DURATION_BUCKETS)
        self.overhead = Histogram("assay_gateway_overhead_seconds",
                                  "Time the gateway adds: client-facing time to first byte minus the serving "
                                  "attempt's own, failed attempts and waits excluded.", ("assay_route",),
                                  OVERHEAD_BUCKETS)
        self.requests = Counter("assay_gateway_requests_total", "Client requests by route and status.",
                                ("assay_route", "http_status"))
        self.attempts = Counter("assay_gateway_attempts_total", "Upstream attempts by target and outcome.",
                                ("assay_target", "outcome"))
        self.fallbacks = Counter("assay_gateway_fallbacks_total",
                                 "Moves to another target within a request, by reason.",
                                 ("assay_route", "from_target", "reason"))
        self.retries = Counter("assay_gateway_retries_total", "Retries on the same target.", ("assay_target",))
        self.continued = Counter("assay_gateway_stream_continuations_total",
                                 "Streams cut after bytes reached the client and continued on another target.",
                                 ("assay_route", "outcome"))
        self.breaker = Counter("assay_gateway_breaker_transitions_total", "Circuit breaker transitions.",
                               ("assay_target", "from_state", "to_state", "reason"))
        self.refused = Counter("assay_gateway_refused_total", "Requests refused at the edge, by reason.",
                               ("reason",))
        self.dropped = Gauge("assay_gateway_records_dropped_total",
                             "Records not stored because the store's queue was full (a slow or locked store).", ())
        self.queue = Gauge("assay_gateway_record_queue", "Records waiting to be stored.", ())
        self.in_flight = Gauge("assay_gateway_in_flight", "Upstream attempts in flight.", ("assay_target",))
        self.breaker_state = Gauge("assay_gateway_breaker_open", "1 while a target's breaker is open or half-open.",
                                   ("assay_target",))

    def render(self) -> bytes:
        lines: list[str] = []
        for m in (self.duration, self.tokens, self.ttft, self.tpot, self.request_duration, self.overhead,
                  self.requests, self.attempts, self.fallbacks, self.retries, self.continued, self.breaker,
                  self.refused, self.dropped, self.queue, self.in_flight, self.breaker_state):  # fmt: skip
            lines += m.render()
        return ("\n".join(lines) + "\n").encode()
