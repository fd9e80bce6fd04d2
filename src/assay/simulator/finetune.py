"""The OpenAI files and fine-tuning jobs API, simulated: upload a training file, run a job, chat with the result.

Files are kept in memory. A job's lifecycle is computed from the server's clock whenever
it is read (no background tasks): `validating_files` for `validate_s`, `queued` for
`queue_s`, `running` for max(`min_run_s`, trained tokens / `tokens_per_s`), then
`succeeded`, or `failed` (an invalid training file when validation ends; an injected
internal error at `fail_at` of the running time), unless cancelled first. The first time a
job is seen succeeded its model, `ft:<base>:sim:<suffix>:<8 chars>`, is added to the vendor
(listed in /v1/models, served by chat completions) with the base's profile changed by the
`fine_tuning` gains; it draws the same random numbers as its base, so it is right wherever
the base is right when its accuracy is higher.

Ids, seeds, losses and events are drawn from RNGs seeded by the simulator's seed and
counters, so the same calls give the same answers.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from assay.catalog.tokenizers import Tokenizer
from assay.datasets.finetune import TrainingFile, scan_stream
from assay.datasets.finetune_formats import default_epochs
from assay.simulator.profiles import FineTuning, ModelProfile

if TYPE_CHECKING:
    from assay.simulator.server import VendorServer

__all__ = ["FineTuneAPI", "tuned_profile"]

_ESTIMATE = Tokenizer("estimate", False, "estimate (~4 characters a token)")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
AUTO_LR = 1.8  # learning_rate_multiplier when "auto"
_METRIC_EVENTS = 10  # at most this many "Step k/N" events per job
INTERNAL_ERROR = {
    "code": "internal_error",
    "message": "The job failed due to an internal error (injected).",
    "param": None,
}
Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.Response]]


def tuned_profile(base: ModelProfile, name: str) -> ModelProfile:
    """The profile of `base` after fine-tuning: its gains added to the accuracies, its draws shared, its own name."""
    ft = base.fine_tuning
    if ft is None:
        raise ValueError(f"model {base.name!r} cannot be fine-tuned (no fine_tuning settings)")
    a = base.answers
    tags = sorted(set(a.by_tag) | set(ft.gain_by_tag))
    answers = a.model_copy(
        update={
            "accuracy": _clip(a.accuracy + ft.gain),
            "by_dataset": {k: _clip(p + ft.gain) for k, p in a.by_dataset.items()},
            "by_tag": {t: _clip(a.by_tag.get(t, a.accuracy) + ft.gain + ft.gain_by_tag.get(t, 0.0)) for t in tags},
        }
    )
    update: dict[str, Any] = {
        "name": name,
        "answers": answers,
        "draws_as": base.draws_as or base.name,
        "fine_tuning": None,
    }
    if ft.list_price is not None:
        update["list_price"] = ft.list_price
    return base.model_copy(update=update)


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def _check(data: bytes) -> TrainingFile:
    """The file as the vendor checks it: assay's own validator, tokens estimated (~4 characters a token)."""
    return scan_stream(io.BytesIO(data), len(data), "openai", _ESTIMATE, max_errors=1)


def _problem(scan: TrainingFile) -> str | None:
    """Why the job fails validation, in OpenAI's words, or None."""
    if scan.ok:
        return None
    e = scan.errors[0]
    where = "" if e.line is None else f"line {e.line}: {e.cls}: "
    return f"Invalid file format: {where}{e.detail}."


class ApiError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def response(self) -> web.Response:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return _json(body, self.status)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _hex(seed: str, bits: int = 96) -> str:
    return f"{random.Random(seed).getrandbits(bits):0{bits // 4}x}"


