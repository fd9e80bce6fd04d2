"""`assay finetune run`: upload a training file, start a job, follow it to the end; every API call a Record.

The run is a `finetune` run of the one lifecycle (runner/runs.py). Its Records
are the calls: the upload, the job's creation, and each poll of the job and
its events, success or failure, with their timings, status codes and the
compact reply. The job's own latency (how long it validated, queued and
trained) is read back from those polls (`job_timeline`), so a report needs
nothing but the store. Interrupting stops following, not the job: `--resume`
finds the job in the run's Records and follows it on, without uploading again.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from pydantic import BaseModel, Field

from assay.clients.finetune import ApiCall, FineTuningClient
from assay.clock import Clock
from assay.config import ProjectConfig
from assay.datasets.finetune import scan_training_file
from assay.errors import AssayError, ConfigError, ProviderError
from assay.records import Record
from assay.runner.runs import Run, open_run
from assay.store import Store

__all__ = ["KIND", "FinetuneOptions", "JobOutcome", "job_timeline", "run_finetune"]

KIND = SUITE = "finetune"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
PHASES = ("validating_files", "queued", "running")
_RETRIABLE = frozenset({"rate_limited", "overloaded", "server_error", "timeout", "connection"})
_JOB_KEYS = (
    "id",
    "status",
    "model",
    "fine_tuned_model",
    "trained_tokens",
    "error",
    "created_at",
    "finished_at",
    "estimated_finish",
    "hyperparameters",
    "training_file",
)


class FinetuneOptions(BaseModel):
    """What `assay finetune run` was asked (stored with the run, so a resume follows the same job)."""

    target: str
    file: str
    model: str | None = Field(default=None, description="Base model; default: the target's.")
    epochs: int | None = Field(default=None, ge=1, le=50)
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = None
    poll_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=86_400.0, gt=0, description="Stop following after this long (the job goes on).")
    retries: int = Field(default=3, ge=0, le=10)


@dataclass
class JobOutcome:
    run_id: str
    target: str
    file_id: str | None = None
    job_id: str | None = None
    status: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: dict[str, Any] | None = None
    timeline: dict[str, float] = field(default_factory=dict)  # phase -> seconds observed in it
    calls: int = 0
    failed_calls: int = 0
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _compact(op: str, body: dict[str, Any] | None) -> str | None:
    if body is None:
        return None
    if op == "fine_tuning.jobs.list_events":
        data = body.get("data") or []
        keep = [{k: e.get(k) for k in ("created_at", "level", "message", "type", "data")} for e in data[:20]]
        return orjson.dumps({"data": keep}).decode()
    if op.startswith("fine_tuning.jobs"):
        return orjson.dumps({k: body.get(k) for k in _JOB_KEYS}).decode()
    return orjson.dumps({k: body.get(k) for k in ("id", "bytes", "filename", "purpose", "status")}).decode()


class _Follower:
    """Sends the calls of one run and writes a Record for each."""

    def __init__(
        self, run: Run, client: FineTuningClient, opts: FinetuneOptions, on_call: Callable[[Record], None] | None
    ) -> None:
        self.run, self.client, self.opts, self.on_call = run, client, opts, on_call
        self.seq = 0
        self.outcome = JobOutcome(run.run_id, opts.target, resumed=run.resumed)

    def record(self, call: ApiCall, item: str, attempt: int, final: bool, asked: dict[str, Any] | None) -> Record:
        e = call.error
        rec = Record(
            run_id=self.run.run_id,
            target=self.opts.target,
            suite=SUITE,
            item_id=item,
            attempt=attempt,
            status="ok" if e is None else "error",
            wall_start_s=call.wall_start_s,
            sent_ns=call.sent_ns,
            headers_ns=call.headers_ns,
            done_ns=call.done_ns,
            http_status=call.status,
            request_id=call.request_id,
            response_text=_compact(call.op, call.body),
            prompt=orjson.dumps({"op": call.op, **(asked or {})}).decode(),
            final=final,
            session=self.run.session,
            cost_usd=0.0,
        )
        if isinstance(e, ProviderError):
            rec.error_class, rec.error_message = e.error_class, e.message[:500]
            rec.error_phase, rec.retry_after_s = getattr(e, "phase", None), e.retry_after_s
        assert self.run.writer is not None
        self.run.writer.put(rec)
        self.outcome.calls += 1
        self.outcome.failed_calls += e is not None
        if self.on_call is not None:
            self.on_call(rec)
        return rec

    async def with_retries(self, item: str, send: Callable[[], Any], asked: dict[str, Any] | None = None) -> ApiCall:
        """Send until it works or a failure is not worth retrying; every attempt recorded."""
        first = self.run.next_attempt.get((self.opts.target, SUITE, item, ""), 0)
        for attempt in range(first, first + self.opts.retries + 1):
            call: ApiCall = await send()
            retry = (
                call.error is not None and call.error.error_class in _RETRIABLE and attempt < first + self.opts.retries
            )
            self.record(call, item, attempt, final=not retry, asked=asked)
            if not retry:
                return call
            assert call.error is not None
            await asyncio.sleep(min(60.0, call.error.retry_after_s or 0.5 * 2 ** (attempt - first)))
        raise AssertionError("unreachable")

    def poll_item(self, op: str) -> str:
        self.seq += 1
        return f"{op}/s{self.run.session}/{self.seq:05d}"


def _failed(call: ApiCall, what: str) -> AssayError:
    assert call.error is not None
    return AssayError(f"{what} failed: {call.error.message}")


def _stored_ids(store: Store, run_id: str) -> tuple[str | None, str | None, str | None]:
    """The uploaded file, the job and its latest status, from an earlier session's Records."""
    file_id = job_id = status = None
    for r in store.records(run_id):
        if not r.ok or not r.response_text:
            continue
        body = orjson.loads(r.response_text)
        if r.item_id == "files.create":
            file_id = body.get("id")
        elif r.item_id == "fine_tuning.jobs.create" or r.item_id.startswith("fine_tuning.jobs.retrieve"):
            job_id, status = body.get("id") or job_id, body.get("status") or status
    return file_id, job_id, status


