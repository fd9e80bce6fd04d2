"""`assay decide` (the recommendation, its uncertainty and sensitivity) and `assay gate` (the same, as a CI check)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson
import typer
import yaml
from rich.table import Table
from rich.text import Text

from assay.cli.console import new_table, out, show_table
from assay.cli.project import load_project
from assay.config import ProjectConfig, load_config, state_dir
from assay.config.gateway import Route
from assay.decide import Decision, Evidence, decide
from assay.decide.evidence import metric_catalogue
from assay.decide.sources import evidence_from_runs, missing_metric_problems, needed_kinds, resolve_runs
from assay.errors import ConfigError
from assay.report.formats import pct_sign, rank_range, unit_interval, value_in_unit
from assay.report.verdict import describe
from assay.store import Store

ConfigOpt = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file with a `decision:` section.")
RunsOpt = typer.Option(
    None,
    "--runs",
    help="RUN_ID,RUN_ID,... or 'latest' (the newest run of each kind the criteria read), "
    "or latest:KIND; default: decision.runs, else latest.",
)
ScoresOpt = typer.Option(
    None, "--scores", help="A CSV of evidence gathered elsewhere: target,criterion,value[,low,high]."
)
JsonOpt = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")


def gather(config_path: Path, runs: str | None, scores: Path | None) -> tuple[ProjectConfig, Evidence]:
    """The config (re-checked against the evidence, so a metric no run holds is reported at its line) and the
    evidence of the runs and the table."""
    cfg = load_project(config_path)
    if cfg.decision is None:
        raise ConfigError(f"{config_path}: no `decision:` section; add criteria (see docs/DECIDE.md)")
    specs = [s for s in (runs.split(",") if runs else cfg.decision.runs or ([] if scores else ["latest"]))]
    with Store(state_dir() / "assay.db") as store:
        infos = resolve_runs(store, specs, needed_kinds(cfg)) if specs else {}
        ev = evidence_from_runs(store, infos, cfg)
    if scores is not None:
        table = Evidence.from_table(scores, {c.name: c.metric for c in cfg.decision.criteria})
        unknown = [t for t in table.targets if t not in {t.name for t in cfg.targets}]
        if unknown:
            raise ConfigError(
                f"{scores}: target {unknown[0]!r} is not one of the config's targets "
                f"({', '.join(t.name for t in cfg.targets)})"
            )
        ev.merge(table)
        ev.targets = [t.name for t in cfg.targets if t.name in ev.targets]
    load_config(config_path, checks=[lambda c: missing_metric_problems(c, ev, infos)])
    return cfg, ev


def decide_cmd(
    config: Path = ConfigOpt,
    runs: str | None = RunsOpt,
    scores: Path | None = ScoresOpt,
    as_json: bool = JsonOpt,
    list_metrics: bool = typer.Option(False, "--list-metrics", help="Print every metric the runs hold, and stop."),
    emit_routes: Path | None = typer.Option(
        None, "--emit-routes", help="Write the `gateway.routes` block for the decision to this file ('-': stdout)."
    ),
    route_model: str = typer.Option("chat", "--route-model", help="The model name clients send, for --emit-routes."),
    route_policy: str = typer.Option(
        "fallback", "--route-policy", help="fallback (by rank) or weighted (by probability of being first)."
    ),
) -> None:
    """Gates, a weighted ranking with its probability of first place, TOPSIS, Pugh, Pareto and sensitivity."""
    if list_metrics:
        _list_metrics(config, runs, scores, as_json)
        return
    if route_policy not in ("fallback", "weighted"):
        raise ConfigError(f"--route-policy must be fallback or weighted (got {route_policy!r})")
    cfg, ev = gather(config, runs, scores)
    assert cfg.decision is not None
    decision = decide(cfg.decision, ev)
    data = decision_json(decision)
    if emit_routes is not None:
        text = routes_yaml(decision, route_model, route_policy)
        if str(emit_routes) == "-":
            sys.stdout.write(text)
        else:
            tmp = emit_routes.with_suffix(emit_routes.suffix + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(emit_routes)
            if not as_json:
                out.print(f"routes: [bold]{emit_routes}[/]")
        if str(emit_routes) == "-":
            return
    if as_json:
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
        return
    show_decision(data)


def decision_json(decision: Decision) -> dict[str, Any]:
    """The decision's figures and its sentences: what --json prints and the scorecard renders.

    The separation sentence goes under `separation_text`: `separation` holds the figures (top two, P(first),
    the sample multiple), which the scorecard reads again from this dict.
    """
    data = decision.to_json()
    words = describe(data)
    data.update(
        recommendation=words["recommendation"],
        why=words["why"],
        caveat_text=words["caveat_text"],
        separation_text=words["separation"],
    )
    return data


def show_decision(data: dict[str, Any]) -> None:
    show_table(decision_table(data))
    out.print(Text(data["recommendation"], style="bold green" if data["winner"] else "bold red"))
    for line in [data["why"], *(c["text"] for c in data["caveat_text"]), data["separation_text"] or ""]:
        if line:
            out.print(f"  {line}", highlight=False, soft_wrap=True)
    flips = [(n, s) for n, s in data["sensitivity"].items() if s["flip_at_weight"] is not None]
    if flips:
        name, s = min(flips, key=lambda kv: abs(kv[1]["flip_at_weight"] - kv[1]["weight"]))
        out.print(
            f"  nearest flip: {name}'s weight {unit_interval(s['weight'])} → {unit_interval(s['flip_at_weight'])} "
            f"makes {s['new_winner']} the winner (the other weights rescaled in proportion)",
            highlight=False,
        )
    st = data["stability"]
    if st:
        out.print(
            f"  weights perturbed ({st['draws']:,} Dirichlet draws): {data['winner']} first in "
            f"{pct_sign(st['winner_share'], 0)}",
            highlight=False,
        )


def decision_table(data: dict[str, Any]) -> Table:
    crit = data["criteria"]
    table = new_table(
        f"decision · {data['method']['normalize']}-normalised weighted sum · {data['method']['draws']:,} resamples"
    )
    for col in ("target", "gates", *[c["name"] for c in crit], "score", "P(first)", "rank", "TOPSIS", "Pareto", "Pugh"):
        table.add_column(col, justify="left" if col in ("target", "gates") else "right")
    rank = {r["target"]: r for r in data["ranking"]}
    for t in data["targets"]:
        g = data["gates"][t]
        cells = []
        for c in crit:
            v = data["values"][t][c["name"]]
            text = value_in_unit(v["value"], c["unit"])
            failed = c["name"] in g["failed"]
            cells.append(Text(text, style="red" if failed else ""))
        r = rank.get(t)
        pugh = data["pugh"].get(t)
        net = "datum" if t == data["pugh_datum"] else (f"{sum(pugh.values()):+d}" if pugh else "–")
        table.add_row(
            Text(t, style="bold" if t == data["winner"] else ""),
            Text("✓", style="green") if g["passed"] else Text("✗ " + ", ".join(g["failed"]), style="red"),
            *cells,
            unit_interval(r["score"]) if r else "–",
            pct_sign(r["p_first"], 0) if r else "–",
            rank_range(*r["rank_interval"]) if r else "–",
            f"{unit_interval(r['topsis'])} (#{r['topsis_rank']})" if r else "–",
            "✓" if t in data["pareto"] else "",
            net,
        )
    weights = ", ".join(f"{c['name']} {unit_interval(c['weight'])}" for c in crit)
    table.caption = (
        f"weights {weights}; P(first) and the 95% rank interval over resamples of every measurement; "
        f"Pareto over {', '.join(data['pareto_criteria'])}; Pugh: net +/− against {data['pugh_datum']}, "
        f"0 where not significant"
    )
    return table


def routes_yaml(decision: Decision, model: str, policy: str) -> str:
    """The `gateway.routes` block: the passing targets in rank order (fallback) or weighted by P(first)."""
    if decision.winner is None:
        raise ConfigError("no target passes every gate, so there is no route to emit")
    ranked = [r["target"] for r in decision.ranking]
    route: dict[str, Any] = {"model": model, "policy": policy, "targets": ranked}
    if policy == "weighted":
        weights = {r["target"]: round(r["p_first"], 3) for r in decision.ranking}
        if not any(weights.values()):
            weights = {ranked[0]: 1.0}
        route["weights"] = weights
    Route.model_validate(route)  # what the gateway will accept
    head = (
        f"# Written by `assay decide --emit-routes` from runs {', '.join(decision.runs.values()) or 'none'}:\n"
        f"# {'fallback in rank order' if policy == 'fallback' else 'weighted by probability of being first'}; "
        f"targets out on gates are left out.\n"
    )
    return head + yaml.safe_dump({"gateway": {"routes": [route]}}, sort_keys=False)


def _list_metrics(config: Path, runs: str | None, scores: Path | None, as_json: bool) -> None:
    cfg = load_project(config)
    specs = runs.split(",") if runs else (cfg.decision.runs if cfg.decision else []) or ["latest"]
    with Store(state_dir() / "assay.db") as store:
        infos = resolve_runs(store, specs)
        ev = evidence_from_runs(store, infos, cfg)
    if scores is not None:
        ev.merge(
            Evidence.from_table(scores, {c.name: c.metric for c in (cfg.decision.criteria if cfg.decision else [])})
        )
    rows = {m: {t: by[t].to_json() for t in ev.targets if t in by} for m, by in sorted(ev.metrics.items())}
    if as_json:
        sys.stdout.write(orjson.dumps({"runs": ev.runs, "metrics": rows}).decode() + "\n")
        return
    table = new_table(f"metrics in {', '.join(f'{k} {v}' for k, v in ev.runs.items()) or 'the config'}")
    for col in ("metric", "source", *ev.targets):
        table.add_column(col, justify="left" if col in ("metric", "source") else "right")
    for m, by in rows.items():
        source = next((v["source"] for v in by.values()), "")
        table.add_row(m, source, *(_short(by.get(t)) for t in ev.targets))
    show_table(table)
    missing = sorted(set(metric_catalogue(cfg)) - set(rows))
    if missing:
        out.print(
            f"[dim]not in these runs (other kinds of run hold them): {len(missing)} more, e.g. "
            f"{', '.join(missing[:6])}[/]"
        )


def _short(v: dict[str, Any] | None) -> str:
    if v is None or v["value"] is None:
        return "–"
    x = v["value"]
    return f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else str(x)


def gate(
    config: Path = ConfigOpt,
    runs: str | None = RunsOpt,
    scores: Path | None = ScoresOpt,
    choose: str | None = typer.Option(None, "--choose", help="The target CI expects to win; default decision.choose."),
    confidence: float | None = typer.Option(
        None, "--confidence", min=0.5, max=0.999, help="Least probability of first place; default decision.confidence."
    ),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here, one test case per gate."),
    as_json: bool = JsonOpt,
) -> None:
    """Exit 1 when the chosen target (or, without one, the winner) fails a must-have, is not the winner, or is
    first with less than the confidence asked for; exit 0 otherwise."""
    cfg, ev = gather(config, runs, scores)
    assert cfg.decision is not None
    decision = decide(cfg.decision, ev)
    subject = choose or cfg.decision.choose
    if subject is not None and subject not in decision.targets:
        raise ConfigError(f"--choose {subject}: not a target of this decision ({', '.join(decision.targets)})")
    need = confidence if confidence is not None else cfg.decision.confidence
    cases = gate_cases(decision, subject, need)
    failed = [c for c in cases if c[2] is not None]
    if junit is not None:
        write_junit(junit, cases)
    if as_json:
        data = decision_json(decision)
        data["gate"] = {
            "subject": subject or decision.winner,
            "confidence": need,
            "passed": not failed,
            "cases": [{"name": n, "target": t, "failure": f} for t, n, f in cases],
        }
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
    else:
        for t, name, failure in cases:
            mark = "[red]✗[/]" if failure else "[green]✓[/]"
            out.print(f"{mark} {t}: {name}" + (f" — {failure}" if failure else ""), highlight=False)
        out.print(
            f"[bold]{'gate failed' if failed else 'gate passed'}[/]: {len(cases) - len(failed)}/{len(cases)} checks"
        )
    if failed:
        raise typer.Exit(1)


def gate_cases(decision: Decision, subject: str | None, need: float) -> list[tuple[str, str, str | None]]:
    """(target, check, failure or None) for the subject's gates, its being the winner and its P(first)."""
    data = decision.to_json()
    who = subject or decision.winner
    if who is None:  # no winner and none chosen: every target's failed gates are the failures
        return [
            (t, f"must: {g['criterion']} {g['op']} {g['bound']}", _failure(g))
            for t in decision.targets
            for g in data["gates"][t]["checks"]
            if not g["passed"]
        ] or [("-", "a target passes every gate", "no target was measured")]
    cases: list[tuple[str, str, str | None]] = []
    for g in data["gates"][who]["checks"]:
        cases.append((who, f"must: {g['criterion']} {g['op']} {g['bound']}", None if g["passed"] else _failure(g)))
    winner = decision.winner
    cases.append((who, "is the winner", None if winner == who else f"the winner is {winner or 'none'}"))
    p = decision.p_first(who)
    cases.append((who, f"first with probability >= {need:g}", None if p >= need else f"first in {p:.3f} of resamples"))
    return cases


def _failure(g: dict[str, Any]) -> str:
    if g["op"] == "measured":
        return f"{g['criterion']}: not measured"
    return f"{g['criterion']}: {g['value']} against {g['op']} {g['bound']} (margin {g['margin']})"


def write_junit(path: Path, cases: list[tuple[str, str, str | None]]) -> None:
    """JUnit XML, one <testcase> per check, written whole or not at all."""
    failures = sum(1 for c in cases if c[2] is not None)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name="assay gate" tests="{len(cases)}" failures="{failures}">',
        f'  <testsuite name="assay gate" tests="{len(cases)}" failures="{failures}" errors="0" skipped="0">',
    ]
    for target, name, failure in cases:
        head = f"    <testcase classname={quoteattr('assay.gate.' + target)} name={quoteattr(name)}"
        if failure is None:
            lines.append(head + "/>")
        else:
            lines += [head + ">", f"      <failure message={quoteattr(failure)}/>", "    </testcase>"]
    lines += ["  </testsuite>", "</testsuites>", ""]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
