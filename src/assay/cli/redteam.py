"""`assay redteam`: attack every target the same way; rates with CIs, over-refusal, risk; detector checks."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from assay.cli.console import new_table, out, refuse_with_resume, run_with_bars, show_table
from assay.cli.project import load_project, project_if_present
from assay.config import ProjectConfig, state_dir
from assay.datasets.loaders import read_jsonl
from assay.errors import ConfigError
from assay.report.formats import ci_range, fraction, pct, points
from assay.report.safety import conversation_findings
from assay.stats import summarize_stored
from assay.store import Store
from assay.suites.detectors import DETECTORS, RefusalDetector, describe_detector
from assay.suites.safety import RedteamOptions, RedteamRun, run_redteam, summarize_conversations, summarize_run
from assay.suites.safety_summary import SafetySummary

app = typer.Typer(help="Red-team every target: attack success, refusals, over-refusal, bias, risk matrix.")


def redteam_table(s: SafetySummary) -> Table:
    table = new_table(
        f"redteam {s.run_id}",
        "success %: the attack worked, among scored replies (95% CI: Wilson's, widened by the refusal detector's\n"
        "measured error where it decided); xstest*: safe prompts refused\n"
        "refused %: refused or partial; unscored, errors and filter blocks are counted apart, never as safe\n"
        "risk = rate x severity (1-5); red: over the category's limit (max %)",
    )
    table.add_column("target", style="bold", no_wrap=True)
    table.add_column("category", no_wrap=True)
    for col in ("success %", "95% CI", "refused %", "n", "unscored", "errors", "filtered", "max %", "risk"):
        table.add_column(col, justify="right", no_wrap=True)
    for t in s.targets:
        first = True
        risks = {r.category: r for r in s.risks[t]}
        for cat in s.categories:
            st, risk = s.stats[t][cat], risks[cat]
            label = cat
            if s.kinds[cat] == "over_refusal":
                rate, ci = s.over_refusal_rate(t)
                label = f"{cat}*"
            else:
                rate, ci = st.attack_success_rate, st.ci95
            style = "bold red" if risk.breach else ("green" if rate is not None else "")
            table.add_row(
                t if first else "",
                label,
                Text(pct(rate), style=style),
                ci_range(ci),
                pct(st.refusal_rate),
                str(st.n),
                Text(str(st.unscored), style="yellow" if st.unscored else "dim"),
                Text(str(st.errors), style="yellow" if st.errors else "dim"),
                Text(str(st.blocked), style="cyan" if st.blocked else "dim"),
                f"{risk.max_rate * 100:g}",
                "–" if risk.score is None else f"{risk.score:.2f}",
            )
            first = False
        score = s.scores[t]
        table.add_row("", Text("safety score", style="italic"), Text("–" if score is None else f"{score:.0f}/100",
                                                                      style="bold"))  # fmt: skip
        table.add_section()
    return table


def summary_lines(s: SafetySummary) -> list[str]:
    lines = [f"refusal detector: {describe_detector(s.detector)}"] if s.detector else []
    for t in s.targets:
        breaches = [r for r in s.risks[t] if r.breach]
        if breaches:
            names = ", ".join(f"{r.category} {r.likelihood * 100:.0f}% > {r.max_rate * 100:g}%" for r in breaches
                              if r.likelihood is not None)  # fmt: skip
            lines.append(f"  [red]✗[/] {t}: over the limit on {names}")
        else:
            lines.append(f"  [green]✓[/] {t}: every category within its limit")
    for t, (n, changed) in s.judged.items():
        if n:
            lines.append(
                f"  [dim]judge[/] reviewed {n} of {t}'s replies and changed the detectors' verdict on {changed}"
            )
    for c, worse, better in s.significant_gaps():
        lines.append(
            f"  [green]✓[/] {c.suite}: {worse} falls to attacks {points(c.diff)} pts more often than "
            f"{better}, n={c.n} ({c.a_only}/{c.b_only} discordant), Holm p={c.p_holm:.2g}"
        )
    return lines


def multi_turn_lines(turns: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One line per target and multi-turn category: how often and how soon the attack worked, and what it sent."""
    return [f"  [dim]{category}[/] {sentence}" for category, sentence in conversation_findings(turns)]


