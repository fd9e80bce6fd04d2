"""Quality evaluation: every target answers the same dataset items; replies are scored and compared.

A run is planned as (target x suite x item) WorkItems that go through the same
Runner as the probe, so every attempt is a Record with its timings, tokens,
cost, the exact prompt, the reply and its score. Replies can be reused from a
response cache keyed by the exact request; reused ones are Records too, marked
`cached` and without timings. Interrupted runs resume where they stopped.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import orjson

from assay.catalog import PriceBook
from assay.clients import Timeouts, make_client, open_session
from assay.clock import Clock, SystemClock
from assay.config import ProjectConfig, SuiteConfig, missing_key_envs, state_dir
from assay.datasets import EvalItem, data_dir, load_items, select
from assay.errors import ConfigError
from assay.model import ChatRequest, Message, Record, StrictModel, Target
from assay.runner import RetryPolicy, Runner, WorkItem
from assay.store import RecordWriter, Store
from assay.suites.embedding import similarities
from assay.suites.judge import JUDGE_SUFFIX, judge_request, parse_verdict
from assay.suites.probe import config_hash, price_book, stored_config, versions
from assay.suites.quality_summary import EvalSummary, summarize_eval
from assay.suites.scorers import GRADED, SCORERS, Verdict, hallucinated

__all__ = ["EvalOptions", "EvalPlan", "plan_eval", "render_prompt", "request_key", "run_eval", "summarize_run"]

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
    timeout_s: float = 120.0
    retries: int = 3
    data_dir: str | None = None
    cache: bool = True
    limit: int | None = None  # overrides each suite's limit
    sample: int | None = None  # overrides each suite's sample (a seeded random N)
    seed: int | None = None  # overrides each suite's seed


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
    keys: dict[tuple[str, str, str], str]  # work key -> response-cache key

    def item(self, suite: str, item_id: str) -> EvalItem:
        return self.suites[suite].by_id[item_id]


def plan_eval(config: ProjectConfig, opts: EvalOptions) -> EvalPlan:
    """Load the datasets, pick the items, render every prompt; refuse bad input before any request."""
    if not config.quality_suites:
        raise ConfigError("the config has no `suites:`; add one, e.g. {name: math, dataset: gsm8k, scorer: numeric}")
    suites = [config.suite(n) for n in opts.suites] if opts.suites else config.quality_suites
    targets = [config.target(n) for n in opts.targets] if opts.targets else list(config.targets)
    judges = {s.judge.target for s in suites if s.judge}
    missing = missing_key_envs(config, {t.name for t in targets} | judges)
    if missing:
        raise ConfigError("cannot evaluate: API keys missing", missing)
    root = data_dir(Path(opts.data_dir) if opts.data_dir else None)
    cache_dir = state_dir() / "datasets"
    plans: dict[str, SuitePlan] = {}
    work: list[WorkItem] = []
    keys: dict[tuple[str, str, str], str] = {}
    for suite in suites:
        everything = load_items(suite.dataset, root, cache_dir, include_flagged=suite.include_flagged)
        # Few-shot examples come from the end of the dataset and are never evaluated.
        examples = everything[len(everything) - suite.few_shot :] if suite.few_shot else []
        pool = everything[: len(everything) - suite.few_shot] if suite.few_shot else everything
        seed = opts.seed if opts.seed is not None else suite.seed
        items = select(pool, opts.limit or suite.limit, opts.sample or suite.sample, seed)
        if suite.scorer == "numeric":
            for it in items:
                SCORERS["numeric"](it, "", {})  # a non-numeric reference is a dataset error: say so now
        plans[suite.name] = SuitePlan(suite, items, examples)
        for it in items:
            request, prompt = render_prompt(suite, it, examples)
            for t in targets:
                w = WorkItem(t.name, suite.name, it.id, request, prompt)
                work.append(w)
                keys[w.key] = request_key(t, request)
    return EvalPlan(config, opts, plans, work, keys)


def make_annotator(plan: EvalPlan) -> Callable[[Record], None]:
    """Scores each successful reply as its Record is written (judged suites are scored later)."""

    def annotate(r: Record) -> None:
        sp = plan.suites.get(r.suite)
        if sp is None:
            return
        item = plan.item(r.suite, r.item_id)
        if item.tags:
            r.scores = {**r.scores, "tags": list(item.tags)}  # slices are read back from Records alone
        if not r.ok or sp.suite.scorer in BATCH_SCORED:
            return
        opts: dict[str, Any] = {"pattern": sp.suite.pattern, "schema": sp.suite.json_schema}
        opts["threshold"] = sp.suite.threshold
        verdict: Verdict = SCORERS[sp.suite.scorer](item, r.response_text or "", opts)
        r.scores = {**r.scores, "value": verdict.value, "passed": verdict.passed}
        if verdict.extracted is not None:
            r.scores["extracted"] = verdict.extracted
        h = hallucinated(r.response_text or "", item)
        if h is not None:
            r.scores["hallucinated"] = h

    return annotate


def _run_id(clock: Clock) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(clock.wall_s())) + "-" + secrets.token_hex(3)


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
    """Run (or resume) an evaluation; Records carry prompt, reply, score, latency and cost."""
    clock = clock or SystemClock()
    store = Store(db)
    try:
        if resume is not None:
            info = store.run(resume)
            if info.kind != KIND:
                raise ConfigError(f"run {info.run_id} is a {info.kind} run, not an eval")
            config = ProjectConfig.model_validate(info.config)
            opts = EvalOptions.model_validate(info.params)
            plan = plan_eval(config, opts)
            prices = price_book(config)
            run_id = info.run_id
            done, next_attempt = store.attempts_so_far(run_id)
            store.set_status(run_id, "running")
        else:
            if config is None:
                raise ConfigError("a new eval needs a config")
            plan = plan_eval(config, opts)
            prices = price_book(config)
            run_id = _run_id(clock)
            params = opts.model_dump(mode="json")
            stored = stored_config(config)
            store.create_run(run_id, KIND, clock.wall_s(), config_hash(config), stored, params, versions())
            done, next_attempt = set(), {}
        annotate = make_annotator(plan)
        status = "interrupted"
        try:
            writer = RecordWriter(db)
            out = _Out(run_id, prices, writer, clock, on_record)
            try:
                pending = [w for w in plan.work if w.key not in done]
                if plan.opts.cache:
                    pending = _serve_from_cache(store, plan, pending, out, annotate)
                if on_start:
                    counts: dict[str, int] = {}
                    for w in pending:
                        counts[w.target] = counts.get(w.target, 0) + 1
                    on_start(run_id, counts)
                await _send(plan, pending, out, annotate, next_attempt)
            finally:
                await writer.aclose()
            _embed(store, plan, run_id)
            await _judge(store, plan, run_id, prices, db, clock, on_record)
            status = "complete"
        finally:
            store.set_status(run_id, status, clock.wall_s())
        if plan.opts.cache:
            fresh = [(plan.keys.get((r.target, r.suite, r.item_id)), r) for r in store.iter_records(run_id)]
            keep = [(k, r) for k, r in fresh if k is not None and r.ok and r.request_id != "cache"]
            store.cache_replies(keep, clock.wall_s())
        return EvalRun(run_id, plan)
    finally:
        store.close()


BATCH_SCORED = frozenset({"judge", "embedding"})  # scored after the requests, not as each Record is written


def _embed(store: Store, plan: EvalPlan, run_id: str) -> None:
    """Score the replies of embedding suites in one batch and write the scores onto their Records."""
    for name, sp in plan.suites.items():
        if sp.suite.scorer != "embedding":
            continue
        todo = [
            r
            for r in store.iter_records(run_id)
            if r.suite == name and r.final and r.ok and r.scores.get("value") is None
        ]
        items = [plan.item(name, r.item_id) for r in todo]
        model = Path(sp.suite.embedding_model) if sp.suite.embedding_model else None
        sims = similarities([r.response_text or "" for r in todo], [it.expected for it in items], model)
        for r, sim in zip(todo, sims, strict=True):
            r.scores = {**r.scores, "value": sim, "passed": sim >= sp.suite.threshold}
        store.set_scores(run_id, todo)


def _judge_annotate(r: Record) -> None:
    r.scores = {**r.scores, "verdict": parse_verdict(r.response_text or "") if r.ok else None}


async def _judge(
    store: Store,
    plan: EvalPlan,
    run_id: str,
    prices: PriceBook,
    db: Path,
    clock: Clock,
    on_record: Callable[[Record], None] | None,
) -> None:
    """Ask the judge about every successful reply of judged suites; re-ask unparseable verdicts."""
    judged = {name: sp.suite for name, sp in plan.suites.items() if sp.suite.judge is not None}
    if not judged:
        return
    rounds = 1 + max(s.judge.retries for s in judged.values() if s.judge)
    for _ in range(rounds):
        records = list(store.iter_records(run_id))
        verdicts: dict[tuple[str, str], list[Record]] = {}
        for r in records:
            if r.suite.endswith(JUDGE_SUFFIX) and r.error_class != "cancelled":
                verdicts.setdefault((r.suite, r.item_id), []).append(r)
        todo = []
        for r in records:
            suite = judged.get(r.suite)
            if suite is None or suite.judge is None or not (r.final and r.ok):
                continue
            key = (r.suite + JUDGE_SUFFIX, f"{r.target}/{r.item_id}")
            tries = verdicts.get(key, [])
            if any(t.scores.get("verdict") is not None for t in tries):
                continue  # decided
            if any(t.final and not t.ok for t in tries) or sum(t.ok for t in tries) > suite.judge.retries:
                continue  # the judge failed or kept rambling: the item stays unscored
            request, prompt = judge_request(
                plan.item(r.suite, r.item_id), r.response_text or "", suite.judge.rubric, suite.judge.max_tokens
            )
            todo.append(WorkItem(suite.judge.target, key[0], key[1], request, prompt))
        if not todo:
            return
        _, next_attempt = store.attempts_so_far(run_id)
        writer = RecordWriter(db)
        try:
            await _send(plan, todo, _Out(run_id, prices, writer, clock, on_record), _judge_annotate, next_attempt)
        finally:
            await writer.aclose()


@dataclass
class _Out:
    """Where a phase's Records go, and what prices them on the way."""

    run_id: str
    prices: PriceBook
    writer: RecordWriter
    clock: Clock
    on_record: Callable[[Record], None] | None