@dataclass(slots=True)
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass(slots=True)
class _Event:
    at_ns: int
    message: str
    level: str = "info"
    type: str = "message"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Job:
    id: str
    base: ModelProfile
    config: FineTuning
    training_file: str
    validation_file: str | None
    suffix: str | None
    seed: int
    created_ns: int
    wall0: float  # wall-clock seconds at created_ns
    asked: dict[str, Any]  # hyperparameters as asked ("auto" where not given)
    resolved: dict[str, Any]
    problem: str | None  # why validation fails, or None
    trained_tokens: int
    total_steps: int
    run_ns: int
    fails: bool  # an injected internal error part-way through running
    losses: list[float]
    cancelled_ns: int | None = None
    registered: bool = False

    @property
    def fine_tuned_model(self) -> str:
        return f"ft:{self.base.name}:sim:{self.suffix or 'tuned'}:{self.id[-8:]}"

    @property
    def validated_ns(self) -> int:
        return self.created_ns + round(self.config.validate_s * 1e9)

    @property
    def started_ns(self) -> int:
        return self.validated_ns + round(self.config.queue_s * 1e9)

    @property
    def planned_end_ns(self) -> int:
        return self.started_ns + self.run_ns

    @property
    def end_ns(self) -> int:
        """When the job ends on its own: validation's end for a bad file, the failure, or the end of training."""
        if self.problem is not None:
            return self.validated_ns
        if self.fails:
            return self.started_ns + round(self.run_ns * self.config.fail_at)
        return self.planned_end_ns

    def natural(self, now: int) -> str:
        """The status at `now` if nobody cancels."""
        if now < self.validated_ns:
            return "validating_files"
        if self.problem is not None:
            return "failed"
        if now < self.started_ns:
            return "queued"
        if now < self.end_ns:
            return "running"
        return "failed" if self.fails else "succeeded"

    def status(self, now: int) -> str:
        return "cancelled" if self.cancelled_ns is not None else self.natural(now)

    def wall(self, ns: int) -> int:
        return int(self.wall0 + (ns - self.created_ns) / 1e9)

    def error(self, now: int) -> dict[str, Any] | None:
        if self.status(now) != "failed":
            return None
        if self.problem is not None:
            message = f"The job failed due to an invalid training file. {self.problem}"
            return {"code": "invalid_training_file", "message": message, "param": "training_file"}
        return dict(INTERNAL_ERROR)

    def obj(self, now: int) -> dict[str, Any]:
        status = self.status(now)
        horizon = now if self.cancelled_ns is None else self.cancelled_ns
        hyper = self.resolved if self.problem is None and horizon >= self.validated_ns else self.asked
        finished = None
        if status == "cancelled" and self.cancelled_ns is not None:
            finished = self.wall(self.cancelled_ns)
        elif status in TERMINAL:
            finished = self.wall(self.end_ns)
        return {
            "id": self.id,
            "object": "fine_tuning.job",
            "created_at": self.wall(self.created_ns),
            "finished_at": finished,
            "model": self.base.name,
            "fine_tuned_model": self.fine_tuned_model if status == "succeeded" else None,
            "organization_id": "org-sim",
            "result_files": [],
            "status": status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": dict(hyper),
            "trained_tokens": self.trained_tokens if status == "succeeded" else None,
            "error": self.error(now),
            "seed": self.seed,
            "estimated_finish": self.wall(self.planned_end_ns) if status in ("queued", "running") else None,
            "integrations": [],
            "method": {"type": "supervised", "supervised": {"hyperparameters": dict(hyper)}},
            "user_provided_suffix": self.suffix,
        }

    def events(self, now: int) -> list[_Event]:
        """What happened up to `now`, oldest first."""
        horizon = now if self.cancelled_ns is None else min(now, self.cancelled_ns)
        out = [_Event(self.created_ns, f"Validating training file: {self.training_file}")]
        if self.validation_file:
            out.append(_Event(self.created_ns, f"Validating validation file: {self.validation_file}"))
        if horizon >= self.validated_ns:
            if self.problem is not None:
                out.append(_Event(self.validated_ns, f"Training file validation failed: {self.problem}", "error"))
            else:
                out.append(_Event(self.validated_ns, "Files validated, moving job to queued state"))
        if self.problem is None and horizon >= self.started_ns:
            out.append(_Event(self.started_ns, "Fine-tuning job started"))
            k_max = len(self.losses)
            for k, loss in enumerate(self.losses, 1):
                at = self.started_ns + self.run_ns * k // k_max
                if at > horizon or at > self.end_ns or (self.fails and at >= self.end_ns):
                    break
                step = max(1, round(self.total_steps * k / k_max))
                out.append(
                    _Event(
                        at,
                        f"Step {step}/{self.total_steps}: training loss={loss:.2f}",
                        type="metrics",
                        data={"step": step, "train_loss": loss, "total_steps": self.total_steps},
                    )
                )
            if horizon >= self.end_ns:
                if self.fails:
                    out.append(_Event(self.end_ns, "The job failed due to an internal error", "error"))
                else:
                    out.append(_Event(self.end_ns, f"New fine-tuned model created: {self.fine_tuned_model}"))
                    out.append(_Event(self.end_ns, "The job has successfully completed"))
        if self.cancelled_ns is not None and now >= self.cancelled_ns:
            out.append(_Event(self.cancelled_ns, "Fine-tuning job cancelled"))
        return out


