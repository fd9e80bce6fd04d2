"""`assay init` and `assay validate`: the project file."""

from __future__ import annotations

from pathlib import Path

import typer

from assay.cli.console import err, out
from assay.config import example_config_text, load_config, missing_key_envs
from assay.errors import ConfigError


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
    cfg = load_config(config)
    for warning in missing_key_envs(cfg):
        err.print(f"[yellow]warning:[/] {warning} (needed to run against it)")
    names = ", ".join(t.name for t in cfg.targets)
    out.print(f"[green]ok[/] {config}: {len(cfg.targets)} target(s): {names}")
