"""Shared fixtures: simulators on loopback, a target factory, a temporary store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

# Tests run on several xdist workers on a small machine: one PyTorch thread each (the embedding detector),
# or their thread pools oversubscribe the cores and a 10 s batch takes minutes.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from assay.model import Pricing, Target
from assay.simulator import (
    Faults,
    ModelProfile,
    RunningSimulator,
    SimulatorProcess,
    SimulatorSpec,
    Vendor,
    builtin_spec,
    start_simulator,
)

REPO = Path(__file__).resolve().parent.parent
# tiktoken's encodings, cached by `make install-test` (scripts/tiktoken_cache.py); assay never downloads them.
_TIKTOKEN = REPO / ".venv" / "tiktoken-cache"
if _TIKTOKEN.is_dir():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(_TIKTOKEN))
# Local copies of public datasets (never copied into the repo): $ASSAY_DATA_DIR, else ../shared/datasets.
DATA_DIR = Path(os.environ.get("ASSAY_DATA_DIR") or REPO.parent / "shared" / "datasets")


def needs_data(*parts: str) -> pytest.MarkDecorator:
    """Skip where the shared datasets are missing, except under CI, where their absence is a failure."""
    missing = not DATA_DIR.joinpath(*parts).exists()
    return pytest.mark.skipif(missing and not os.environ.get("CI"), reason=f"{DATA_DIR / '/'.join(parts)} not found")


# Simulated models are not in the price catalog; tests price them inline, as a user would.
PRICE = "{input_per_mtok: 1, output_per_mtok: 2}"
ASSAY = str(REPO / ".venv" / "bin" / "assay") if (REPO / ".venv" / "bin" / "assay").exists() else "assay"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="run tests that call real providers (keys needed)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live provider test: pass --live and set the key")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


def one_model_spec(name: str = "m", seed: int = 0, **profile: object) -> SimulatorSpec:
    """A vendor `v` with one model whose profile is given by keyword."""
    return SimulatorSpec(seed=seed, vendors=[Vendor(name="v", models=[ModelProfile(name=name, **profile)])])


def fault_spec(kinds: list[str], **profile: object) -> SimulatorSpec:
    """One model per fault kind, each failing every request that way."""
    models = [ModelProfile(name=k, faults=Faults(**{k: 1.0}), **profile) for k in kinds]  # type: ignore[arg-type]
    return SimulatorSpec(seed=0, vendors=[Vendor(name="v", models=models)])


def target_for(sim: RunningSimulator | SimulatorProcess, vendor: str, model: str, api: str = "openai") -> Target:
    url = sim.urls[vendor]
    return Target(
        name=f"{vendor}-{model}-{api}",
        api=api,
        base_url=url + ("/v1" if api == "openai" else ""),
        model=model,
        pricing=Pricing(input_per_mtok=1, output_per_mtok=2),
    )


@pytest.fixture
async def demo_sim() -> AsyncIterator[RunningSimulator]:
    sim = await start_simulator(builtin_spec(seed=3))
    yield sim
    await sim.stop()


@pytest.fixture(scope="module")
def demo_process() -> Iterator[SimulatorProcess]:
    """The demo vendors in a child process: the client's timings are not disturbed by the server's work."""
    with SimulatorProcess(seed=5) as sim:
        yield sim


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ASSAY_HOME (store folder) for CLI runs."""
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / ".assay"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def records_so_far(db: Path) -> int:
    """Records a running command has committed, read without a write lock.

    Opening a `Store` migrates the schema, which takes the write lock: while the command's writer holds it,
    a test polling that way could wait until the command had finished, and then interrupt nothing.
    """
    import sqlite3

    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet, or busy for a moment: ask again on the next poll
        return 0


def wait_until_sending(proc: Any, db: Path, records: int, timeout_s: float = 60, settle_s: float = 2.0) -> None:
    """Return once a command has written `records` Records, or has had its store open for `settle_s` (a busy
    machine can hold its writer's commits back that long), or has ended; so a signal sent next interrupts it
    while it sends, not after it finished."""
    import time

    deadline, opened = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if opened is None and db.exists():
            opened = time.monotonic()
        if records_so_far(db) >= records or (opened is not None and time.monotonic() - opened >= settle_s):
            return


def default_signals() -> None:
    """`preexec_fn` for a command a test will signal: SIGINT and SIGTERM at their defaults and unblocked, as a
    shell starts it. A test worker may carry another disposition or mask (left by an event loop or a process pool
    in that worker), which a child inherits, and then the signal would never arrive."""
    import signal

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ASSAY_HOME"] = str(home / ".assay")
    return env


async def interrupt_after(records: int, start: Callable[..., Coroutine[Any, Any, Any]], timeout_s: float = 60) -> str:
    """Run `start(on_start=..., on_record=...)`, cancel it once `records` Records were written; return the run id."""
    import asyncio
    import contextlib

    started: list[str] = []
    seen = 0
    enough = asyncio.Event()

    def on_record(_: object) -> None:
        nonlocal seen
        seen += 1
        if seen >= records:
            enough.set()

    task = asyncio.create_task(start(on_start=lambda rid, _: started.append(rid), on_record=on_record))
    await asyncio.wait_for(enough.wait(), timeout=timeout_s)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return started[0]
