"""`assay simulator serve`: simulated vendors for demos, CI and chaos tests of your own app."""

from __future__ import annotations

from pathlib import Path

import typer

from assay.cli.console import run_async
from assay.simulator import builtin_spec, load_spec, serve_forever

app = typer.Typer(help="The provider simulator.", no_args_is_help=True)


@app.command("serve")
def serve(
    port: int = typer.Option(
        8001,
        "--port",
        min=0,
        max=65535,
        help="First vendor's port; the next vendors take the next ports. 0: any free ports.",
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    seed: int = typer.Option(0, "--seed", help="Same seed, same behaviour request by request."),
    profile: Path | None = typer.Option(
        None, "--profile", help="Vendor profiles (YAML); default: the three demo vendors."
    ),
    vendor: list[str] = typer.Option([], "--vendor", help="Serve only this vendor (repeatable)."),
) -> None:
    """Serve simulated vendors (OpenAI and Anthropic APIs) until Ctrl-C.

    Prints one JSON line with each vendor's URL once listening. OpenAI clients
    use URL/v1 as base URL; Anthropic clients use URL.
    """
    spec = load_spec(profile) if profile else builtin_spec()
    spec = spec.model_copy(update={"seed": seed})
    run_async(serve_forever(spec, host, port, vendor or None))
