"""`assay init` and `assay validate`: the project file."""

from __future__ import annotations

from pathlib import Path

import typer

from assay.catalog import load_catalog, price_problems
from assay.cli.console import err, out
from assay.config import ProjectConfig, example_config_text, load_config, missing_key_envs, state_dir
from assay.errors import ConfigError


def load_project(path: Path) -> ProjectConfig:
    """The project file, validated, with every target's price found (file:line errors otherwise)."""
    catalog = load_catalog(state_dir())
    return load_config(path, checks=[lambda cfg: price_problems(cfg.targets, catalog)])


def init(
    path: Path = typer.Argument(Path("assay.yaml"), help="Where to write the example project file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented example project file."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    path.write_text(example_config_text(), encoding="utf-8")
    out.print(f"wrote [bold]{path}[/]; check it with: assay validate -c {path}")


def validate(
    config: Path = typer.Option(Path("assay.yaml"), "-c", "--config", help="Project file to check."),
) -> None:
    """Check a project file; report every problem with file, line and field."""
    cfg = load_project(config)
    for warning in missing_key_envs(cfg):
        err.print(f"[yellow]warning:[/] {warning} (needed to run against it)")
    names = ", ".join(t.name for t in cfg.targets)
    out.print(f"[green]ok[/] {config}: {len(cfg.targets)} target(s): {names}")
