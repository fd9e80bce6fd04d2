"""The reliability probe: N requests per target with one standard prompt, measured raw.

No retries by default: the probe measures what the API does, not what a
client could paper over. With `retries`, every attempt is still its own Record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from assay.clients import open_session
from assay.clock import Clock
from assay.config import ProbeSettings, ProjectConfig
from assay.model import ChatRequest, Message
from assay.records import Record, WorkItem
from assay.runner.runs import Run, open_run
from assay.stats import TargetSummary, summarize_stored
from assay.store import Store

__all__ = ["KIND", "ProbeOptions", "ProbeResult", "probe_items", "run_probe", "summarize_run"]

KIND = "probe"
SUITE = "probe"


class ProbeOptions(ProbeSettings):
    """The config's `probe:` settings, with command-line overrides and the targets to probe."""

    targets: tuple[str, ...] = ()
    timeout_override_s: float | None = Field(
        default=None, gt=0, description="--timeout: the total for every target of this run, over any config."
    )

    @classmethod
    def from_config(cls, config: ProjectConfig, **overrides: Any) -> ProbeOptions:
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls.model_validate({**config.probe.model_dump(), **given})


@dataclass
class ProbeResult:
    run_id: str
    summaries: dict[str, TargetSummary]
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "targets": {n: s.to_json() for n, s in self.summaries.items()}}


def probe_items(config: ProjectConfig, opts: ProbeOptions) -> list[WorkItem]:
    names = list(opts.targets) or [t.name for t in config.targets]
    for n in names:
        config.target(n)  # refuses unknown names with the list of known ones
    request = ChatRequest([Message("user", opts.prompt)], max_tokens=opts.max_tokens, stream=opts.stream)
    width = len(str(opts.requests - 1))
    return [WorkItem(n, SUITE, f"{i:0{width}d}", request, opts.prompt) for n in names for i in range(opts.requests)]


def summarize_run(store: Store, run_id: str) -> dict[str, TargetSummary]:
    """Per-target summaries of a stored probe."""
    return summarize_stored(store, run_id)


async def run_probe(
    config: ProjectConfig | None,
    opts: ProbeOptions,
    db: Path,
    *,
    resume: str | None = None,
    clock: Clock | None = None,
    on_record: Callable[[Record], None] | None = None,
    on_start: Callable[[str, dict[str, int]], None] | None = None,
) -> ProbeResult:
    """Run (or resume) a probe and return its per-target summaries.

    On resume the config and options are the ones stored with the run.
    `on_start(run_id, pending items per target)` is called once the plan is known.
    """
    if resume is None:
        if config is None:
            raise ValueError("a new probe needs a config")
        opts = opts.model_copy(update={"targets": tuple(opts.targets or (t.name for t in config.targets))})
        probe_items(config, opts)  # refuse bad input before anything is written
    run = open_run(db, KIND, config, opts, opts.targets, resume=resume, clock=clock)
    try:
        if run.resumed:
            opts = ProbeOptions.model_validate(run.params)
        await _execute(run, opts, on_record, on_start)
        return ProbeResult(run.run_id, summarize_run(run.store, run.run_id))
    finally:
        run.close()


async def _execute(
    run: Run,
    opts: ProbeOptions,
    on_record: Callable[[Record], None] | None,
    on_start: Callable[[str, dict[str, int]], None] | None,
) -> None:
    items = probe_items(run.config, opts)
    if on_start:
        on_start(run.run_id, {t: 0 for t in opts.targets} | run.pending(items))
    async with run.active(), open_session() as session:
        clients = run.clients(session, opts.targets, section=opts, total_s=opts.timeout_override_s)
        runner = run.runner(
            clients,
            concurrency=opts.concurrency,
            retries=opts.retries,
            on_record=on_record,
            keep_text=False,
            pace_s=opts.duration_s / opts.requests if opts.duration_s else 0.0,
        )
        await runner.run(items, run.done, run.next_attempt)
