"""Run the gateway: listen, write the port file, reload on SIGHUP, drain on SIGTERM, flush Records.

The gateway is one run in the store (kind `gateway`): every upstream attempt is a
Record of it, so `assay report`, `assay export` and `assay cost --run` read gateway
traffic as they read a load test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel

from assay.catalog import load_catalog
from assay.clients import open_session
from assay.clock import SystemClock
from assay.config import ProjectConfig, state_dir
from assay.errors import AssayError, ConfigError
from assay.gateway.app import Gateway
from assay.runner.execute import collector_quiet
from assay.runner.runs import open_run

__all__ = ["GatewayOptions", "RunningGateway", "serve_gateway", "start_gateway"]

class GatewayOptions(BaseModel):
    config: str
    host: str = "127.0.0.1"
    port: int = 8080


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


@dataclass
class RunningGateway:
    """A gateway listening in this event loop (tests and `serve_gateway` use it alike)."""

    gateway: Gateway
    host: str
    port: int
    _runner: web.AppRunner
    _stack: contextlib.AsyncExitStack

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self, drain_s: float | None = None) -> bool:
        """Drain (bounded), close the listener, flush the Records and end the run; True if nothing was cut."""
        settings = self.gateway.state.settings if self.gateway.state else None
        drained = await self.gateway.drain(drain_s if drain_s is not None else (settings.drain_s if settings else 0))
        try:
            await self._runner.cleanup()
            if self.gateway.tracing is not None:
                await asyncio.to_thread(self.gateway.tracing.shutdown)
        finally:
            await self._stack.aclose()
        return drained


async def start_gateway(config: ProjectConfig, config_path: Path | None = None, host: str = "127.0.0.1",
                        port: int = 0, loader: Callable[[Path], ProjectConfig] | None = None,
                        db: Path | None = None) -> RunningGateway:  # fmt: skip
    """Open the gateway run and listen; ConfigError before anything is written when the config cannot serve."""
    settings = config.gateway
    if settings is None:
        where = config_path or "the config"
        raise ConfigError(f"{where}: no `gateway:` section (routes to serve); see docs/GATEWAY.md")
    if not settings.keys and not _loopback(host):
        raise ConfigError(f"gateway.keys is empty, so the gateway is open to anyone who can reach it; it binds to "
                          f"loopback only, not {host!r} (add `keys:` to serve other hosts)")  # fmt: skip
    clock = SystemClock()
    catalog = load_catalog(state_dir())
    names = list(dict.fromkeys(n for r in settings.routes for n in r.targets))
    stack = contextlib.AsyncExitStack()
    session = await stack.enter_async_context(open_session(max_connections=10_000))
    gw = Gateway(config, clock, catalog, config_path=config_path, loader=loader)
    try:
        await gw.start(session)  # builds the state: refuses missing keys before a run is created
        try:  # the port before the store: a port in use must leave no run behind
            sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                        backlog=2048)  # fmt: skip
        except OSError as e:
            raise AssayError(f"gateway: cannot listen on {host}:{port}: {e.strerror}") from None
        stack.callback(sock.close)
        bound = sock.getsockname()[1]
        run = open_run(db or state_dir() / "assay.db", "gateway", config,
                       GatewayOptions(config=str(config_path or ""), host=host, port=port), names, clock=clock)
        stack.callback(run.close)
        gw.writer = await stack.enter_async_context(run.active(queue_limit=settings.record_queue))
        gw.run_id, gw.session = run.run_id, run.session
        runner = web.AppRunner(gw.app(), access_log=None, handle_signals=False, shutdown_timeout=settings.drain_s)
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        await stack.aclose()
        raise
    # What start-up allocated lives as long as the gateway: out of the collector's way while it serves, so a
    # full collection walks only per-request objects (the runner's own rule while it sends; thawed on stop).
    stack.enter_context(collector_quiet())
    return RunningGateway(gw, host, bound, runner, stack)


async def serve_gateway(config: ProjectConfig, config_path: Path | None, host: str, port: int,
                        port_file: Path | None = None,
                        loader: Callable[[Path], ProjectConfig] | None = None) -> int:  # fmt: skip
    """Serve until SIGTERM (exit 0 once drained) or Ctrl-C (130); SIGHUP reloads the project file."""
    running = await start_gateway(config, config_path, host, port, loader)
    gw = running.gateway
    assert gw.state is not None
    if port_file is not None:
        tmp = port_file.with_name(port_file.name + ".tmp")
        tmp.write_text(f"{running.port}\n")
        os.replace(tmp, port_file)  # readers never see a half-written file
    open_note = " (no keys: open, loopback only)" if gw.state.keys.open else f" ({len(gw.state.keys.keys)} keys)"
    print(f"assay gateway: {running.url}/v1  routes: {', '.join(gw.state.routes)}{open_note}  run {gw.run_id}",
          file=sys.stderr, flush=True)  # fmt: skip
    stop = asyncio.Event()
    code = {"value": 0}
    loop = asyncio.get_running_loop()

    def _stop(sig: int) -> None:
        code["value"] = 0 if sig == signal.SIGTERM else 130
        stop.set()

    def _reload() -> None:
        try:
            gw.reload()
            print("assay gateway: reloaded the config", file=sys.stderr, flush=True)
        except AssayError as e:
            print(f"assay gateway: reload refused, still serving the old config:\n{e}", file=sys.stderr, flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _stop, sig)
    with contextlib.suppress(NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, _reload)
    try:
        await stop.wait()
    finally:
        in_flight = gw.in_flight
        drained = await running.stop()
        if not drained:
            print(f"assay gateway: {in_flight} request(s) still in flight after {gw.state.settings.drain_s:g}s "
                  "were cut", file=sys.stderr, flush=True)  # fmt: skip
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, ValueError):
                loop.remove_signal_handler(sig)
    return code["value"]