def _hyperparameter(name: str, value: Any) -> Any:
    """One hyperparameter as asked: "auto" (also when missing), or a value in OpenAI's range."""
    if value is None or value == "auto":
        return "auto"
    param = f"hyperparameters.{name}"
    if name == "learning_rate_multiplier":
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 10:
            return float(value)
        raise ApiError(400, f"Invalid {name}: {value!r}; expected 'auto' or a number in (0, 10].", param)
    top = 50 if name == "n_epochs" else 256
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top:
        return value
    raise ApiError(400, f"Invalid {name}: {value!r}; expected 'auto' or an integer in [1, {top}].", param)


class FineTuneAPI:
    """Files and fine-tuning jobs of one simulated vendor."""

    def __init__(self, server: VendorServer) -> None:
        self.server = server
        self.files: dict[str, _File] = {}
        self.jobs: dict[str, _Job] = {}
        self._uploads = 0
        self._stored = 0

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/files", self._logged("files.create", self._files_create))
        r.add_get("/v1/files", self._logged("files.list", self._files_list))
        r.add_get("/v1/files/{id}", self._logged("files.retrieve", self._files_retrieve))
        r.add_get("/v1/files/{id}/content", self._logged("files.content", self._files_content))
        r.add_delete("/v1/files/{id}", self._logged("files.delete", self._files_delete))
        r.add_post("/v1/fine_tuning/jobs", self._logged("fine_tuning.jobs.create", self._jobs_create))
        r.add_get("/v1/fine_tuning/jobs", self._logged("fine_tuning.jobs.list", self._jobs_list))
        r.add_get("/v1/fine_tuning/jobs/{id}", self._logged("fine_tuning.jobs.retrieve", self._jobs_retrieve))
        r.add_post("/v1/fine_tuning/jobs/{id}/cancel", self._logged("fine_tuning.jobs.cancel", self._jobs_cancel))
        r.add_get("/v1/fine_tuning/jobs/{id}/events", self._logged("fine_tuning.jobs.list_events", self._jobs_events))

    def refresh(self) -> None:
        """Bring every job up to the clock: tuned models of jobs that have succeeded are served from now on."""
        now = self.server.clock.now_ns()
        for job in self.jobs.values():
            self._observe(job, now)

    # -- plumbing ------------------------------------------------------------------------
    def _logged(self, op: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        server = self.server

        async def run(request: web.Request) -> web.Response:
            started = server.clock.now_ns()
            entry: dict[str, Any] = {"n": server._n, "api": "finetune", "op": op}
            server._n += 1
            server.log.append(entry)
            try:
                resp = await handler(request, entry)
            except ApiError as e:
                resp = e.response()
            entry["received_ns"] = server.arrivals.get(id(request.transport)) or started
            entry.update(status=resp.status, done_ns=server.clock.now_ns())
            return resp

        return run

    def _observe(self, job: _Job, now: int) -> str:
        status = job.status(now)
        if status == "succeeded" and not job.registered:
            job.registered = True
            self.server.add_model(tuned_profile(job.base, job.fine_tuned_model))
        return status

    def _file(self, file_id: str) -> _File:
        f = self.files.get(file_id)
        if f is None:
            raise ApiError(404, f"No such File object: {file_id}", "id")
        return f

    def _job(self, job_id: str) -> _Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Could not find fine-tuning job: {job_id}", "id")
        return job

    def _upload_failure(self) -> float:
        """Uploads are the vendor's, not a model's: they fail at the highest rate any fine-tunable model names."""
        rates = [m.profile.fine_tuning.upload_failure for m in self.server.models.values() if m.profile.fine_tuning]
        return max(rates, default=0.0)

    @staticmethod
    def _limit(request: web.Request, default: int, top: int) -> int:
        raw = request.query.get("limit")
        if raw is None:
            return default
        try:
            limit = int(raw)
        except ValueError:
            raise ApiError(400, f"Invalid limit: {raw!r}; expected an integer.", "limit") from None
        if not 1 <= limit <= top:
            raise ApiError(400, f"Invalid limit: {limit}; expected 1 to {top}.", "limit")
        return limit

    @staticmethod
    def _page(request: web.Request, rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
        """`rows` newest first, from after the `after` id, at most `limit`."""
        after = request.query.get("after")
        if after:
            ids = [r["id"] for r in rows]
            if after not in ids:
                raise ApiError(400, f"Invalid cursor: no object with id {after!r}.", "after")
            rows = rows[ids.index(after) + 1 :]
        return {"object": "list", "data": rows[:limit], "has_more": len(rows) > limit}

    # -- files ---------------------------------------------------------------------------
    async def _files_create(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        n = self._uploads
        self._uploads += 1
        try:
            form = await request.post()
        except ValueError:
            raise ApiError(400, "Could not parse the multipart form.") from None
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField):
            raise ApiError(400, "Missing required parameter: 'file'.", "file")
        if purpose is None:
            raise ApiError(400, "Missing required parameter: 'purpose'.", "purpose")
        if purpose != "fine-tune":
            said = f"Invalid value for 'purpose': {purpose!r}; this simulator stores 'fine-tune' files only."
            raise ApiError(400, said, "purpose")
        if random.Random(f"{self.server.seed}/upload/{n}").random() < self._upload_failure():
            said = "The server had an error while processing your request (injected)."
            raise ApiError(500, said, type="server_error")
        data = upload.file.read()
        file_id = "file-" + _hex(f"{self.server.seed}/file/{self._stored}")
        self._stored += 1
        f = _File(file_id, upload.filename or "upload.jsonl", "fine-tune", data, int(self.server.clock.wall_s()))
        self.files[file_id] = f
        entry.update(id=file_id, bytes=len(data))
        return _json(f.obj())

    async def _files_list(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        purpose = request.query.get("purpose")
        rows = [f.obj() for f in reversed(self.files.values()) if purpose is None or f.purpose == purpose]
        if request.query.get("order") == "asc":
            rows.reverse()
        return _json(self._page(request, rows, self._limit(request, 10_000, 10_000)))

    async def _files_retrieve(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        return _json(self._file(request.match_info["id"]).obj())

    async def _files_content(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        f = self._file(request.match_info["id"])
        return web.Response(body=f.data, content_type="application/octet-stream")

    async def _files_delete(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        f = self._file(request.match_info["id"])
        del self.files[f.id]
        return _json({"id": f.id, "object": "file", "deleted": True})

    # -- jobs ----------------------------------------------------------------------------
    async def _jobs_create(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise ApiError(400, "We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        model = body.get("model")
        state = self.server.models.get(model) if isinstance(model, str) else None
        if state is None or state.profile.fine_tuning is None:
            said = f"Model {model} is not available for fine-tuning or does not exist."
            raise ApiError(400, said, "model", "model_not_available")
        base, config = state.profile, state.profile.fine_tuning
        training = body.get("training_file")
        if not isinstance(training, str) or training not in self.files:
            raise ApiError(400, f"Invalid training_file: {training}. No such File object.", "training_file")
        validation = body.get("validation_file")
        if validation is not None and (not isinstance(validation, str) or validation not in self.files):
            raise ApiError(400, f"Invalid validation_file: {validation}. No such File object.", "validation_file")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or not 1 <= len(suffix) <= 64):
            raise ApiError(400, "suffix must be a string of 1 to 64 characters.", "suffix")
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ApiError(400, f"Invalid seed: {seed!r}; expected an integer.", "seed")
        hyper = self._hyperparameters(body)

        n = len(self.jobs)
        job_id = "ftjob-" + _hex(f"{self.server.seed}/ftjob/{n}")
        scan = _check(self.files[training].data)
        n_examples = max(1, scan.valid)
        epochs = hyper["n_epochs"] if hyper["n_epochs"] != "auto" else default_epochs(scan.valid)
        batch = hyper["batch_size"] if hyper["batch_size"] != "auto" else max(1, min(256, round(n_examples * 0.002)))
        lr = hyper["learning_rate_multiplier"] if hyper["learning_rate_multiplier"] != "auto" else AUTO_LR
        trained_tokens = scan.billed_tokens(epochs)
        total_steps = epochs * math.ceil(n_examples / batch)
        run_s = max(config.min_run_s, trained_tokens / config.tokens_per_s)
        loss_rng = random.Random(f"{self.server.seed}/{job_id}/loss")
        n_metrics = max(1, min(_METRIC_EVENTS, total_steps))
        losses = [
            round(0.15 + 2.2 * math.exp(-2.5 * k / n_metrics) + loss_rng.uniform(-0.05, 0.05), 4)
            for k in range(1, n_metrics + 1)
        ]
        now = self.server.clock.now_ns()
        job = _Job(
            id=job_id,
            base=base,
            config=config,
            training_file=training,
            validation_file=validation,
            suffix=suffix,
            seed=seed if seed is not None else random.Random(f"{self.server.seed}/jobseed/{n}").randrange(2**31),
            created_ns=now,
            wall0=self.server.clock.wall_s(),
            asked=hyper,
            resolved={"n_epochs": epochs, "batch_size": batch, "learning_rate_multiplier": lr},
            problem=_problem(scan),
            trained_tokens=trained_tokens,
            total_steps=total_steps,
            run_ns=round(run_s * 1e9),
            fails=random.Random(f"{self.server.seed}/job/{n}").random() < config.job_failure,
            losses=losses,
        )
        self.jobs[job_id] = job
        entry.update(id=job_id, model=base.name)
        return _json(job.obj(now))

    @staticmethod
    def _hyperparameters(body: dict[str, Any]) -> dict[str, Any]:
        method = body.get("method")
        given = body.get("hyperparameters")
        if method is not None:
            if not isinstance(method, dict) or method.get("type", "supervised") != "supervised":
                raise ApiError(400, "Only supervised fine-tuning is simulated (method.type 'supervised').", "method")
            inner = method.get("supervised") or {}
            if isinstance(inner, dict) and inner.get("hyperparameters") is not None:
                given = inner["hyperparameters"]
        given = given or {}
        if not isinstance(given, dict):
            raise ApiError(400, "hyperparameters must be an object.", "hyperparameters")
        names = ("n_epochs", "batch_size", "learning_rate_multiplier")
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ApiError(400, f"Unknown hyperparameter: {unknown[0]}.", f"hyperparameters.{unknown[0]}")
        return {k: _hyperparameter(k, given.get(k)) for k in names}

    async def _jobs_list(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        now = self.server.clock.now_ns()
        for job in self.jobs.values():
            self._observe(job, now)
        rows = [job.obj(now) for job in reversed(self.jobs.values())]
        return _json(self._page(request, rows, self._limit(request, 20, 100)))

    async def _jobs_retrieve(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        job, now = self._job(request.match_info["id"]), self.server.clock.now_ns()
        entry.update(id=job.id, job_status=self._observe(job, now))
        return _json(job.obj(now))

    async def _jobs_cancel(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        job, now = self._job(request.match_info["id"]), self.server.clock.now_ns()
        entry["id"] = job.id
        if self._observe(job, now) in TERMINAL:
            raise ApiError(400, "Job has already completed", "id")
        job.cancelled_ns = now
        return _json(job.obj(now))

    async def _jobs_events(self, request: web.Request, entry: dict[str, Any]) -> web.Response:
        job, now = self._job(request.match_info["id"]), self.server.clock.now_ns()
        entry["id"] = job.id
        self._observe(job, now)
        rows = [
            {
                "object": "fine_tuning.job.event",
                "id": "ftevent-" + _hex(f"{self.server.seed}/{job.id}/event/{i}"),
                "created_at": job.wall(e.at_ns),
                "level": e.level,
                "message": e.message,
                "data": e.data,
                "type": e.type,
            }
            for i, e in enumerate(job.events(now))
        ]
        rows.reverse()
        return _json(self._page(request, rows, self._limit(request, 20, 100)))
