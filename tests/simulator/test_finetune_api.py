"""The simulator's OpenAI files and fine-tuning jobs API, driven by the real `openai` SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from assay.datasets import load_items
from assay.datasets.finetune_formats import default_epochs as auto_epochs
from assay.model import estimate_tokens
from assay.simulator import (
    FineTuning,
    ListPrice,
    ModelProfile,
    RunningSimulator,
    SimulatorSpec,
    Vendor,
    start_simulator,
    tuned_profile,
)
from assay.simulator.answers import AnswerKey
from assay.simulator.profiles import Answers
from tests.conftest import one_model_spec

FAST = {"validate_s": 0.05, "queue_s": 0.05, "min_run_s": 0.1}
ORDER = ["validating_files", "queued", "running", "succeeded"]
TERMINAL = {"succeeded", "failed", "cancelled"}


def example(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "You answer in one short sentence."},
            {"role": "user", "content": f"What is {i} plus {i}?", "name": "student"},
            {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
        ]
    }


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def training(n: int) -> bytes:
    return jsonl([example(i) for i in range(n)])


def tokens_of(rows: list[dict[str, Any]], epochs: int) -> int:
    """The cookbook's formula (3 a message, its role, content and name, one more for a name; 3 more), written out
    independently of the validator's code, with the simulator's ~4-characters-a-token estimate."""
    per = [
        3
        + sum(
            3
            + estimate_tokens(m["role"])
            + estimate_tokens(m["content"])
            + estimate_tokens(m.get("name", ""))
            + ("name" in m)
            for m in r["messages"]
        )
        for r in rows
    ]
    return epochs * sum(per)


@contextlib.asynccontextmanager
async def simulator(
    spec: SimulatorSpec | None = None, **tuning: Any
) -> AsyncIterator[tuple[RunningSimulator, openai.AsyncOpenAI]]:
    ft = FineTuning(**{**FAST, **tuning})
    sim = await start_simulator(spec or one_model_spec(ttft_ms=1, itl_ms=1, output_tokens=4, fine_tuning=ft))
    client = openai.AsyncOpenAI(base_url=sim.urls["v"] + "/v1", api_key="sk-test", max_retries=0)
    try:
        yield sim, client
    finally:
        await client.close()
        await sim.stop()


async def upload(client: openai.AsyncOpenAI, data: bytes, name: str = "train.jsonl") -> str:
    f = await client.files.create(file=(name, data), purpose="fine-tune")
    return f.id


async def follow(
    client: openai.AsyncOpenAI, job_id: str, until: set[str] = TERMINAL, timeout_s: float = 5
) -> list[str]:
    """The statuses seen polling the job, in order (repeats dropped), until one in `until`."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = (await client.fine_tuning.jobs.retrieve(job_id)).status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in until:
            return seen
        await asyncio.sleep(0.005)
    raise AssertionError(f"job {job_id} still {seen[-1:]} after {timeout_s}s")


