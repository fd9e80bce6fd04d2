"""Start simulated vendors on loopback ports, in this process or in a child process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web

from assay.clock import Clock
from assay.errors import AssayError
from assay.simulator.answers import load_answer_key
from assay.simulator.profiles import SimulatorSpec
from assay.simulator.safety import load_safety_key
from assay.simulator.server import VendorServer

__all__ = ["RunningSimulator", "SimulatorProcess", "serve_forever", "start_simulator"]


class _ArrivalStamps(asyncio.Protocol):
    """Forwards to aiohttp's protocol, stamping when request bytes arrive.

    aiohttp parses a request in its I/O callback but starts the handler in a
    task later; under load that gap is the simulator's own queueing. The
    stamp taken here, before either, is the server-side ground truth
    clients are compared against.
    """

    def __init__(self, inner: asyncio.Protocol, arrivals: dict[int, int], clock: Clock) -> None:
        self.inner, self.arrivals, self.clock = inner, arrivals, clock
        self.key = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.key = id(transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.arrivals[self.key] = self.clock.now_ns()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.arrivals.pop(self.key, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


@dataclass
class RunningSimulator:
    """Vendors served by this event loop; `urls` maps vendor name to its root URL."""

    servers: dict[str, VendorServer]
    urls: dict[str, str]
    _runners: list[web.AppRunner] = field(default_factory=list)
    _listeners: list[asyncio.Server] = field(default_factory=list)

    async def stop(self) -> None:
        for listener in self._listeners:
            listener.close()
        for r in self._runners:
            await r.cleanup()


async def start_simulator(
    spec: SimulatorSpec, host: str = "127.0.0.1", port: int = 0, vendors: list[str] | None = None
) -> RunningSimulator:
    """Serve each vendor on its own port: `port`, `port+1`, ... (all ephemeral when `port` is 0)."""
    chosen = [spec.vendor(n) for n in vendors] if vendors else list(spec.vendors)
    answers = load_answer_key(spec.knowledge, warn="knowledge" in spec.model_fields_set)
    safety = load_safety_key(spec.knowledge)
    sim = RunningSimulator({}, {})
    loop = asyncio.get_running_loop()
    for i, vendor in enumerate(chosen):
        server = VendorServer(vendor, seed=spec.seed, answers=answers, safety=safety)
        # Hung requests are part of the act; shutting down must not wait for them.
        runner = web.AppRunner(server.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sim._runners.append(runner)
        protocols = runner.server
        assert protocols is not None

        def factory(make: Callable[[], asyncio.Protocol] = protocols, s: VendorServer = server) -> asyncio.Protocol:
            return _ArrivalStamps(make(), s.arrivals, s.clock)

        try:
            listener = await loop.create_server(factory, host, port + i if port else 0, backlog=1024)
        except OSError as e:
            await sim.stop()
            raise AssayError(f"simulator: cannot listen on {host}:{port + i}: {e.strerror}") from None
        sim._listeners.append(listener)
        bound = listener.sockets[0].getsockname()[1]
        sim.servers[vendor.name] = server
        sim.urls[vendor.name] = f"http://{host}:{bound}"
    return sim


async def serve_forever(spec: SimulatorSpec, host: str, port: int, vendors: list[str] | None = None) -> None:
    """Run until SIGINT/SIGTERM; print one JSON line with the URLs once listening."""
    sim = await start_simulator(spec, host, port, vendors)
    print(orjson.dumps({"ready": True, "urls": sim.urls}).decode(), flush=True)  # for programs: one JSON line
    for name, url in sim.urls.items():  # for people, on stderr
        models = ", ".join(m.name for m in spec.vendor(name).models)
        print(f"{name:<12} OpenAI base_url {url}/v1   Anthropic base_url {url}   models: {models}", file=sys.stderr)
    print("serving; Ctrl-C to stop", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


class SimulatorProcess:
    """The simulator in a child process, so its CPU work never skews the client's clock readings."""

    def __init__(
        self,
        profile: Path | None = None,
        seed: int = 0,
        vendors: list[str] | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        cmd = [sys.executable, "-m", "assay", "simulator", "serve", "--port", "0", "--seed", str(seed)]
        if profile:
            cmd += ["--profile", str(profile)]
        for v in vendors or ():
            cmd += ["--vendor", v]
        # stderr goes to a file: a pipe nobody drains would block the simulator once it filled up.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process; closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        try:
            self.urls = self._await_ready(startup_timeout_s)
        except BaseException:
            self.stop()  # a bad profile must not leave the child or its files behind
            raise

    def _await_ready(self, timeout_s: float) -> dict[str, str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("{"):
                break
            if self.proc.poll() is not None:
                raise AssayError(f"simulator exited before it was ready:\n{self.stderr_text()[-2000:]}")
        else:
            self.stop()
            raise AssayError(f"simulator not ready within {timeout_s:g}s")
        urls: dict[str, str] = orjson.loads(line)["urls"]
        return urls

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()

    def stderr_text(self) -> str:
        """What the simulator wrote to stderr so far."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
