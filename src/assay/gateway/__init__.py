"""The gateway: an OpenAI- and Anthropic-compatible proxy that routes on live evidence (edges layer).

    app.py       the HTTP edge: endpoints, keys and limits, /metrics, /admin
    forward.py   one request: candidates, attempts, retries, fallbacks, continuation; a Record per attempt
    sink.py      what has reached the client, in its protocol; the only place a finished answer is written
    state.py     routes, clients, health, keys and prices built from one config (swapped on reload)
    keys.py      virtual keys (hashed), RPM/TPM limits, reserve-then-settle budgets
    metrics.py   Prometheus exposition with the OpenTelemetry GenAI names
    tracing.py   OTLP traces (the otel extra): a span per request and per attempt
    serve.py     listening, the port file, SIGHUP reload, SIGTERM drain, the gateway run

Routing decisions are `assay.routing`'s (pure), so the what-if simulator makes the same ones.
"""

from assay.gateway.app import KNOWN_FIELDS, Gateway
from assay.gateway.serve import GatewayOptions, RunningGateway, serve_gateway, start_gateway

__all__ = ["KNOWN_FIELDS", "Gateway", "GatewayOptions", "RunningGateway", "serve_gateway", "start_gateway"]