async def test_upload_retrieve_content_list_and_delete() -> None:
    data = training(12)
    async with simulator() as (sim, client):
        made = await client.files.create(file=("train.jsonl", data), purpose="fine-tune")
        assert made.id.startswith("file-") and made.object == "file" and made.status == "processed"
        assert made.bytes == len(data) and made.filename == "train.jsonl" and made.purpose == "fine-tune"
        assert isinstance(made.created_at, int) and abs(made.created_at - time.time()) < 5
        got = await client.files.retrieve(made.id)
        assert got.model_dump() == made.model_dump()
        assert (await client.files.content(made.id)).read() == data
        other = await upload(client, b"{}\n", "other.jsonl")
        assert [f.id async for f in client.files.list()] == [other, made.id]  # newest first
        deleted = await client.files.delete(made.id)
        assert deleted.id == made.id and deleted.deleted is True and deleted.object == "file"
        with pytest.raises(openai.NotFoundError) as missing:
            await client.files.retrieve(made.id)
        assert missing.value.status_code == 404
        assert missing.value.body == {
            "message": f"No such File object: {made.id}",
            "type": "invalid_request_error",
            "param": "id",
            "code": None,
        }
        with pytest.raises(openai.BadRequestError) as bad_purpose:
            await client.files.create(file=("t.jsonl", data), purpose="assistants")
        assert bad_purpose.value.status_code == 400
        async with (
            aiohttp.ClientSession() as s,  # no `file` part at all
            s.post(f"{sim.urls['v']}/v1/files", data={"purpose": "fine-tune"}) as r,
        ):
            assert r.status == 400
            error = (await r.json())["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "file"
        assert set(error) == {"message", "type", "param", "code"}
        rows = [r for r in sim.servers["v"].log if r["api"] == "finetune"]
        assert [r["op"] for r in rows] == [
            "files.create",
            "files.retrieve",
            "files.content",
            "files.create",
            "files.list",
            "files.delete",
            "files.retrieve",
            "files.create",
            "files.create",
        ]
        assert [r["status"] for r in rows] == [200, 200, 200, 200, 200, 200, 404, 400, 400]
        assert all(r["received_ns"] <= r["done_ns"] for r in rows)
        assert [r["n"] for r in rows] == sorted(r["n"] for r in rows)


async def test_a_job_runs_its_lifecycle_and_its_model_answers() -> None:
    rows = [example(i) for i in range(10)]
    async with simulator() as (sim, client):
        file_id = await upload(client, jsonl(rows))
        job = await client.fine_tuning.jobs.create(model="m", training_file=file_id, suffix="demo", seed=7)
        assert job.id.startswith("ftjob-") and job.object == "fine_tuning.job" and job.status == "validating_files"
        assert job.fine_tuned_model is None and job.finished_at is None and job.trained_tokens is None
        assert job.organization_id == "org-sim" and job.user_provided_suffix == "demo" and job.seed == 7
        assert job.hyperparameters.n_epochs == "auto"  # resolved once the file is validated

        seen = [job.status, *await follow(client, job.id)]
        ranks = [ORDER.index(s) for s in seen]
        assert ranks == sorted(ranks)  # in order, never backwards (a loaded machine may poll past a short phase)
        assert seen[-1] == "succeeded"
        done = await client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded" and done.error is None
        assert done.hyperparameters.n_epochs == 10  # 10 examples: min(25, 100 // 10)
        assert done.method is not None and done.method.type == "supervised"
        assert done.trained_tokens == tokens_of(rows, 10)
        assert done.finished_at is not None and done.finished_at >= done.created_at
        assert done.fine_tuned_model == f"ft:m:sim:demo:{job.id[-8:]}"

        events = [e async for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
        assert all(e.object == "fine_tuning.job.event" and e.id.startswith("ftevent-") for e in events)
        messages = [e.message for e in reversed(events)]  # served newest first
        assert messages[:3] == [
            f"Validating training file: {file_id}",
            "Files validated, moving job to queued state",
            "Fine-tuning job started",
        ]
        assert messages[-2:] == [
            f"New fine-tuned model created: {done.fine_tuned_model}",
            "The job has successfully completed",
        ]
        metrics = [e for e in reversed(events) if e.type == "metrics"]
        assert metrics and all(e.message.startswith("Step ") for e in metrics)
        steps = [e.data["step"] for e in metrics]  # type: ignore[index]
        assert steps == sorted(steps) and steps[-1] == metrics[-1].data["total_steps"]  # type: ignore[index]
        times = [e.created_at for e in reversed(events)]
        assert times == sorted(times)
        newest = await client.fine_tuning.jobs.list_events(job.id, limit=2)
        assert [e.id for e in newest.data] == [e.id for e in events[:2]] and newest.has_more

        models = [m.id async for m in client.models.list()]
        assert models == ["m", done.fine_tuned_model]
        reply = await client.chat.completions.create(
            model=done.fine_tuned_model, messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content
        with pytest.raises(openai.NotFoundError):  # an unknown model is still unknown
            await client.chat.completions.create(
                model="ft:m:sim:demo:00000000", messages=[{"role": "user", "content": "hi"}]
            )
        listed = await client.fine_tuning.jobs.list()
        assert [j.id for j in listed.data] == [job.id] and not listed.has_more
        ops = [r["op"] for r in sim.servers["v"].log if r["api"] == "finetune"]
        assert {"fine_tuning.jobs.create", "fine_tuning.jobs.retrieve", "fine_tuning.jobs.list_events"} <= set(ops)


async def test_chatting_right_after_the_job_ends_finds_the_model() -> None:
    """A client that waits out the job without reading it can chat at once: unknown names refresh the jobs."""
    async with simulator() as (sim, client):
        job = await client.fine_tuning.jobs.create(model="m", training_file=await upload(client, training(10)))
        name = f"ft:m:sim:tuned:{job.id[-8:]}"
        await asyncio.sleep(0.35)
        assert name not in sim.servers["v"].models  # nobody has looked yet
        reply = await client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
        assert reply.model == name


@pytest.mark.parametrize(
    ("n", "epochs"),
    [(1, 25), (4, 25), (5, 20), (10, 10), (33, 3), (34, 3), (40, 3), (8333, 3), (8334, 2), (12_500, 2), (30_000, 1)],
)
def test_auto_epochs_follow_openais_rule(n: int, epochs: int) -> None:
    assert auto_epochs(n) == epochs


async def test_epochs_resolve_from_the_file_and_explicit_ones_are_kept() -> None:
    async with simulator() as (_, client):
        forty = await upload(client, training(40))
        auto = await client.fine_tuning.jobs.create(
            model="m", training_file=forty, hyperparameters={"n_epochs": "auto"}
        )
        fixed = await client.fine_tuning.jobs.create(
            model="m",
            training_file=forty,
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}},
        )
        await asyncio.gather(follow(client, auto.id), follow(client, fixed.id))
        a, f = await client.fine_tuning.jobs.retrieve(auto.id), await client.fine_tuning.jobs.retrieve(fixed.id)
        rows = [example(i) for i in range(40)]
        assert a.hyperparameters.n_epochs == 3 and a.trained_tokens == tokens_of(rows, 3)
        assert f.hyperparameters.n_epochs == 2 and f.hyperparameters.batch_size == 4
        assert f.trained_tokens == tokens_of(rows, 2)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.fine_tuning.jobs.create(model="m", training_file=forty, hyperparameters={"n_epochs": 0})
        assert bad.value.param == "hyperparameters.n_epochs"


async def test_an_upload_can_fail_with_a_500() -> None:
    async with simulator(upload_failure=1.0) as (sim, client):
        with pytest.raises(openai.InternalServerError) as failed:
            await upload(client, training(10))
        assert failed.value.status_code == 500
        assert [f async for f in client.files.list()] == []
        (row,) = [r for r in sim.servers["v"].log if r.get("op") == "files.create"]
        assert row["status"] == 500


async def test_a_job_can_fail_part_way_through_running() -> None:
    async with simulator(job_failure=1.0, fail_at=0.5) as (sim, client):
        job = await client.fine_tuning.jobs.create(model="m", training_file=await upload(client, training(10)))
        seen = await follow(client, job.id)
        assert seen[-2:] == ["running", "failed"]
        failed = await client.fine_tuning.jobs.retrieve(job.id)
        assert failed.error is not None and failed.error.code == "internal_error"
        assert failed.error.message == "The job failed due to an internal error (injected)."
        assert failed.finished_at is not None and failed.fine_tuned_model is None and failed.trained_tokens is None
        events = [e async for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
        assert events[0].level == "error" and events[0].message == "The job failed due to an internal error"
        assert not any("New fine-tuned model" in e.message for e in events)
        assert [m.id async for m in client.models.list()] == ["m"]
        assert list(sim.servers["v"].models) == ["m"]


async def test_a_queued_job_can_be_cancelled() -> None:
    async with simulator(queue_s=0.5) as (_, client):
        job = await client.fine_tuning.jobs.create(model="m", training_file=await upload(client, training(10)))
        await follow(client, job.id, until={"queued"})
        cancelled = await client.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled" and cancelled.finished_at is not None
        with pytest.raises(openai.BadRequestError) as again:
            await client.fine_tuning.jobs.cancel(job.id)
        assert "Job has already completed" in again.value.message
        await asyncio.sleep(0.7)  # past when it would have finished
        later = await client.fine_tuning.jobs.retrieve(job.id)
        assert later.status == "cancelled" and later.fine_tuned_model is None
        events = [e.message async for e in client.fine_tuning.jobs.list_events(job.id)]
        assert events[0] == "Fine-tuning job cancelled" and "Fine-tuning job started" not in events
        assert [m.id async for m in client.models.list()] == ["m"]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (jsonl([example(0), example(1), [1, 2]] + [example(i) for i in range(10)]), "line 3"),
        (jsonl([example(i) for i in range(5)] + [{"messages": []}]), "line 6"),
        (training(5), "at least 10"),
    ],
)
async def test_an_invalid_training_file_fails_validation(data: bytes, said: str) -> None:
    async with simulator() as (_, client):
        job = await client.fine_tuning.jobs.create(model="m", training_file=await upload(client, data))
        assert await follow(client, job.id) == ["validating_files", "failed"]
        failed = await client.fine_tuning.jobs.retrieve(job.id)
        assert failed.error is not None and failed.error.code == "invalid_training_file"
        assert failed.error.param == "training_file" and said in failed.error.message
        assert failed.finished_at is not None and failed.hyperparameters.n_epochs == "auto"


