"""`runbook scenario capture`: write a scenario from a live cluster, to rehearse a real incident offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from engine.errors import RunbookError
from engine.settings import Settings
from integrations.app.capture import Capture, CaptureError, render
from integrations.app.cli.console import terminal

err = terminal(stderr=True)
scenario = typer.Typer(help="Scenarios for the simulated cluster: capture one from a real cluster.",
                       no_args_is_help=True)


def _fail(problem: object) -> NoReturn:
    err.print(f"[red]error:[/] {escape(str(problem))}")
    raise typer.Exit(2)


@scenario.command()
def capture(
    targets: Annotated[list[str] | None, typer.Argument(
        help="KIND/NAME objects to capture with what they own and select (default: the whole namespace).")] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace to capture.")] = "default",
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="kubeconfig path.")] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context.")] = None,
    tail: Annotated[int, typer.Option("--tail", min=0, max=1000, help="Log lines kept per container.")] = 50,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (YAML).")] = None,
) -> None:
    """Objects with their status, Secrets as metadata only, no managedFields, events and log tails; values
    redacted like everything the engine shows. `runbook simulate FILE` then serves it as it was."""
    from integrations.app.clusters import open_cluster

    try:
        settings = Settings.load(config)
        with open_cluster(settings, None, kubeconfig, context) as kube:
            objects = Capture(kube, namespace, tail).run(targets or [])
            text = render(objects, kube.now(), f"context {context or settings.context or '(current)'}, "
                                               f"namespace {namespace}")
    except (CaptureError, RunbookError) as exc:
        _fail(exc)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        err.print(f"{len(objects)} objects written to {escape(str(output))}")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(scenario, name="scenario")
