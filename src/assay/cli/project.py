"""`assay init` and `assay validate`: the project file, and how every command reads it."""

from __future__ import annotations

from pathlib import Path

import typer

from assay.catalog import PriceBook, load_catalog, price_problems
from assay.cli.console import err, out
from assay.config import (
    Check,
    ProjectConfig,
    SuiteConfig,
    example_config_text,
    load_config,
    missing_key_envs,
    state_dir,
)
from assay.datasets import BUILTIN, data_dir, load_items
from assay.datasets.safety import SAFETY_SOURCES, load_safety
from assay.errors import ConfigError
from assay.report.formats import plural
from assay.suites.scorers import reference_problems, scorer_problems


def load_project(path: Path, priced: bool = False) -> ProjectConfig:
    """The project file, validated (file:line errors otherwise).

    `priced`: every target must have a price, as cost analysis needs; the commands that only
    measure accept an unpriced target and report its cost as unknown.
    """
    catalog = load_catalog(state_dir())
    checks: list[Check] = [scorer_problems, lambda cfg: price_problems(cfg.targets, catalog, require=priced)]
    return load_config(path, checks=checks)


def project_if_present(path: Path) -> ProjectConfig | None:
    """The project file when it exists and is valid, else None: a resumed run reads its own stored config, and
    needs this one only for header values that were not stored (runner/runs.py)."""
    if not path.is_file():
        return None
    try:
        return load_project(path)
    except ConfigError:
        return None


def init(
    path: Path = typer.Argument(Path("assay.yaml"), help="Where to write the example project file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented example project file."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    path.write_text(example_config_text(), encoding="utf-8")
    out.print(f"wrote [bold]{path}[/]; check it with: assay validate -c {path}")


def dataset_problems(cfg: ProjectConfig, source: str) -> tuple[list[str], list[str]]:
    """(problems, notes) of every suite's dataset: files that do not exist or do not parse, references a
    scorer cannot use; notes say which public datasets will be downloaded on first use."""
    problems: list[str] = []
    notes: list[str] = []
    root = data_dir()
    cache = state_dir() / "datasets"
    for i, suite in enumerate(cfg.suites):
        name = suite.dataset
        if name is None:
            continue
        where = f"{source}: suites[{i}].dataset"
        builtin = name in BUILTIN or name in SAFETY_SOURCES
        local = name.startswith("demo-") or (root is not None and (root / name).exists()) or (cache / name).exists()
        if builtin and not local:  # never download here: say it will be
            notes.append(f"{where}: {name} has no local copy (set ASSAY_DATA_DIR); it is downloaded on first use")
            continue
        try:
            if isinstance(suite, SuiteConfig):
                items = load_items(name, root, cache, include_flagged=suite.include_flagged)
                problems += [f"{where}: {p}" for p in reference_problems(suite.scorer, items)[:5]]
            else:
                load_safety(name, root, cache)
        except ConfigError as e:
            problems.append(f"{where}: {e}")
    return problems, notes


def validate(
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file to check."),
) -> None:
    """Check a project file: every problem with file, line and field; datasets, prices and keys too."""
    cfg = load_project(config)
    problems, notes = dataset_problems(cfg, str(config))
    if problems:
        raise ConfigError(f"{config}: {len(problems)} problem(s) with the suites' datasets", problems)
    for note in notes:
        err.print(f"[dim]note:[/] {note}", highlight=False)
    for warning in missing_key_envs(cfg):
        err.print(f"[yellow]warning:[/] {warning} (needed to run against it)", highlight=False)
    _, unpriced = PriceBook.known(cfg.targets, load_catalog(state_dir()))
    for name, why in unpriced.items():
        err.print(f"[yellow]warning:[/] target {name!r} has no price ({why}); cost and tco need one", highlight=False)
    names = ", ".join(t.name for t in cfg.targets)
    out.print(f"[green]ok[/] {config}: {plural(len(cfg.targets), 'target')}: {names}", highlight=False)