async def test_jobs_are_refused_for_models_that_cannot_be_tuned_and_for_unknown_files() -> None:
    models = [ModelProfile(name="m", fine_tuning=FineTuning(**FAST)), ModelProfile(name="fixed")]
    spec = SimulatorSpec(seed=0, vendors=[Vendor(name="v", models=models)])
    async with simulator(spec) as (_, client):
        file_id = await upload(client, training(10))
        for model in ("fixed", "nope"):
            with pytest.raises(openai.BadRequestError) as refused:
                await client.fine_tuning.jobs.create(model=model, training_file=file_id)
            assert refused.value.status_code == 400
            assert refused.value.body == {
                "message": f"Model {model} is not available for fine-tuning or does not exist.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_available",
            }
        with pytest.raises(openai.BadRequestError) as no_file:
            await client.fine_tuning.jobs.create(model="m", training_file="file-missing")
        assert no_file.value.param == "training_file"
        with pytest.raises(openai.NotFoundError):
            await client.fine_tuning.jobs.retrieve("ftjob-missing")


def test_the_tuned_profile_adds_the_gains_and_shares_the_draws() -> None:
    base = ModelProfile(
        name="m",
        answers=Answers(accuracy=0.8, by_dataset={"gsm8k": 0.5}, by_tag={"negation": 0.4}),
        fine_tuning=FineTuning(
            gain=0.3, gain_by_tag={"facts": -0.5}, list_price=ListPrice(input_per_mtok=3, output_per_mtok=12)
        ),
    )
    tuned = tuned_profile(base, "ft:m:sim:tuned:abcdefgh")
    assert tuned.name == "ft:m:sim:tuned:abcdefgh" and tuned.draws_as == "m" and tuned.fine_tuning is None
    assert tuned.answers.accuracy == 1.0 and tuned.answers.by_dataset == {"gsm8k": pytest.approx(0.8)}
    assert tuned.answers.by_tag == {"facts": pytest.approx(0.6), "negation": pytest.approx(0.7)}
    assert tuned.list_price == ListPrice(input_per_mtok=3, output_per_mtok=12)
    assert tuned.ttft_ms == base.ttft_ms
    with pytest.raises(ValueError, match="cannot be fine-tuned"):
        tuned_profile(tuned, "again")


