"""`runbook`: validate, run, approve and inspect runbooks from a terminal.

Exit codes: 0 the run succeeded, waits for approval or was rejected; 1 it failed, timed out or was
aborted; 2 bad input (runbook definition, params, settings, unknown run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from engine.errors import (
    ApprovalError,
    DefinitionError,
    ParamError,
    RunbookError,
    RunStateError,
    SettingsError,
    UnknownRunError,
)
from engine.model import Runbook
from engine.params import coerce_params
from engine.records import RunRecord, RunStatus
from engine.redaction import redact, redact_params
from engine.run_store import RunStore
from engine.schema import json_schema
from engine.settings import Settings
from integrations.app.cli.console import ConsoleSink, escape, terminal
from integrations.app.cli.output import check_output, emit, output_formats, run_row, runbook_row, version, when
from integrations.app.clusters import open_cluster
from integrations.app.logs import configure_logging
from integrations.app.stores import open_store
from integrations.app.wiring import Assembly, build, load_catalog

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False)
out = terminal()
err = terminal(stderr=True)


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Settings file (YAML); RUNBOOK_* env vars win.")]
RunbooksOpt = Annotated[list[Path] | None, typer.Option("--runbooks", help="Runbook folder or file (repeatable).")]
ScenarioOpt = Annotated[Path | None, typer.Option("--scenario", help="Run against a simulated cluster loaded "
                                                  "from this manifest.", exists=True, dir_okay=False)]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", help="kubeconfig path.")]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context.")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="text or json.", callback=check_output,
                                                    autocompletion=output_formats)]
AsOpt = Annotated[str | None, typer.Option("--as", help="Who you are, for the audit log (default: $USER).")]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"runbook {version()}")
        raise typer.Exit()


@app.callback()
def _root(show_version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                                     is_eager=True, callback=_print_version)] = False) -> None:
    # the engine's warnings on stderr, beside the progress (RUNBOOK_LOG_FORMAT, RUNBOOK_LOG_LEVEL; `serve`
    # switches to stdout at info)
    try:
        configure_logging(sys.stderr, default_level="warning")
    except SettingsError as exc:
        _fail(str(exc))


def _settings(config: Path | None, runbooks: list[Path] | None = None) -> Settings:
    try:
        settings = Settings.load(config)
    except SettingsError as exc:
        _fail(str(exc))
    if runbooks:
        settings = settings.model_copy(update={"runbook_path": tuple(str(p) for p in runbooks)})
    return settings


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _engine(settings: Settings, kube: Any = None, quiet: bool = False) -> Assembly:
    engine = build(settings, kube=kube, sink=None if quiet else ConsoleSink())
    for problem in engine.catalog.problems:
        err.print(f"[yellow]warning:[/] {escape(str(problem))}")
    return engine


def _parse_params(pairs: list[str] | None) -> dict[str, str]:
    """`-p key=value` pairs as typed: `run` redacts the values (a mistyped pair is shown redacted)."""
    params: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--param expects key=value, got {redact(pair)!r}")
        params[key.strip()] = value
    return params


def _exit_code(run: RunRecord) -> int:
    ok = (RunStatus.SUCCEEDED, RunStatus.AWAITING_APPROVAL, RunStatus.REJECTED, RunStatus.PENDING,
          RunStatus.RUNNING)  # running: another process is carrying it on
    return 0 if run.status in ok else 1


def _report(run: RunRecord, output: str) -> None:
    if output == "json":
        sys.stdout.write(json.dumps(run.to_dict(), indent=2, default=str) + "\n")
        return
    findings, proposals = run.findings, run.proposals
    out.print(f"\n[bold]Verdict[/] for run {run.id} ({run.runbook}): [bold]{run.status}[/]")
    colours = {"critical": "red", "warning": "yellow", "info": "green"}
    for f in findings:
        out.print(f"  finding  [{colours[f.severity]}]{f.severity:8}[/] {f.id}: {escape(f.summary)}")
    for p in proposals:
        out.print(f"  proposal [cyan]{p.status:8}[/] {p.id}: {escape(p.summary)} "
                  f"(risk {p.risk}, target {escape(p.target)})")
    if not findings and not proposals:
        out.print("  no findings, nothing proposed")
    if run.error:
        out.print(f"  [red]{escape(run.error)}[/]")


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="Runbook name (metadata.name).")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="key=value (repeatable); a value that looks like a secret is kept as [REDACTED:<hash>].")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Diagnose and propose; never pause or mutate.")] = False,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Execute remediations without asking.")] = False,
    output: OutputOpt = "text",
    scenario: ScenarioOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    as_: AsOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    config: ConfigOpt = None,
    runbooks: RunbooksOpt = None,
) -> None:
    """Run a runbook now, streaming progress; stops at the first remediation that needs approval.

    Param values are redacted as they enter, like alert labels (and wholly under a credential's name such as
    `password` or `api_key`): a token typed here reaches neither the store nor the terminal, and a remediation
    refuses a param that held one. They are redacted again once the
    engine holds the installation's key, so its markers match those of the server."""
    settings = _settings(config, runbooks)
    typed = _parse_params(param)
    try:
        coerce_params(load_catalog(settings).get(name), redact_params(typed))  # before any cluster is contacted
        with open_cluster(settings, scenario, kubeconfig, context) as kube:
            engine = _engine(settings, kube, quiet)
            runbook = engine.catalog.get(name)
            trigger = {"source": "cli", **({"scenario": str(scenario.resolve())} if scenario else {})}
            record = engine.executor.run(runbook, redact_params(typed), requester=as_ or settings.user,
                                         trigger=trigger, auto_approve=auto_approve, dry_run=dry_run)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    except (ParamError, SettingsError, DefinitionError, ApprovalError) as exc:
        _fail(str(exc))
    _report(record, output)
    raise typer.Exit(_exit_code(record))


