"""OTLP traces: a server span per client request and a client span per attempt reach a collector on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from assay.simulator import Faults
from tests.gateway.conftest import GatewayFactory, post, target, vendors

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = v.string_value or v.int_value or v.double_value
    return out


async def test_each_request_and_attempt_is_a_span(sims, gateway: GatewayFactory) -> None:
    spans: list[Any] = []

    async def collector(request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", collector)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        sim = await sims(vendors(p={"faults": Faults(server_error=1.0)}, b={}))
        gw = await gateway("targets:\n" + target(sim, "p") + target(sim, "b") +
                           f"gateway:\n  otlp_endpoint: http://127.0.0.1:{port}/v1/traces\n"
                           "  routes:\n    - {model: chat, targets: [p, b], retries: 0}\n")  # fmt: skip
        status, _, _ = await post(gw.url + "/v1/chat/completions", CHAT)
        assert status == 200
        await gw.stop(drain_s=2)  # flushes the exporter
    finally:
        await runner.cleanup()
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"chat chat", "chat p", "chat b"}
    root, failed, served = by_name["chat chat"], by_name["chat p"], by_name["chat b"]
    assert failed.parent_span_id == root.span_id and served.parent_span_id == root.span_id
    assert failed.trace_id == root.trace_id == served.trace_id
    assert _attrs(root)["assay.target"] == "b" and _attrs(root)["http.response.status_code"] == 200
    assert _attrs(failed)["error.type"] == "server_error" and failed.status.code == 2  # STATUS_CODE_ERROR
    assert _attrs(served)["assay.fallback_of"] == "p" and _attrs(served)["gen_ai.usage.output_tokens"] == 12
    assert root.start_time_unix_nano <= failed.start_time_unix_nano <= served.start_time_unix_nano
    assert served.end_time_unix_nano <= root.end_time_unix_nano