async def run_finetune(
    config: ProjectConfig | None,
    opts: FinetuneOptions | None,
    db: Path,
    *,
    resume: str | None = None,
    on_start: Callable[[str], None] | None = None,
    on_call: Callable[[Record], None] | None = None,
    on_job: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None,
    clock: Clock | None = None,
) -> JobOutcome:
    """Upload, start and follow one fine-tuning job (or follow on the job of an interrupted run)."""
    if resume is None:
        assert config is not None and opts is not None
        target = config.target(opts.target)
        path = Path(opts.file)
        scan = scan_training_file(path, "openai", opts.model or target.model)
        if not scan.ok:  # refused before anything is sent or written, as the vendor would refuse it after upload
            raise ConfigError(
                f"{path}: the training file has {sum(scan.error_counts.values())} error(s); "
                f"`assay finetune validate {path}` lists them all",
                [f"line {e.line}: {e.cls}: {e.detail}" if e.line else f"{e.cls}: {e.detail}" for e in scan.errors[:5]],
            )
    run = open_run(db, KIND, config, opts, [opts.target] if opts else [], resume=resume, clock=clock)
    try:
        opts = FinetuneOptions.model_validate(run.params)
        if on_start is not None:
            on_start(run.run_id)
        async with run.active(), aiohttp.ClientSession() as session:
            client = FineTuningClient(run.config.target(opts.target), session, run.clock)
            follower = _Follower(run, client, opts, on_call)
            await _follow(follower, client, opts, run, on_job)
            return follower.outcome
    finally:
        run.close()


async def _follow(
    f: _Follower,
    client: FineTuningClient,
    opts: FinetuneOptions,
    run: Run,
    on_job: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None,
) -> None:
    out = f.outcome
    file_id, job_id, status = _stored_ids(run.store, run.run_id) if run.resumed else (None, None, None)
    model = opts.model or run.config.target(opts.target).model
    if file_id is None:
        call = await f.with_retries("files.create", lambda: client.upload(Path(opts.file)), {"file": opts.file})
        if call.error is not None:
            raise _failed(call, "the upload")
        file_id = call.body["id"] if call.body else None
    out.file_id = file_id
    if job_id is None:
        asked = {"model": model, "training_file": file_id, "n_epochs": opts.epochs, "suffix": opts.suffix}
        call = await f.with_retries(
            "fine_tuning.jobs.create",
            lambda: client.create_job(model, str(file_id), n_epochs=opts.epochs, suffix=opts.suffix, seed=opts.seed),
            asked,
        )
        if call.error is not None:
            raise _failed(call, "creating the job")
        job_id, status = (call.body or {}).get("id"), (call.body or {}).get("status")
    out.job_id, out.status = job_id, status
    deadline = run.clock.now_ns() + int(opts.timeout_s * 1e9)
    job: dict[str, Any] = {}
    while True:
        call = await client.retrieve(str(job_id))
        f.record(call, f.poll_item("fine_tuning.jobs.retrieve"), 0, True, {"job": job_id})
        if call.body is not None:
            job = call.body
            out.status = job.get("status")
        events: list[dict[str, Any]] = []
        if call.ok:
            ev = await client.events(str(job_id), limit=20)
            f.record(ev, f.poll_item("fine_tuning.jobs.list_events"), 0, True, {"job": job_id})
            events = list((ev.body or {}).get("data") or [])
        if on_job is not None and job:
            on_job(job, events)
        if out.status in TERMINAL:
            break
        if run.clock.now_ns() >= deadline:
            raise AssayError(f"job {job_id} is still {out.status} after {opts.timeout_s:g}s; it goes on at the vendor")
        await asyncio.sleep(opts.poll_s)
    out.fine_tuned_model, out.trained_tokens, out.error = (
        job.get("fine_tuned_model"),
        job.get("trained_tokens"),
        job.get("error"),
    )
    await run.flush()
    out.timeline = job_timeline(run.store.records(run.run_id))


def job_timeline(records: list[Record]) -> dict[str, float]:
    """Seconds the job was seen in each phase (first poll that saw it to the first that saw the next), and total.

    Polls resolve a phase to within one poll interval; `total_s` runs from the job's creation call to the first
    poll that saw it finished.
    """
    seen: dict[str, float] = {}
    created = None
    for r in sorted(records, key=lambda r: r.wall_start_s):
        if not r.ok or not r.response_text:
            continue
        if r.item_id == "fine_tuning.jobs.create":
            created = r.wall_start_s
            status = orjson.loads(r.response_text).get("status")
        elif r.item_id.startswith("fine_tuning.jobs.retrieve"):
            status = orjson.loads(r.response_text).get("status")
        else:
            continue
        if status and status not in seen:
            seen[status] = r.wall_start_s
    order = [s for s in (*PHASES, "succeeded", "failed", "cancelled") if s in seen]
    out: dict[str, float] = {}
    for a, b in itertools.pairwise(order):
        if a in PHASES:
            out[f"{a}_s"] = seen[b] - seen[a]
    end = next((seen[s] for s in ("succeeded", "failed", "cancelled") if s in seen), None)
    if created is not None and end is not None:
        out["total_s"] = end - created
    return out