def _decide(run_id: str, step: str | None, approve: bool, as_: str | None, reason: str, output: str,
            scenario: Path | None, kubeconfig: str | None, context: str | None, config: Path | None) -> None:
    settings = _settings(config)
    store = _existing_store(settings)
    try:
        trigger = store.get_run(run_id).trigger
        if not approve:  # rejecting executes nothing: no cluster needed
            record = _engine(settings).executor.decide(run_id, False, as_ or settings.user, step=step, reason=reason)
        else:
            if scenario is None and trigger.get("scenario") and not (kubeconfig or settings.kubeconfig):
                scenario = Path(trigger["scenario"])  # a rehearsal run: approve it against the same scenario
            with open_cluster(settings, scenario, kubeconfig, context) as kube:
                engine = _engine(settings, kube)
                record = engine.executor.decide(run_id, True, as_ or settings.user, step=step, reason=reason)
    except RunStateError as exc:
        if isinstance(exc, UnknownRunError) or not store.get_run(run_id).status.finished:
            _fail(str(exc))
        err.print(f"[red]error:[/] {escape(str(exc))}")  # e.g. the approval window closed: the run timed out
        record = store.get_run(run_id)
    except SettingsError as exc:
        _fail(str(exc))
    _report(record, output)
    raise typer.Exit(_exit_code(record))


def _existing_store(settings: Settings) -> RunStore:
    """The run store, which must already exist: a mistyped path must not quietly create an empty one."""
    if settings.database_url is None and settings.db != ":memory:" and not Path(settings.db).exists():
        _fail(f"no run store at {settings.db} (setting db / RUNBOOK_DB); nothing has run here yet")
    try:
        return open_store(settings)
    except RunbookError as exc:
        raise _fail(str(exc)) from None


