"""The OpenAI files and fine-tuning jobs API, as a client that times and keeps every call, success or failure.

These are plain JSON calls (and one multipart upload), not chat streams, so
they go straight over an aiohttp session. A call never raises for a provider
failure: it returns an `ApiCall` with the error classified in the usual
taxonomy, so the caller records every attempt (DESIGN.md: nothing dropped)
and decides whether to retry. OpenAI, Azure OpenAI and the simulator speak
this API; the base URL is the target's (with /v1).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from assay.clients.errors import error_for_status
from assay.clock import Clock, SystemClock
from assay.errors import BadResponse, ConfigError, ConnectionFailed, ProviderError, Timeout
from assay.model import Target
from assay.wire import OPENAI

__all__ = ["ApiCall", "FineTuningClient"]


@dataclass(slots=True)
class ApiCall:
    """One call to the API: what was asked, when, what came back or how it failed."""

    op: str  # files.create | fine_tuning.jobs.create | .retrieve | .list_events | .cancel
    wall_start_s: float
    sent_ns: int
    headers_ns: int = 0
    done_ns: int = 0
    status: int | None = None
    body: dict[str, Any] | None = None
    error: ProviderError | None = None
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class FineTuningClient:
    """Files and fine-tuning jobs of one target's vendor."""

    def __init__(
        self,
        target: Target,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
        timeout_s: float = 60.0,
        upload_timeout_s: float = 3600.0,
    ) -> None:
        api_key = None
        if target.api_key_env:
            api_key = os.environ.get(target.api_key_env)
            if not api_key:
                raise ConfigError(f"target {target.name!r}: environment variable {target.api_key_env} is not set")
        if target.api != "openai":
            raise ConfigError(
                f"target {target.name!r} speaks the {target.api} API; fine-tuning jobs are driven through the "
                "OpenAI files and fine_tuning/jobs API (OpenAI, Azure OpenAI, the simulator)"
            )
        self.target, self.session, self.clock = target, session, clock or SystemClock()
        self.base = target.base_url
        headers = {**target.headers, **OPENAI.headers(api_key)}
        self.headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        self.timeout_s, self.upload_timeout_s = timeout_s, upload_timeout_s

    async def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
        params: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> ApiCall:
        call = ApiCall(op, self.clock.wall_s(), self.clock.now_ns())
        limit = timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(limit):
                async with self.session.request(
                    method, self.base + path, json=json, data=data, params=params, headers=self.headers
                ) as resp:
                    call.headers_ns = self.clock.now_ns()
                    call.status = resp.status
                    call.request_id = resp.headers.get("x-request-id")
                    raw = await resp.read()
                    call.done_ns = self.clock.now_ns()
                    if resp.status >= 400:
                        call.error = error_for_status(resp.status, resp.headers, raw)
                        return call
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        call.error = BadResponse(f"{op}: the reply is not JSON ({raw[:80]!r})", http_status=resp.status)
                        return call
                    if not isinstance(body, dict):
                        call.error = BadResponse(f"{op}: the reply is not a JSON object", http_status=resp.status)
                        return call
                    call.body = body
        except TimeoutError:
            call.error = Timeout(f"{op}: no reply within {limit:g}s", phase="total")
        except aiohttp.ClientConnectorError as e:
            call.error = ConnectionFailed(f"{op}: cannot connect to {self.base}: {e.os_error or e}")
        except aiohttp.ClientError as e:
            call.error = ConnectionFailed(f"{op}: {type(e).__name__}: {e}")
        call.done_ns = call.done_ns or self.clock.now_ns()
        return call

    async def upload(self, path: Path, purpose: str = "fine-tune") -> ApiCall:
        """POST /files: the training file, streamed from disk."""
        with path.open("rb") as f:
            form = aiohttp.FormData()
            form.add_field("purpose", purpose)
            form.add_field("file", f, filename=path.name, content_type="application/jsonl")
            return await self._call("files.create", "POST", "/files", data=form, timeout_s=self.upload_timeout_s)

    async def create_job(
        self,
        model: str,
        training_file: str,
        *,
        n_epochs: int | None = None,
        suffix: str | None = None,
        seed: int | None = None,
        validation_file: str | None = None,
    ) -> ApiCall:
        body: dict[str, Any] = {"model": model, "training_file": training_file}
        if n_epochs is not None:
            body["hyperparameters"] = {"n_epochs": n_epochs}
        for key, value in (("suffix", suffix), ("seed", seed), ("validation_file", validation_file)):
            if value is not None:
                body[key] = value
        return await self._call("fine_tuning.jobs.create", "POST", "/fine_tuning/jobs", json=body)

    async def retrieve(self, job_id: str) -> ApiCall:
        return await self._call("fine_tuning.jobs.retrieve", "GET", f"/fine_tuning/jobs/{job_id}")

    async def events(self, job_id: str, limit: int = 100) -> ApiCall:
        params = {"limit": str(limit)}
        return await self._call(
            "fine_tuning.jobs.list_events", "GET", f"/fine_tuning/jobs/{job_id}/events", params=params
        )

    async def cancel(self, job_id: str) -> ApiCall:
        return await self._call("fine_tuning.jobs.cancel", "POST", f"/fine_tuning/jobs/{job_id}/cancel")
