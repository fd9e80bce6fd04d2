"""OTLP traces of gateway requests (the `otel` extra): a server span per client request, a client span per attempt.

Spans are made when a request ends, from its Records (their monotonic stamps moved
onto the wall clock), and exported in batches by the SDK's own thread: nothing is
added to the per-token path, and a collector that is down costs a log line, not a
request. Attribute names are the OpenTelemetry GenAI semantic conventions'.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from assay.clock import Clock
from assay.errors import ConfigError

if TYPE_CHECKING:
    from assay.gateway.forward import Exchange

__all__ = ["Tracing"]

log = logging.getLogger("assay.gateway")


class Tracing:
    def __init__(self, endpoint: str, service_name: str, clock: Clock) -> None:
        try:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace import SpanKind, Status, StatusCode
        except ImportError:
            raise ConfigError(
                "gateway.otlp_endpoint is set but OpenTelemetry is not installed: pip install 'assay[otel]'"
            ) from None
        self._trace, self._kind, self._status, self._code = trace, SpanKind, Status, StatusCode
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.tracer = self.provider.get_tracer("assay.gateway")
        self.clock = clock
        self.offset_ns = int(clock.wall_s() * 1e9) - clock.now_ns()  # monotonic stamp + offset = epoch ns

    def request(self, exchange: Exchange, status: int) -> None:
        """The spans of one finished client request."""
        off, now = self.offset_ns, self.clock.now_ns()
        route = exchange.route
        root_attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": route.model, "http.response.status_code": status,
            "assay.route": route.model, "assay.policy": route.policy, "assay.attempts": len(exchange.records),
        }  # fmt: skip
        if exchange.served_by:
            root_attrs["assay.target"] = exchange.served_by
        if exchange.key is not None:
            root_attrs["assay.key"] = exchange.key.name
        root = self.tracer.start_span(f"chat {route.model}", kind=self._kind.SERVER,
                                      start_time=exchange.received_ns + off, attributes=root_attrs)  # fmt: skip
        if status >= 500:
            root.set_status(self._status(self._code.ERROR))
        context = self._trace.set_span_in_context(root)
        for rec in exchange.records:
            target = exchange.state.targets[rec.target]
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": target.api,
                "gen_ai.request.model": target.model, "assay.target": rec.target, "assay.attempt": rec.attempt,
                "gen_ai.usage.input_tokens": rec.input_tokens, "gen_ai.usage.output_tokens": rec.output_tokens,
            }  # fmt: skip
            if rec.fallback_of:
                attrs["assay.fallback_of"] = rec.fallback_of
            if rec.ttft_ms is not None:
                attrs["gen_ai.server.time_to_first_token"] = rec.ttft_ms / 1e3
            if rec.cost_usd is not None:
                attrs["assay.cost_usd"] = rec.cost_usd
            if rec.error_class:
                attrs["error.type"] = rec.error_class
            span = self.tracer.start_span(f"chat {target.model}", context=context, kind=self._kind.CLIENT,
                                          start_time=(rec.sent_ns or exchange.received_ns) + off,
                                          attributes=attrs)  # fmt: skip
            if rec.error_class:
                span.set_status(self._status(self._code.ERROR, rec.error_message or rec.error_class))
            span.end(end_time=(rec.done_ns or now) + off)
        root.end(end_time=now + off)

    def shutdown(self) -> None:
        """Export what is left (blocking; call it from a thread)."""
        try:
            self.provider.shutdown()
        except Exception as e:  # a collector that is gone must not fail the shutdown
            log.warning("gateway: OTLP traces could not be flushed: %s", e)