def test_a_tuned_model_is_right_wherever_its_base_is() -> None:
    items = load_items("demo-qa", None, Path("."))
    key = AnswerKey(items)
    base = ModelProfile(name="m", answers=Answers(accuracy=0.5), fine_tuning=FineTuning(gain=0.3))
    tuned = tuned_profile(base, "ft:m:sim:tuned:12345678")
    base_right = [key.answer(base.answers, 0, "m", it)[1] for it in items]
    tuned_right = [key.answer(tuned.answers, 0, tuned.draws_as or tuned.name, it)[1] for it in items]
    assert all(t for b, t in zip(base_right, tuned_right, strict=True) if b)
    assert sum(tuned_right) > sum(base_right)


async def test_the_served_tuned_model_is_paired_with_its_base() -> None:
    ft = FineTuning(**FAST, gain=0.3)
    spec = one_model_spec(ttft_ms=1, itl_ms=1, output_tokens=4, answers=Answers(accuracy=0.5), fine_tuning=ft)
    items = load_items("demo-qa", None, Path("."))
    async with simulator(spec) as (sim, client):
        job = await client.fine_tuning.jobs.create(model="m", training_file=await upload(client, training(10)))
        await follow(client, job.id)
        tuned = (await client.fine_tuning.jobs.retrieve(job.id)).fine_tuned_model
        assert tuned is not None

        async def ask(model: str, question: str) -> None:
            await client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}])

        await asyncio.gather(*(ask(m, it.question) for m in ("m", tuned) for it in items))
        right: dict[str, dict[str, bool]] = {"m": {}, tuned: {}}
        for r in sim.servers["v"].log:
            if "item" in r:
                right[r["model"]][r["item"]] = r["right"]
        assert set(right["m"]) == set(right[tuned]) == {it.id for it in items}
        assert all(right[tuned][i] for i, ok in right["m"].items() if ok)
        assert sum(right[tuned].values()) > sum(right["m"].values())


async def test_ids_and_events_are_the_same_for_the_same_seed() -> None:
    async def run() -> tuple[str, str, list[tuple[str, str, str]]]:
        async with simulator() as (_, client):
            file_id = await upload(client, training(10))
            job = await client.fine_tuning.jobs.create(model="m", training_file=file_id)
            await follow(client, job.id)
            events = [(e.id, e.message, e.type) async for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
            return file_id, job.id, events

    first, second = await run(), await run()
    assert first == second
    assert len({e[0] for e in first[2]}) == len(first[2])  # distinct event ids