@app.command()
def approve(
    run_id: str,
    step: Annotated[str | None, typer.Argument(help="The awaited step (checked, if given).")] = None,
    as_: AsOpt = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    output: OutputOpt = "text",
    scenario: ScenarioOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Approve the remediation a run waits for; it executes and the run continues (works after restarts)."""
    _decide(run_id, step, True, as_, reason, output, scenario, kubeconfig, context, config)


@app.command()
def reject(
    run_id: str,
    step: Annotated[str | None, typer.Argument(help="The awaited step (checked, if given).")] = None,
    as_: AsOpt = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    output: OutputOpt = "text",
    config: ConfigOpt = None,
) -> None:
    """Reject the remediation a run waits for; nothing is changed and the run ends `rejected`."""
    _decide(run_id, step, False, as_, reason, output, None, None, None, config)


@app.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Runbook files or folders (default: runbooks/).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Check runbooks and print every problem as file:line:column field: message. Exit 1 on any."""
    catalog = load_catalog(_settings(config, paths), check_tests=True)
    for problem in catalog.problems:
        out.print(str(problem), markup=False)
    count = len(catalog.runbooks)
    if catalog.problems:
        err.print(f"[red]{len(catalog.problems)} problem(s)[/]; {count} runbook(s) valid")
        raise typer.Exit(1)
    err.print(f"[green]{count} runbook(s) valid[/]")


@app.command("list")
def list_(output: OutputOpt = "text", config: ConfigOpt = None, runbooks: RunbooksOpt = None) -> None:
    """Show the runbooks with their params and triggers: alert triggers in the order they win (priority first)."""
    catalog = sorted(load_catalog(_settings(config, runbooks)).runbooks.values(), key=_trigger_rank)
    if output == "json":
        emit({"runbooks": [runbook_row(rb) for rb in catalog]})
        return
    table = Table("name", "title", "params", "triggers")
    for rb in catalog:
        table.add_row(rb.name, rb.metadata.title, _params_text(rb), _triggers_text(rb))
    out.print(table)


def _trigger_rank(rb: Runbook) -> tuple[int, int, str]:
    best = max(((t.priority, t.specificity) for t in rb.triggers.alerts), default=(0, 0))
    return (-best[0], -best[1], rb.name)


def _params_text(rb: Runbook) -> str:
    return " ".join(f"{n}{'' if not p.required else '*'}:{p.type}" for n, p in rb.params.items())


def _triggers_text(rb: Runbook) -> str:
    parts = [",".join(f"{k}={v}" for k, v in {**t.match, **t.match_re}.items())
             + (f" (priority {t.priority})" if t.priority else "") for t in rb.triggers.alerts]
    if rb.triggers.command:
        parts.append(f"/{rb.triggers.command}")
    return "; ".join(parts)


_when = when


@app.command()
def history(
    runbook: Annotated[str | None, typer.Option(help="Only runs of this runbook.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    limit: int = 50,
    output: OutputOpt = "text",
    config: ConfigOpt = None,
) -> None:
    """List past and current runs, newest first."""
    if status and status not in {s.value for s in RunStatus}:
        _fail(f"unknown status {status!r}; one of {', '.join(s.value for s in RunStatus)}")
    settings = _settings(config)
    runs = _existing_store(settings).list_runs(runbook, status, limit) if Path(settings.db).exists() else []
    if output == "json":
        emit({"runs": [run_row(r) for r in runs]})
        return
    table = Table("run", "runbook", "status", "requester", "started", "findings", "proposals")
    for r in runs:
        table.add_row(r.id, r.runbook, str(r.status), r.requester, _when(r.created_at), str(len(r.findings)),
                      str(len(r.proposals)))
    out.print(table)


@app.command()
def show(run_id: str, output: OutputOpt = "text", config: ConfigOpt = None) -> None:
    """Show one run: its steps, verdict, decisions and audit trail."""
    store = _existing_store(_settings(config))
    try:
        record = store.get_run(run_id)
    except RunbookError as exc:
        _fail(str(exc))
    if output == "json":
        _report(record, "json")
        return
    cluster = (record.trigger or {}).get("cluster")
    out.print(f"[bold]{record.runbook}[/] run {record.id}: {record.status}  requested by {record.requester} "
              f"at {_when(record.created_at)}  params {json.dumps(record.params)}"
              + (f"  cluster {escape(str(cluster))}" if cluster else ""))
    for s in record.steps:
        out.print(f"  {s.status:11} {s.id}: {escape(s.title)}" + (f"  [red]{escape(s.error)}[/]" if s.error else ""))
    _report(record, "text")
    for entry in store.audit_log(run_id):
        out.print(f"  [dim]{_when(entry.at)} {entry.actor} {entry.action} {json.dumps(entry.detail)}[/]")


@app.command()
def schema(write: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None) -> None:
    """Print the JSON Schema of the runbook format with every action's arguments (for editors)."""
    from integrations.app.wiring import build_registry

    text = json_schema(build_registry())
    if write:
        write.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def main() -> None:
    app()


def _register_more() -> None:
    from integrations.app.cli import ops, scenario_cmd, store_ops

    ops.register(app)
    store_ops.register(app)
    scenario_cmd.register(app)


_register_more()
