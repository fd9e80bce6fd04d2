"""`assay gateway serve`: the OpenAI- and Anthropic-compatible gateway over the project's targets."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from assay.cli.console import run_async
from assay.cli.project import load_project

app = typer.Typer(help="The routing gateway: one endpoint in front of your providers.", no_args_is_help=True)


@app.command("serve")
def serve(
    config: Path = typer.Option(Path("assay.yaml"), "--config", "-c", help="Project file with a `gateway:` section."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless keys are set)."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port; 0 picks a free one."),
    port_file: Path | None = typer.Option(None, "--port-file", help="Write the bound port here once listening."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log breaker transitions and reloads."),
) -> int:
    """Serve the routes of `gateway:` until SIGTERM or Ctrl-C; SIGHUP reloads the project file.

    Clients use http://HOST:PORT/v1 as an OpenAI base URL, or http://HOST:PORT as an
    Anthropic one, with a route's `model`. Every upstream attempt is a Record of one
    `gateway` run (see `assay report`, `assay cost --run`).
    """
    from assay.gateway.serve import serve_gateway  # the server's imports only when serving

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    project = load_project(config)
    code: int = run_async(serve_gateway(project, config, host, port, port_file, load_project))
    return code
