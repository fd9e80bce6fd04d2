"""Quality evaluation: every target answers the same dataset items; replies are scored and compared.

A run is planned as (target x suite x item) WorkItems that go through the same
run lifecycle and Runner as every command, so every attempt is a Record with its
timings, tokens, cost, the exact prompt and the reply; its score and the item's
tags are annotations appended with it. Replies can be reused from a response
cache keyed by the exact request; reused ones are Records too, marked `cached`
and without timings. Embedding scores are appended after the requests, in one
batch; an LLM judge's verdicts come from the shared judge phase (runner/judge.py).
Interrupted runs resume where they stopped, phase by phase.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import orjson

from assay.clients import open_session
from assay.clock import Clock
from assay.config import ProjectConfig, SuiteConfig, state_dir
from assay.datasets import EvalItem, data_dir, load_items, select
from assay.errors import ConfigError
from assay.model import ChatRequest, Message, StrictModel, Target
from assay.records import Annotation, Annotations, ItemFacts, JudgeVerdict, Record, Score, WorkItem
from assay.runner.judge import JudgeAsk, judge_phase
from assay.runner.runs import Run, open_run
from assay.store import Store
from assay.suites.embedding import similarities
from assay.suites.judge import judge_request, parse_verdict
from assay.suites.quality_summary import EvalSummary, summarize_eval
from assay.suites.scorers import BATCH_SCORERS, GRADED, SCORERS, Verdict, hallucinated, reference_problems

__all__ = ["KIND", "EvalOptions", "EvalPlan", "plan_eval", "render_prompt", "request_key", "run_eval", "summarize_run"]

log = logging.getLogger("assay")

KIND = "eval"

TEMPLATES = {
    "gsm8k": (
        "Solve the math problem. Work it out step by step, then finish with a line 'The answer is N.'\n\n"
        "{% for ex in examples %}Question: {{ ex.question }}\nAnswer: {{ ex.solution }}\n\n{% endfor %}"
        "Question: {{ question }}\nAnswer:"
    ),
    "choice": (
        "The following is a multiple-choice question{% if subject %} about {{ subject }}{% endif %}. "
        "Reply with the letter of the correct option, as 'The answer is (X)'.\n\n"
        "{% for ex in examples %}{{ ex.question }}\n{{ ex.choice_lines }}\nThe answer is ({{ ex.expected }}).\n\n"
        "{% endfor %}{{ question }}\n{{ choices }}"
    ),
    "default": (
        "{% for ex in examples %}Question: {{ ex.question }}\nAnswer: {{ ex.expected }}\n\n{% endfor %}"
        "{% if examples %}Question: {{ question }}\nAnswer:{% else %}{{ question }}{% endif %}"
    ),
}
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


class EvalOptions(StrictModel):
    """What to run: suites and targets (all when empty) and how."""

    suites: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    concurrency: int = 8
    timeout_s: float | None = None  # --timeout: the total for every target of this run, over any config
    retries: int = 3
    data_dir: str | None = None
    cache: bool = True
    limit: int | None = None  # overrides each suite's limit
    sample: int | None = None  # overrides each suite's sample (a seeded random N)
    seed: int | None = None  # overrides each suite's seed
    # `assay finetune compare`: the pair this eval weighs (base, tuned, suite, training_usd|training_run, months)
    finetune: dict[str, Any] | None = None


def request_key(target: Target, request: ChatRequest) -> str:
    """The response-cache key: the same target (API, URL, model) and the exact same request."""
    body = {
        "api": target.api,
        "base_url": target.base_url,
        "model": target.model,
        "system": request.system,
        "messages": [(m.role, m.content) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "extra": request.extra,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _template(suite: SuiteConfig) -> jinja2.Template:
    if suite.template is not None:
        text = suite.template
    elif suite.dataset == "gsm8k":
        text = TEMPLATES["gsm8k"]
    elif suite.scorer == "choice" or suite.dataset in ("mmlu", "mmlu-redux"):
        text = TEMPLATES["choice"]
    else:
        text = TEMPLATES["default"]
    try:
        return _compiled(text)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"suite {suite.name!r}: template line {e.lineno}: {e.message}") from None


@functools.lru_cache(maxsize=64)
def _compiled(text: str) -> jinja2.Template:
    return _JINJA.from_string(text)  # compiling costs ~0.3 ms; a 10,000-item suite renders one template


def render_prompt(suite: SuiteConfig, item: EvalItem, examples: list[EvalItem]) -> tuple[ChatRequest, str]:
    """The request for one item and the exact prompt text stored with its Record."""
    if item.messages:
        messages = [Message(role, content) for role, content in item.messages]
    else:
        try:
            text = _template(suite).render(
                question=item.question,
                choices=item.choice_lines,
                expected=item.expected,
                context=item.context or "",
                subject=item.tags[0].replace("_", " ") if item.dataset.startswith("mmlu") and item.tags else "",
                tags=item.tags,
                examples=examples,
                metadata=item.metadata,
            )
        except jinja2.UndefinedError as e:
            raise ConfigError(f"suite {suite.name!r}: template uses an unknown variable: {e.message}") from None
        messages = [Message("user", text)]
    request = ChatRequest(
        messages, max_tokens=suite.max_tokens, temperature=suite.temperature, stream=True, system=suite.system
    )
    prompt = "\n\n".join(([f"[system] {suite.system}"] if suite.system else []) + [m.content for m in messages])
    return request, prompt


@dataclass
class SuitePlan:
    suite: SuiteConfig
    items: list[EvalItem]
    examples: list[EvalItem]
    by_id: dict[str, EvalItem] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {it.id: it for it in self.items}


@dataclass
class EvalPlan:
    config: ProjectConfig
    opts: EvalOptions
    suites: dict[str, SuitePlan]
    work: list[WorkItem]
    keys: dict[tuple[str, str, str, str], str]  # work key -> response-cache key

    def item(self, suite: str, item_id: str) -> EvalItem:
        try:
            return self.suites[suite].by_id[item_id]
        except KeyError:
            raise ConfigError(
                f"suite {suite!r} has no item {item_id!r} any more: its dataset changed since the run started; "
                "start a new run"
            ) from None

    @property
    def targets(self) -> list[str]:
        return list(dict.fromkeys(w.target for w in self.work))

    @property
    def judges(self) -> list[str]:
        return list(dict.fromkeys(sp.suite.judge.target for sp in self.suites.values() if sp.suite.judge))


def plan_eval(config: ProjectConfig, opts: EvalOptions) -> EvalPlan:
    """Load the datasets, pick the items, render every prompt; refuse bad input before any request."""
    if not config.quality_suites:
        raise ConfigError("the config has no `suites:`; add one, e.g. {name: math, dataset: gsm8k, scorer: numeric}")
    suites = [config.suite(n) for n in opts.suites] if opts.suites else config.quality_suites
    targets = [config.target(n) for n in opts.targets] if opts.targets else list(config.targets)
    root = data_dir(Path(opts.data_dir) if opts.data_dir else None)
    cache_dir = state_dir() / "datasets"
    plans: dict[str, SuitePlan] = {}
    work: list[WorkItem] = []
    keys: dict[tuple[str, str, str, str], str] = {}
    for suite in suites:
        everything = load_items(suite.dataset, root, cache_dir, include_flagged=suite.include_flagged)
        # Few-shot examples come from the end of the dataset and are never evaluated.
        examples = everything[len(everything) - suite.few_shot :] if suite.few_shot else []
        pool = everything[: len(everything) - suite.few_shot] if suite.few_shot else everything
        seed = opts.seed if opts.seed is not None else suite.seed
        items = select(pool, opts.limit or suite.limit, opts.sample or suite.sample, seed)
        bad = reference_problems(suite.scorer, items)
        if bad:  # a reference the scorer cannot read is the dataset's error: say so before sending anything
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise ConfigError(
                f"suite {suite.name!r}: scorer {suite.scorer} cannot use {len(bad)} of {len(items)} reference "
                f"answers{more}; pick a scorer that fits the dataset (exact, contains, f1...)",
                bad[:5],
            )
        plans[suite.name] = SuitePlan(suite, items, examples)
        for it in items:
            request, prompt = render_prompt(suite, it, examples)
            for t in targets:
                w = WorkItem(t.name, suite.name, it.id, request, prompt)
                work.append(w)
                keys[w.key] = request_key(t, request)
    return EvalPlan(config, opts, plans, work, keys)


def make_annotator(plan: EvalPlan) -> Callable[[Record], list[Annotation]]:
    """The annotations of each reply as its Record is written: the item's tags, and its score
    (batch-scored suites are scored after the requests)."""

    def annotate(r: Record) -> list[Annotation]:
        sp = plan.suites.get(r.suite)
        if sp is None or r.judged_target:
            return []
        item = plan.item(r.suite, r.item_id)
        out: list[Annotation] = [ItemFacts(tags=item.tags)] if item.tags else []
        if not r.ok or sp.suite.scorer in BATCH_SCORERS:
            return out
        opts: dict[str, Any] = {"pattern": sp.suite.pattern, "schema": sp.suite.json_schema}
        opts["threshold"] = sp.suite.threshold
        verdict: Verdict = SCORERS[sp.suite.scorer](item, r.response_text or "", opts)
        h = hallucinated(r.response_text or "", item)
        out.append(Score(sp.suite.scorer, verdict.value, verdict.passed, verdict.extracted, h))
        return out

    return annotate


@dataclass
class EvalRun:
    run_id: str
    plan: EvalPlan
    interrupted: bool = False


async def run_eval(
    config: ProjectConfig | None,
    opts: EvalOptions,
    db: Path,
    *,
    resume: str | None = None,
    clock: Clock | None = None,
    on_record: Callable[[Record], None] | None = None,
    on_start: Callable[[str, dict[str, int]], None] | None = None,
) -> EvalRun:
    """Run (or resume) an evaluation; Records carry prompt, reply, latency and cost, annotations the scores."""
    plan: EvalPlan | None = None
    if resume is None:
        if config is None:
            raise ValueError("a new eval needs a config")
        plan = plan_eval(config, opts)  # refuse bad input before anything is written
        opts = opts.model_copy(update={"targets": tuple(plan.targets)})
        names = plan.targets + plan.judges
    run = open_run(db, KIND, config, opts, names if plan else (), resume=resume, clock=clock)
    try:
        if plan is None:
            plan = plan_eval(run.config, EvalOptions.model_validate(run.params))
        await _execute(run, plan, on_record, on_start)
        if plan.opts.cache:
            fresh = [(plan.keys.get(r.item_key), r) for r in run.store.iter_records(run.run_id)]
            keep = [(k, r) for k, r in fresh if k is not None and r.ok and not r.cached]
            run.store.cache_replies(keep, run.clock.wall_s())
        judged = {name for name, sp in plan.suites.items() if sp.suite.scorer == "judge"}
        _warn_if_unreadable(run.store, run.run_id, judged)
        return EvalRun(run.run_id, plan)
    finally:
        run.close()


async def _execute(
    run: Run,
    plan: EvalPlan,
    on_record: Callable[[Record], None] | None,
    on_start: Callable[[str, dict[str, int]], None] | None,
) -> None:
    annotate = make_annotator(plan)
    async with run.active() as writer, open_session() as session:
        pending = [w for w in plan.work if w.key not in run.done]
        if plan.opts.cache:
            pending = _serve_from_cache(run, plan, pending, annotate, on_record)
        if on_start:
            on_start(run.run_id, run.pending(pending))
        if pending:
            clients = run.clients(session, {w.target for w in pending}, total_s=plan.opts.timeout_s)
            runner = run.runner(
                clients,
                concurrency=plan.opts.concurrency,
                retries=plan.opts.retries,
                annotate=annotate,
                on_record=on_record,
                keep_text=True,
            )
            await runner.run(pending, next_attempt=run.next_attempt)
        await writer.aflush()
        _embed(run, plan)
        for sp in plan.suites.values():
            judge = sp.suite.judge
            if judge is None:
                continue
            await judge_phase(
                run,
                session,
                judge.target,
                _judge_asks(plan, sp),
                lambda text: JudgeVerdict(_verdict_word(parse_verdict(text))),
                judge.retries,
                plan.opts.concurrency,
                transport_retries=plan.opts.retries,
                total_s=plan.opts.timeout_s,
                on_record=on_record,
            )


def _verdict_word(v: bool | None) -> str | None:
    return None if v is None else ("correct" if v else "incorrect")


def _judge_asks(plan: EvalPlan, sp: SuitePlan) -> Callable[[list[tuple[Record, Annotations]]], list[JudgeAsk]]:
    """Every successful final reply of a judged suite goes to the judge."""
    judge = sp.suite.judge
    assert judge is not None

    def asks(rows: list[tuple[Record, Annotations]]) -> list[JudgeAsk]:
        out = []
        for r, _ in rows:
            if r.suite != sp.suite.name or r.judged_target or not (r.final and r.ok):
                continue
            request, prompt = judge_request(
                plan.item(r.suite, r.item_id), r.response_text or "", judge.rubric, judge.max_tokens
            )
            out.append(JudgeAsk(r, request, prompt))
        return out

    return asks


def _embed(run: Run, plan: EvalPlan) -> None:
    """Score the replies of embedding suites in one batch, appending the scores as annotations."""
    for name, sp in plan.suites.items():
        if sp.suite.scorer != "embedding":
            continue
        todo = [
            r
            for r, a in run.store.iter_annotated(run.run_id)
            if r.suite == name and not r.judged_target and r.final and r.ok and a.score is None
        ]
        items = [plan.item(name, r.item_id) for r in todo]
        model = Path(sp.suite.embedding_model) if sp.suite.embedding_model else None
        sims = similarities([r.response_text or "" for r in todo], [it.expected for it in items], model)
        run.store.annotate(
            [(r, Score("embedding", sim, sim >= sp.suite.threshold)) for r, sim in zip(todo, sims, strict=True)],
            run.clock.wall_s(),
        )


def _serve_from_cache(
    run: Run,
    plan: EvalPlan,
    pending: list[WorkItem],
    annotate: Callable[[Record], list[Annotation]],
    on_record: Callable[[Record], None] | None,
) -> list[WorkItem]:
    """Write Records for requests answered before; return the ones still to send."""
    assert run.writer is not None
    hits = run.store.cached([plan.keys[w.key] for w in pending])
    rest = []
    for w in pending:
        row = hits.get(plan.keys[w.key])
        if row is None:
            rest.append(w)
            continue
        r = Record(
            run.run_id, w.target, w.suite, w.item_id, run.next_attempt.get(w.key, 0), "ok", run.clock.wall_s(),
            input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
            cached_tokens=row["cached_tokens"], reasoning_tokens=row["reasoning_tokens"],
            token_source=row["token_source"], finish_reason=row["finish_reason"], request_id="cache",
            response_text=row["response_text"], prompt=w.prompt, cached=True, session=run.session,
        )  # fmt: skip
        r.cost_usd = 0.0 if run.prices.prices.get(w.target) is not None else None  # nothing was sent: nothing paid
        run.writer.put(r, annotate(r))
        if on_record:
            on_record(r)
    return rest


def _warn_if_unreadable(store: Store, run_id: str, judged: set[str], share: float = 0.5) -> None:
    """Say so loudly when most replies of a target could not be scored: a score of 0 that is not a score.
    (A judged suite's undecided replies are reported as unscored by the summary already.)"""
    seen: dict[tuple[str, str], list[int]] = {}
    for r, a in store.iter_annotated(run_id):
        if r.judged_target or not r.final or not r.ok or r.suite in judged:
            continue
        tally = seen.setdefault((r.target, r.suite), [0, 0])
        tally[0] += 1
        s = a.score
        unreadable = s is None or s.value is None or (s.scorer in ("numeric", "choice") and s.extracted is None)
        tally[1] += unreadable
    for (target, suite), (n, bad) in seen.items():
        if n and bad / n > share:
            log.warning(
                "%s on %s: %d of %d replies held no answer the scorer could read; the score says nothing about "
                "quality (is the simulator or server answering these items? see `assay eval --json` disagreements)",
                target,
                suite,
                bad,
                n,
            )


def summarize_run(store: Store, run_id: str) -> EvalSummary:
    """The summary of a stored eval run, from its Records, annotations and stored config alone."""
    info = store.run(run_id, kind=KIND)
    if info.kind != KIND:
        raise ConfigError(f"run {info.run_id} is a {info.kind} run, not an eval")
    config = ProjectConfig.model_validate(info.config)
    graded = {s.name: s.scorer in GRADED for s in config.quality_suites}
    rows = list(store.iter_annotated(info.run_id))
    targets = list(info.params.get("targets") or [t.name for t in config.targets])
    return summarize_eval(info.run_id, rows, graded, targets)
