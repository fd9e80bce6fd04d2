"""The gateway's HTTP edge: both protocols' endpoints, keys and limits, metrics and admin.

    POST /v1/chat/completions   OpenAI chat completions (streaming or not)
    POST /v1/messages           Anthropic messages (streaming or not)
    GET  /v1/models             the routes' model names (OpenAI's or Anthropic's list shape)
    GET  /healthz               200 while serving, 503 while draining
    GET  /metrics               Prometheus text (gateway/metrics.py)
    GET  /admin/state           routes, each target's health and breaker, keys' budgets, counters
    POST /admin/reload          re-read the project file; a bad one is refused and the old one kept

Every refusal is in the caller's protocol's error format, with the status it
would get from that provider: 400 bad body, 401 no or wrong key, 403 a route the
key may not use, 404 unknown model (listing the known ones), 413 body too large,
429 over a key's limits or budget (with Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from assay.catalog import Catalog
from assay.clients import Transport
from assay.clock import Clock
from assay.config import ProjectConfig, load_config
from assay.errors import AssayError, ConfigError, WireError
from assay.gateway.forward import Exchange, facts_of
from assay.gateway.metrics import Metrics
from assay.gateway.state import GatewayState, build_state
from assay.gateway.tracing import Tracing
from assay.model import Target
from assay.records import Record
from assay.routing import Transition
from assay.store import RecordWriter
from assay.wire import ANTHROPIC, OPENAI, Wire

__all__ = ["KNOWN_FIELDS", "Gateway"]

log = logging.getLogger("assay.gateway")

# Each protocol's request fields, as its vendor documents them (and, for OpenAI, what OpenAI-compatible
# servers such as vLLM add). A field outside these is refused with 400, as the vendors themselves do.
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "openai": frozenset((
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
        "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
        "top_logprobs", "top_p", "user", "web_search_options", "verbosity",
        # OpenAI-compatible servers' own (vLLM, TGI, llama.cpp)
        "top_k", "min_p", "repetition_penalty", "continue_final_message", "add_generation_prompt",
        "chat_template_kwargs", "guided_json", "guided_regex", "guided_choice", "ignore_eos", "min_tokens",
    )),
    "anthropic": frozenset((
        "model", "messages", "max_tokens", "container", "context_management", "mcp_servers", "metadata",
        "service_tier", "stop_sequences", "stream", "system", "temperature", "thinking", "tool_choice", "tools",
        "top_k", "top_p",
    )),
}  # fmt: skip


class Gateway:
    """One gateway process: the live state (swapped on reload), metrics, and where Records go."""

    def __init__(self, config: ProjectConfig, clock: Clock, catalog: Catalog, *, config_path: Path | None = None,
                 run_id: str = "", session_no: int = 0, writer: RecordWriter | None = None,
                 loader: Callable[[Path], ProjectConfig] | None = None) -> None:  # fmt: skip
        self.loader = loader or load_config
        self.config, self.clock, self.catalog, self.config_path = config, clock, catalog, config_path
        self.run_id, self.session, self.writer = run_id, session_no, writer
        self.metrics = Metrics()
        self.state: GatewayState | None = None
        self.http: Transport | None = None
        self.draining = False
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.reloads = {"ok": 0, "refused": 0}
        self.last_reload_error: str | None = None
        self._seq = 0
        self._prefix = secrets.token_hex(4)
        settings = config.gateway
        self.tracing: Tracing | None = None
        if settings is not None and settings.otlp_endpoint:
            self.tracing = Tracing(settings.otlp_endpoint, settings.service_name, clock)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self, session: Transport) -> None:
        self.http = session
        self.state = build_state(self.config, session, self.clock, self.catalog)

    def reload(self) -> None:
        """Re-read the project file and swap the state; ConfigError (the old state kept) when it is bad."""
        if self.config_path is None or self.http is None or self.state is None:
            raise ConfigError("this gateway was not started from a project file, so it cannot reload one")
        try:
            config = self.loader(self.config_path)
            state = build_state(config, self.http, self.clock, self.catalog, previous=self.state)
        except ConfigError as e:
            self.reloads["refused"] += 1
            self.last_reload_error = str(e)
            raise
        self.config, self.state = config, state
        self.reloads["ok"] += 1
        self.last_reload_error = None

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new requests and wait (bounded) for those in flight; True if they all finished."""
        self.draining = True
        try:
            await asyncio.wait_for(self.idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    def app(self) -> web.Application:
        max_body = self.state.settings.max_body_bytes if self.state else 8 * 1024 * 1024
        app = web.Application(client_max_size=max_body, middlewares=[self._never_a_crash])
        app.router.add_post(OPENAI.route, self._openai)
        app.router.add_post(ANTHROPIC.route, self._anthropic)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/admin/state", self._admin_state)
        app.router.add_post("/admin/reload", self._admin_reload)
        app.router.add_route("*", "/{tail:.*}", self._no_such_path)
        return app

    async def _no_such_path(self, request: web.Request) -> web.Response:
        """Any other path or method: a 404 (405 for a known path) in the OpenAI error format, listing what is served."""
        known = {OPENAI.route: "POST", ANTHROPIC.route: "POST", "/v1/models": "GET", "/healthz": "GET",
                 "/metrics": "GET", "/admin/state": "GET", "/admin/reload": "POST"}  # fmt: skip
        status = 405 if request.path in known else 404
        message = (f"{request.method} {request.path} is not served; this gateway serves "
                   + ", ".join(f"{m} {p}" for p, m in known.items()))  # fmt: skip
        wire = ANTHROPIC if request.path.startswith(ANTHROPIC.route) else OPENAI
        return web.Response(status=status, body=wire.error_body(status, message), content_type="application/json")

    @web.middleware
    async def _never_a_crash(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        """Our own bug answers a clean 500 in the caller's protocol and is logged; it never kills the process."""
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("gateway: internal error on %s %s", request.method, request.path)
            wire = ANTHROPIC if request.path == ANTHROPIC.route else OPENAI
            body = wire.error_body(500, "internal gateway error (logged)", None)
            return web.Response(status=500, body=body, content_type="application/json")

    # -- the two protocols -------------------------------------------------------------------------------------
    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, OPENAI)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, ANTHROPIC)

    def _refuse(self, wire: Wire, status: int, message: str, why: str, headers: dict[str, str] | None = None,
                type: str | None = None) -> web.Response:  # fmt: skip
        self.metrics.refused.inc((why,))
        self.metrics.requests.inc(("", str(status)))
        return web.Response(status=status, body=wire.error_body(status, message, type), headers=headers,
                            content_type="application/json")  # fmt: skip

    async def _chat(self, request: web.Request, wire: Wire) -> web.StreamResponse:
        received_ns = self.clock.now_ns()
        state = self.state
        assert state is not None
        if self.draining:
            return self._refuse(wire, wire.overloaded_status, "the gateway is shutting down; retry elsewhere",
                                "draining")  # fmt: skip
        if self.in_flight >= state.settings.max_in_flight:  # shed load before reading the body, as providers do
            return self._refuse(wire, wire.overloaded_status, f"the gateway is serving its limit of "
                                f"{state.settings.max_in_flight} requests; retry shortly", "overloaded",
                                {"retry-after": "1"})  # fmt: skip
        key = None
        if not state.keys.open:
            key = state.keys.find(_presented_key(request))
            if key is None:
                return self._refuse(wire, 401, "missing or unknown API key for this gateway", "auth",
                                    type="authentication_error" if wire is ANTHROPIC else "invalid_api_key")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(wire, 413, f"request body over the gateway's limit of "
                                           f"{state.settings.max_body_bytes} bytes", "too_large")  # fmt: skip
        try:
            incoming = wire.parse_request(body)
        except WireError as e:
            return self._refuse(wire, e.status, e.message, "bad_request")
        unknown = sorted(set(incoming.request.extra) - KNOWN_FIELDS[wire.api])
        if unknown:
            return self._refuse(wire, 400, f"unrecognized request argument(s): {', '.join(unknown)}", "bad_request")
        route = state.routes.get(incoming.model)
        if route is None:
            known = ", ".join(state.routes)
            return self._refuse(wire, 404, f"the model {incoming.model!r} does not exist on this gateway; "
                                           f"known models: {known}", "unknown_model")  # fmt: skip
        facts = facts_of(incoming.request)
        reserved = 0.0
        if key is not None:
            rate_in, rate_out = state.worst_rates(route)
            reserved = (facts.input_tokens * rate_in + facts.max_tokens * rate_out) / 1e6
            refusal = key.admit(route.model, facts.input_tokens + facts.max_tokens, reserved,
                                self.clock.now_ns() / 1e9)  # fmt: skip
            if refusal is not None:
                headers = {"retry-after": str(max(1, int(refusal.retry_after_s + 0.999)))} if refusal.retry_after_s \
                    else None  # fmt: skip
                return self._refuse(wire, refusal.status, refusal.message, refusal.type, headers, refusal.type)
        self._seq += 1
        rid = f"{'chatcmpl' if wire is OPENAI else 'msg'}-gw{self._prefix}{self._seq:x}"
        exchange = Exchange(self, state, request, wire, incoming, route.model, key, rid, received_ns, reserved)
        self.in_flight += 1
        self.idle.clear()
        status = "200"
        try:
            response = await exchange.serve()
            status = str(response.status)
            return response
        except BaseException:
            status = "499"
            raise
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()
            self.metrics.requests.inc((route.model, status))
            self.metrics.request_duration.observe(("chat", route.model, status),
                                                  (self.clock.now_ns() - received_ns) / 1e9)  # fmt: skip
            if self.tracing is not None:
                self.tracing.request(exchange, int(status))

    # -- what each request reports -----------------------------------------------------------------------------
    def observe_attempt(self, rec: Record, target: Target) -> None:
        m = self.metrics
        end = rec.done_ns or self.clock.now_ns()
        if rec.sent_ns:
            labels = ("chat", target.api, rec.route or "", target.model, rec.target, rec.error_class or "")
            m.duration.observe(labels, (end - rec.sent_ns) / 1e9)
        if rec.ok:
            base = ("chat", target.api, rec.route or "", rec.target)
            m.tokens.observe((*base, "input"), rec.input_tokens)
            m.tokens.observe((*base, "output"), rec.output_tokens)
            if (ttft := rec.ttft_ms) is not None:
                m.ttft.observe(base, ttft / 1e3)
            if (tpot := rec.tpot_ms) is not None:
                m.tpot.observe(base, tpot / 1e3)

    def observe_served(self, exchange: Exchange, result: Any, sink: Any) -> None:
        """The gateway's own time: client-facing time to first byte minus the serving attempt's, when the first
        attempt served (waits and failed attempts are the providers', not overhead)."""
        if len(exchange.records) != 1:
            return
        t = result.timing
        if sink.stream and sink.first_write_ns and t.first_token_ns and t.sent_ns:
            added = (sink.first_write_ns - exchange.received_ns) - (t.first_token_ns - t.sent_ns)
        elif not sink.stream and t.done_ns and t.sent_ns:
            added = (self.clock.now_ns() - exchange.received_ns) - (t.done_ns - t.sent_ns)
        else:
            return
        self.metrics.overhead.observe((exchange.route_name,), max(0, added) / 1e9)

    def breaker_moved(self, target: str, moved: Transition) -> None:
        self.metrics.breaker.inc((target, moved.before, moved.after, moved.reason))
        self.metrics.breaker_state.set((target,), 0.0 if moved.after == "closed" else 1.0)
        log.info("gateway: target %s breaker %s -> %s (%s)", target, moved.before, moved.after, moved.reason)

    def write(self, records: Iterable[Record]) -> None:
        if self.writer is None:
            return
        for rec in records:
            self.writer.offer(rec)

    # -- the other endpoints -----------------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        state = self.state
        assert state is not None
        if "anthropic-version" in request.headers:
            data = [{"id": m, "type": "model", "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
                    for m in state.routes]  # fmt: skip
            body: dict[str, Any] = {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                    "last_id": data[-1]["id"] if data else None}  # fmt: skip
        else:
            body = {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "assay-gateway"}
                                               for m in state.routes]}  # fmt: skip
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _healthz(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"status": "draining", "in_flight": self.in_flight}, status=503)
        return web.json_response({"status": "ok", "in_flight": self.in_flight})

    async def _metrics(self, request: web.Request) -> web.Response:
        m = self.metrics
        if self.writer is not None:
            m.dropped.set((), float(self.writer.dropped))
            m.queue.set((), float(self.writer.pending))
        if self.state is not None:
            for name, h in self.state.health.targets.items():
                m.in_flight.set((name,), float(h.in_flight))
                m.breaker_state.set((name,), 0.0 if h.breaker.state == "closed" else 1.0)
        return web.Response(body=m.render(), content_type="text/plain", charset="utf-8",
                            headers={"x-content-type-options": "nosniff"})  # fmt: skip

    def _admin_allowed(self, request: web.Request) -> bool:
        state = self.state
        env = state.settings.admin_key_env if state else None
        if env:
            want = os.environ.get(env, "")
            got = _presented_key(request) or ""
            return bool(want) and hmac.compare_digest(want.encode(), got.encode())
        return _is_loopback(request.remote)

    async def _admin_state(self, request: web.Request) -> web.Response:
        if not self._admin_allowed(request):
            return web.json_response({"error": "admin endpoints need the admin key (gateway.admin_key_env)"},
                                     status=403)  # fmt: skip
        return web.Response(body=orjson.dumps(self.describe()), content_type="application/json")

    async def _admin_reload(self, request: web.Request) -> web.Response:
        if not self._admin_allowed(request):
            return web.json_response({"error": "admin endpoints need the admin key (gateway.admin_key_env)"},
                                     status=403)  # fmt: skip
        try:
            self.reload()
        except ConfigError as e:
            return web.json_response({"reloaded": False, "error": str(e)}, status=400)
        except AssayError as e:
            return web.json_response({"reloaded": False, "error": str(e)}, status=500)
        return web.json_response({"reloaded": True, "routes": list(self.state.routes) if self.state else []})

    def describe(self) -> dict[str, Any]:
        """The /admin/state document."""
        state = self.state
        assert state is not None
        now = self.clock.now_ns() / 1e9
        targets = {}
        for name, h in state.health.targets.items():
            b = h.breaker
            targets[name] = {
                "api": state.targets[name].api, "model": state.targets[name].model,
                "breaker": b.state, "opens": b.opens, "reopens_in_s": max(0.0, b.open_until_s - now)
                if b.state == "open" else 0.0, "cooldown_s": b.cooldown_s,
                "retry_after_left_s": max(0.0, h.cooldown_until_s - now),
                "available": h.available(now), "in_flight": h.in_flight,
                "ewma_ttft_ms": h.ttft_ms, "ewma_e2e_ms": h.e2e_ms, "error_rate_ewma": h.error_rate,
                "rate_limit_headroom": h.headroom, "attempts": h.attempts, "failures": h.failures,
                "price_per_mtok": state.prices.get(name), "context_window": state.windows.get(name),
            }  # fmt: skip
        return {
            "run_id": self.run_id,
            "draining": self.draining,
            "in_flight": self.in_flight,
            "routes": [r.model_dump(mode="json") for r in state.routes.values()],
            "targets": targets,
            "retry_budgets": {m: b.state(now) for m, b in state.budgets.items()},
            "keys": [k.view() for k in state.keys.keys],
            "open": state.keys.open,
            "records": {
                "pending": self.writer.pending if self.writer else 0,
                "dropped": self.writer.dropped if self.writer else 0,
                "store_stalled": self.writer.stalled if self.writer else False,
            },
            "reloads": dict(self.reloads),
            "last_reload_error": self.last_reload_error,
        }


def _presented_key(request: web.Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(remote).is_loopback
    return False
