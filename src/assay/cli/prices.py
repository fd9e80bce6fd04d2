"""`assay prices`: look up and refresh the price catalog."""

from __future__ import annotations

import sys

import orjson
import typer
from rich.table import Table

from assay.catalog import LITELLM_URL, ModelPrice, load_catalog, update_catalog
from assay.cli.console import new_table, out, show_table
from assay.config import state_dir

app = typer.Typer(help="Model list prices (USD per million tokens): show, search, update.", no_args_is_help=True)


_CAPTION = "USD per million tokens; tiers: long-context rates (in/out) once input exceeds the threshold"


def _rate(v: object) -> str:
    return "–" if v is None else f"${float(v):,.4g}"  # type: ignore[arg-type]


def price_table(prices: list[ModelPrice]) -> Table:
    table = new_table(caption=_CAPTION)
    table.caption_justify = "left"
    columns = ("model", "in", "out", "cache rd", "cache wr", "batch in/out", "context", "tiers")
    width = max((len(p.name) for p in prices), default=10)
    for col in columns:
        if col == "model":
            table.add_column(col, no_wrap=True, min_width=width)
        elif col == "tiers":
            table.add_column(col, overflow="fold", min_width=5)
        else:
            table.add_column(col, justify="right", no_wrap=True)
    for p in prices:
        tiers = "; ".join(f">{t.above_input_tokens // 1000}k: {_rate(t.input)}/{_rate(t.output)}" for t in p.tiers)
        table.add_row(
            p.name,
            _rate(p.input),
            _rate(p.output),
            _rate(p.cached_input),
            _rate(p.cache_write),
            f"{_rate(p.batch_input)}/{_rate(p.batch_output)}" if p.batch_input is not None else "–",
            f"{p.context_window:,}" if p.context_window else "–",
            tiers or "–",
        )
    return table


@app.command("show")
def show(
    models: list[str] = typer.Argument(..., help="Catalog names, e.g. gpt-4o-mini claude-haiku-4-5."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Prices of the named models."""
    catalog = load_catalog(state_dir())
    prices = [catalog.require(m) for m in models]
    if as_json:
        sys.stdout.write(orjson.dumps({p.name: p.to_json() for p in prices}).decode() + "\n")
        return
    show_table(price_table(prices))
    out.print(f"[dim]catalog: {catalog.source}, built {catalog.built}[/]")


@app.command("search")
def search(text: str = typer.Argument(..., help="Part of a model name.")) -> None:
    """Catalog entries whose name contains TEXT."""
    catalog = load_catalog(state_dir())
    names = catalog.search(text, limit=40)
    if not names:
        out.print(f"no catalog entry contains {text!r}")
        raise typer.Exit(1)
    show_table(price_table([catalog.models[n] for n in names]))


@app.command("update")
def update(
    source: str | None = typer.Option(
        None, "--from", help=f"LiteLLM price map: a file or URL (default {LITELLM_URL})."
    ),
) -> None:
    """Refresh the catalog from LiteLLM's price map; cached under $ASSAY_HOME/catalog."""
    catalog = update_catalog(state_dir(), source)
    out.print(f"[green]ok[/] {len(catalog.models):,} models from {source or LITELLM_URL} → {catalog.path}")