def _serve_from_cache(
    store: Store, plan: EvalPlan, pending: list[WorkItem], out: _Out, annotate: Callable[[Record], None]
) -> list[WorkItem]:
    """Write Records for requests answered before; return the ones still to send."""
    hits = store.cached([plan.keys[w.key] for w in pending])
    rest = []
    for w in pending:
        row = hits.get(plan.keys[w.key])
        if row is None:
            rest.append(w)
            continue
        r = Record(
            out.run_id, w.target, w.suite, w.item_id, 0, "ok", out.clock.wall_s(),
            input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
            cached_tokens=row["cached_tokens"], reasoning_tokens=row["reasoning_tokens"],
            token_source=row["token_source"], finish_reason=row["finish_reason"], request_id="cache",
            response_text=row["response_text"], prompt=w.prompt, scores={"cached": True},
        )  # fmt: skip
        r.cost_usd = out.prices.cost(r)
        annotate(r)
        out.writer.put(r)
        if out.on_record:
            out.on_record(r)
    return rest


async def _send(
    plan: EvalPlan,
    pending: list[WorkItem],
    out: _Out,
    annotate: Callable[[Record], None],
    next_attempt: dict[tuple[str, str, str], int],
) -> None:
    if not pending:
        return
    t = plan.opts.timeout_s
    timeouts = Timeouts(10.0, t, t, t)
    async with open_session() as session:
        names = {w.target for w in pending}
        clients = {x.name: make_client(x, session, timeouts, out.clock) for x in plan.config.targets if x.name in names}
        runner = Runner(
            out.run_id,
            clients,
            out.writer,
            plan.opts.concurrency,
            RetryPolicy(max_retries=plan.opts.retries),
            clock=out.clock,
            on_record=out.on_record,
            price=out.prices.cost,
            annotate=annotate,
            keep_text=True,
        )
        await runner.run(pending, next_attempt=next_attempt)


def summarize_run(store: Store, run_id: str) -> EvalSummary:
    """The summary of a stored eval run, from its Records and its stored config alone."""
    info = store.run(run_id)
    if info.kind != KIND:
        raise ConfigError(f"run {info.run_id} is a {info.kind} run, not an eval")
    config = ProjectConfig.model_validate(info.config)
    graded = {s.name: s.scorer in GRADED for s in config.quality_suites}
    records = list(store.iter_records(info.run_id))
    tags = {(r.suite, r.item_id): tuple(r.scores.get("tags", ())) for r in records}
    return summarize_eval(info.run_id, records, graded, tags, [t.name for t in config.targets])
