"""The judge phase: another target reads replies and its verdicts are appended; unreadable ones are asked again.

One loop for every kind of judge (quality's correct/incorrect, safety's refused/
partial/complied). A judge call is a Record of its own: its target is the judge,
its suite and item are the ones judged, and `judged_target` names whose reply it
read. A reply is *decided* once a judge Record carries a verdict; it is *given up*
when a judge call failed for good or the judge kept answering without a verdict
more than `retries` times. Either way the loop stops asking. Resume re-enters here
and asks only what is neither decided nor given up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from assay.model import ChatRequest
from assay.records import Annotations, JudgeVerdict, Record, WorkItem
from assay.runner.runs import Run

__all__ = ["JudgeAsk", "decided", "judge_phase", "verdicts"]


@dataclass(frozen=True)
class JudgeAsk:
    """One reply to judge, and the request that asks the judge about it."""

    subject: Record
    request: ChatRequest
    prompt: str


def verdicts(
    rows: Iterable[tuple[Record, Annotations]],
) -> dict[tuple[str, str, str], list[tuple[Record, Annotations]]]:
    """The judge Records so far (cancelled ones left out), by the reply they judged: (suite, item, target)."""
    out: dict[tuple[str, str, str], list[tuple[Record, Annotations]]] = {}
    for r, a in rows:
        if r.judged_target and r.error_class != "cancelled":
            out.setdefault((r.suite, r.item_id, r.judged_target), []).append((r, a))
    return out


def decided(tries: list[tuple[Record, Annotations]]) -> JudgeVerdict | None:
    """The verdict the judge gave, if any of its tries gave one."""
    for _, a in tries:
        if a.verdict is not None and a.verdict.verdict is not None:
            return a.verdict
    return None


async def judge_phase(
    run: Run,
    session: object,
    judge: str,
    asks: Callable[[list[tuple[Record, Annotations]]], list[JudgeAsk]],
    parse: Callable[[str], JudgeVerdict],
    retries: int,
    concurrency: int,
    *,
    transport_retries: int = 3,
    section: object = None,
    total_s: float | None = None,
    **runner_kwargs: Any,
) -> None:
    """Ask `judge` about every reply `asks` puts in scope, up to 1 + `retries` rounds.

    `asks(rows)` gets every Record of the run with its annotations and returns the replies
    in scope; `parse(text)` reads a verdict from the judge's reply (fields None when it holds none).
    `transport_retries` are retries of failed calls (429, 5xx...), apart from re-asks.
    """
    for _ in range(1 + retries):
        await run.flush()
        rows = list(run.store.iter_annotated(run.run_id))
        so_far = verdicts(rows)
        todo = []
        for ask in asks(rows):
            s = ask.subject
            tries = so_far.get((s.suite, s.item_id, s.target), [])
            if decided(tries) is not None:
                continue
            if any(r.final and not r.ok for r, _ in tries) or sum(r.ok for r, _ in tries) > retries:
                continue  # the judge failed, or kept rambling: leave the reply as the detectors or scorers left it
            todo.append(WorkItem(judge, s.suite, s.item_id, ask.request, ask.prompt, judged_target=s.target))
        if not todo:
            return
        _, next_attempt = run.store.attempts_so_far(run.run_id)

        def annotate(r: Record) -> list[JudgeVerdict]:
            return [parse(r.response_text or "") if r.ok else JudgeVerdict(None)]

        clients = run.clients(session, [judge], section, total_s)
        runner = run.runner(
            clients,
            concurrency=concurrency,
            retries=transport_retries,
            annotate=annotate,
            keep_text=True,
            **runner_kwargs,
        )
        await runner.run(todo, next_attempt=next_attempt)
