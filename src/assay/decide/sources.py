"""Evidence from stored runs: which runs a decision reads, and their figures through each kind's own summary.

Every figure comes from the summary the run's own command and scorecard section show
(`suites.traffic.run_summaries`, the eval and red-team summaries, `economics.cost_report`),
so a number in the decision is the number on the rest of the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from assay.catalog import PriceBook, load_catalog
from assay.config import ProjectConfig, state_dir
from assay.config.decision import TRAFFIC_KINDS
from assay.config.loading import Problem
from assay.decide.decision import Decision, decide
from assay.decide.evidence import Evidence
from assay.economics import Measured, cost_report
from assay.errors import AssayError, ConfigError
from assay.store import RunInfo, Store
from assay.suites.traffic import run_summaries

__all__ = ["RUN_KINDS", "decide_runs", "evidence_from_runs", "missing_metric_problems", "needed_kinds", "resolve_runs"]

RUN_KINDS = (*TRAFFIC_KINDS, "eval", "redteam")


def needed_kinds(config: ProjectConfig) -> list[str]:
    """The run kinds the criteria read, in RUN_KINDS order."""
    assert config.decision is not None
    wanted = {c.metric.split(".", 1)[0] for c in config.decision.criteria}
    return [k for k in RUN_KINDS if k in wanted]


def resolve_runs(store: Store, specs: Sequence[str], kinds: Sequence[str] = RUN_KINDS) -> dict[str, RunInfo]:
    """Run ids, `latest` (the newest run of each of `kinds`) or `latest:KIND`; one run per kind."""
    out: dict[str, RunInfo] = {}
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        if spec == "latest":
            infos = []
            for kind in kinds:
                try:
                    infos.append(store.run("latest", kind=kind))
                except ConfigError:
                    continue  # reported below as the criterion without a figure, at its line
        elif spec.startswith("latest:"):
            kind = spec.split(":", 1)[1]
            if kind not in RUN_KINDS:
                raise ConfigError(f"--runs {spec}: unknown kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")
            infos = [store.run("latest", kind=kind)]
        else:
            infos = [store.run(spec)]
        for info in infos:
            if info.kind not in RUN_KINDS:
                raise ConfigError(f"run {info.run_id} is a {info.kind} run; a decision reads {', '.join(RUN_KINDS)}")
            if info.kind in out and out[info.kind].run_id != info.run_id:
                raise ConfigError(
                    f"two {info.kind} runs given ({out[info.kind].run_id} and {info.run_id}); "
                    f"a decision reads one run of each kind"
                )
            out[info.kind] = info
    return out


def evidence_from_runs(store: Store, runs: dict[str, RunInfo], config: ProjectConfig) -> Evidence:
    """Every figure of the runs, the cost analysis of `config`'s workload, and the vendors' evidence."""
    order = [t.name for t in config.targets]
    ev = Evidence(targets=[])
    traffic = None
    for kind in TRAFFIC_KINDS:
        if kind in runs:
            info = runs[kind]
            summaries = run_summaries(store, info.run_id)
            ev.add_traffic(kind, info.run_id, summaries, config)
            traffic = traffic or summaries
    if "eval" in runs:
        from assay.suites.quality import summarize_run as summarize_eval_run

        ev.add_eval(runs["eval"].run_id, summarize_eval_run(store, runs["eval"].run_id))
    if "redteam" in runs:
        from assay.suites.safety import summarize_run as summarize_redteam_run

        ev.add_redteam(runs["redteam"].run_id, summarize_redteam_run(store, runs["redteam"].run_id))
    if config.workload is not None:
        ev.add_cost(_costs(config, {n: Measured.from_summary(s) for n, s in (traffic or {}).items()}))
    ev.targets = [t for t in order if t in ev.targets] + [t for t in ev.targets if t not in order]
    if not runs:  # no runs: the decision is over the config's targets (a table or vendor evidence alone)
        ev.targets = order
    ev.add_vendor(config.model_copy(update={"targets": [t for t in config.targets if t.name in ev.targets]}))
    return ev


def _costs(config: ProjectConfig, measured: dict[str, Measured]) -> dict[str, dict[str, object]]:
    """The cost section's figures: declared tokens per turn, the targets that have a price."""
    book, missing = PriceBook.known(config.targets, load_catalog(state_dir()))
    priced = config.model_copy(update={"targets": [t for t in config.targets if t.name not in missing]})
    if not priced.targets:
        return {}
    try:
        book = PriceBook.for_targets(priced.targets, load_catalog(state_dir()))
        report = cost_report(priced, book, measured, measured_tokens=False)
    except AssayError:
        return {}
    return {n: t.to_json() for n, t in report.targets.items()}


def missing_metric_problems(config: ProjectConfig, ev: Evidence, runs: dict[str, RunInfo]) -> list[Problem]:
    """Each criterion whose metric no target has a figure for, with what the runs do hold."""
    assert config.decision is not None
    problems: list[Problem] = []
    given = ", ".join(f"{k} {i.run_id}" for k, i in runs.items()) or "no runs"
    for i, c in enumerate(config.decision.criteria):
        if any(m.value is not None or m.raw is not None for m in ev.metrics.get(c.metric, {}).values()):
            continue
        kind = c.metric.split(".", 1)[0]
        if kind in RUN_KINDS and kind not in runs:
            why = f"no {kind} run was given or found ({given}); run `assay {kind}` or pass --runs"
        elif kind == "cost":
            why = "the cost analysis needs a `workload:` section and priced targets"
        else:
            near = [m for m in ev.metric_names() if m.startswith(kind + ".")][:8]
            why = f"the runs given ({given}) hold no such figure" + (
                f"; they have e.g. {', '.join(near)}" if near else ""
            )
        problems.append((("decision", "criteria", i, "metric"), f"{c.metric}: {why} (`assay decide --list-metrics`)"))
    return problems


def decide_runs(store: Store, specs: Sequence[str], config: ProjectConfig) -> tuple[Decision, Evidence]:
    """The decision of `config` over the runs `specs` names; a ConfigError names any criterion without a figure."""
    if config.decision is None:
        raise ConfigError("the config has no `decision:` section (criteria, weights, must-haves); see docs/DECIDE.md")
    runs = resolve_runs(store, specs, needed_kinds(config))
    ev = evidence_from_runs(store, runs, config)
    problems = missing_metric_problems(config, ev, runs)
    if problems:
        raise ConfigError("; ".join(msg for _, msg in problems))
    return decide(config.decision, ev), ev