@app.callback(invoke_without_command=True)
def redteam(
    ctx: typer.Context,
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file."),
    suite: list[str] = typer.Option([], "--suite", "-s", help="Run only this safety suite (repeatable)."),
    target: list[str] = typer.Option([], "--target", "-t", help="Attack only this target (repeatable)."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Requests in flight per target."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.001, help="Total seconds allowed per request, for every target (over the config)."
    ),
    retries: int = typer.Option(3, "--retries", min=0, max=10, help="Retries of transient errors per item."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="A seeded random N items of each suite."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of --sample and of canaries."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Local dataset copies (default $ASSAY_DATA_DIR)."),
    detector: str = typer.Option("linear", "--detector", help=f"Refusal detector: {', '.join(DETECTORS)}."),
    resume: str | None = typer.Option(None, "--resume", help="Finish an interrupted run (RUN_ID or 'latest')."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Attack every target with the same prompts; attack success and refusal rates with CIs, over-refusal, risk."""
    if ctx.invoked_subcommand is not None:
        return
    db = state_dir() / "assay.db"
    if resume is not None:
        refuse_with_resume("redteam", ctx)
        _show(db, run_with_progress(project_if_present(config), RedteamOptions(), db, as_json, resume), as_json)
        return
    cfg = load_project(config)
    opts = RedteamOptions(
        suites=tuple(suite),
        targets=tuple(target),
        concurrency=concurrency,
        timeout_s=timeout,
        retries=retries,
        sample=sample,
        seed=seed,
        data_dir=str(data_dir) if data_dir else None,
        detector=detector,
    )
    _show(db, run_with_progress(cfg, opts, db, as_json), as_json)


def _show(db: Path, result: RedteamRun, as_json: bool) -> None:
    with Store(db) as store:
        summary = summarize_run(store, result.run_id)
        traffic = summarize_stored(store, result.run_id)
        turns = summarize_conversations(store, result.run_id) if result.plan.conversations else {}
    if as_json:
        doc = summary.to_json()
        doc["summaries"] = {n: s.to_json() for n, s in traffic.items()}  # its traffic, as a probe reports it
        if turns:
            doc["multi_turn"] = turns
        sys.stdout.write(orjson.dumps(doc).decode() + "\n")
        return
    show_table(redteam_table(summary))
    for line in summary_lines(summary) + multi_turn_lines(turns):
        out.print(line, highlight=False)
    out.print(f"[dim]risk matrix and details:[/] assay report {result.run_id}")


def run_with_progress(
    cfg: ProjectConfig | None,
    opts: RedteamOptions,
    db: Path,
    quiet: bool = False,
    resume: str | None = None,
    hint: str | None = None,
) -> RedteamRun:
    """Run (or resume) a red-team with a live bar per target; on Ctrl-C say how to resume."""
    return run_with_bars(
        lambda on_start, on_record: run_redteam(cfg, opts, db, resume=resume, on_record=on_record, on_start=on_start),
        "redteam",
        quiet,
        resume_hint=hint,
    )


LABELS = {"refused": 1, "partial": 1, "complied": 0}


def read_labels(path: Path) -> list[tuple[str, str, int]]:
    """(prompt, response, 1 = refusal) rows of a CSV or JSONL file; errors name the line."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such labels file")
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".jsonl":
        rows = list(read_jsonl(path))
    elif path.suffix.lower() == ".csv":
        text = path.read_text(encoding="utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        missing = {"prompt", "response", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}; need prompt, response, label")
        rows = [(reader.line_num, dict(r)) for r in reader]
    else:
        raise ConfigError(f"{path}: expected a .csv or .jsonl file with columns prompt, response, label")
    out_rows = []
    for n, row in rows:
        label = str(row.get("label", "")).strip().lower()
        if label not in LABELS:
            raise ConfigError(f"{path}:{n}: label must be refused, partial or complied (got {row.get('label')!r})")
        if not isinstance(row.get("response"), str) or not row["response"].strip():
            raise ConfigError(f"{path}:{n}: `response` must be a non-empty reply (an empty one says nothing)")
        out_rows.append((str(row.get("prompt") or ""), row["response"], LABELS[label]))
    if not out_rows:
        raise ConfigError(f"{path}: no labelled rows")
    return out_rows


def agreement(truth: list[int], pred: list[int]) -> dict[str, float | int | None]:
    """Accuracy, precision, recall (refusal positive) and Cohen's kappa of predictions against labels."""
    n = len(truth)
    tp = sum(t and p for t, p in zip(truth, pred, strict=True))
    fp = sum(p and not t for t, p in zip(truth, pred, strict=True))
    fn = sum(t and not p for t, p in zip(truth, pred, strict=True))
    tn = n - tp - fp - fn
    acc = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    kappa = (acc - expected) / (1 - expected) if expected < 1 else None
    return {
        "n": n,
        "accuracy": acc,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "kappa": kappa,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


@app.command("validate-detector")
def validate_detector(
    labels: Path = typer.Option(..., "--labels", help="CSV or JSONL with prompt, response, label."),
    detector: str = typer.Option("linear", "--detector", help=f"Which refusal detector: {', '.join(DETECTORS)}."),
    rules_only: bool = typer.Option(False, "--rules-only", help="Same as --detector rules."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Measure the refusal detector against human labels (refusal is the positive class; partial counts)."""
    rows = read_labels(labels)
    det = RefusalDetector("rules" if rules_only else detector)
    verdicts = det.classify([p for p, _, _ in rows], [r for _, r, _ in rows])
    pred = [int(v.label != "complied") for v in verdicts]
    stats = agreement([y for _, _, y in rows], pred)
    if as_json:
        keys = ("n", "accuracy", "precision", "recall", "kappa")
        doc = {k: stats[k] for k in keys} | {
            "detector": det.name,
            "confusion": {k: stats[k] for k in ("tp", "fp", "fn", "tn")},
        }
        sys.stdout.write(orjson.dumps(doc).decode() + "\n")
        return
    table = new_table(
        f"refusal detector vs {labels.name}", f"detector: {det.describe()}; refusal (and partial) is positive"
    )
    for col in ("n", "accuracy", "precision", "recall", "Cohen's kappa", "TP / FP / FN / TN"):
        table.add_column(col, justify="right")
    figures = [fraction(stats[k]) for k in ("accuracy", "precision", "recall", "kappa")]
    table.add_row(str(stats["n"]), *figures, f"{stats['tp']} / {stats['fp']} / {stats['fn']} / {stats['tn']}")
    out.print(table)
