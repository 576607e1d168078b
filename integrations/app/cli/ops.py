"""CLI commands around the engine: rehearse runbooks, simulate a cluster, cancel, audit (serve: cli/serve.py)."""

from __future__ import annotations

import contextlib
import inspect
import json
import signal
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from engine.actions import ActionKind, ActionRegistry
from engine.errors import RunbookError
from engine.hints import did_you_mean
from engine.settings import Settings
from integrations.app.cli.console import escape, terminal
from integrations.app.cli.output import action_row, audit_row, check_output, emit, output_formats, when
from integrations.app.clusters import SIM_TOKEN
from integrations.app.rehearsal import collect, rehearse
from integrations.app.stores import open_store
from integrations.app.wiring import build, build_registry

out = terminal()
err = terminal(stderr=True)
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="text or json.", callback=check_output,
                                                    autocompletion=output_formats)]


def _fail(problem: object) -> NoReturn:
    err.print(f"[red]error:[/] {escape(str(problem))}")
    raise typer.Exit(2)


def _registry(config: Path | None) -> ActionRegistry:
    """The actions, with the plug-ins the settings name."""
    try:
        return build_registry(plugins=_settings(config).plugins)
    except RunbookError as exc:
        _fail(exc)


def _settings(config: Path | None) -> Settings:
    try:
        return Settings.load(config)
    except RunbookError as exc:
        _fail(exc)


def test(
    paths: Annotated[list[Path] | None, typer.Argument(help="Runbook files or folders (default: runbooks/).")] = None,
    name: Annotated[str | None, typer.Option("--case", "-k", help="Only cases whose name contains this.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print each case's verdict.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file: its `plugins:` (installed "
                                                "plug-in packages, Prometheus sources) apply.")] = None,
) -> None:
    """Rehearse runbooks against their scenarios and check their verdicts; exit 1 on any failure."""
    from engine.loader import Loader

    plugins = _settings(config).plugins
    cases, problems = collect(paths or [Path("runbooks")], Loader(_registry(config)))
    for problem in problems:
        err.print(str(problem), markup=False)
    cases = [c for c in cases if not name or name in c.test.name]
    table = Table("runbook", "case", "result", "time", "details")
    failed = 0
    for case in cases:
        result = rehearse(case, plugins=plugins)
        failed += not result.passed
        mark = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        table.add_row(result.runbook, result.name, mark, f"{result.seconds:.2f}s", escape("\n".join(result.failures)))
        if verbose and result.run is not None:
            out.print(f"[bold]{result.runbook} / {result.name}[/]: {result.run.status}")
            for f in result.run.findings:
                out.print(f"   {f.severity:8} {f.id}: {f.summary}", markup=False)
            for p in result.run.proposals:
                out.print(f"   proposal {p.id} [{p.status}]: {p.summary}", markup=False)
    out.print(table)
    summary = f"{len(cases) - failed} passed, {failed} failed"
    out.print(summary, markup=False)
    if failed or problems or not cases:
        if not cases:
            err.print("[red]no runbook test cases found[/]")
        raise typer.Exit(1)


def simulate(
    scenario: Annotated[list[Path], typer.Argument(help="Scenario manifests (multi-document YAML).", exists=True)],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    kubeconfig_out: Annotated[Path, typer.Option("--kubeconfig-out", help="Where to write the kubeconfig.")] = Path(
        ".runbook/kubeconfig"),
) -> None:
    """Serve a simulated cluster until interrupted; kubectl and `runbook run --kubeconfig` work against it."""
    from integrations.kubesim import ScenarioError, SimulatedCluster

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sim = SimulatedCluster.from_files(scenario, port=port)
    except ScenarioError as exc:
        _fail(exc)
    with sim:
        kubeconfig_out.parent.mkdir(parents=True, exist_ok=True)
        sim.write_kubeconfig(kubeconfig_out, token=SIM_TOKEN)
        out.print(f"simulated cluster at {sim.url}; kubeconfig written to {kubeconfig_out}")
        out.print(f"  kubectl --kubeconfig {kubeconfig_out} get nodes")
        out.print("press Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


def cancel(
    run_id: str,
    as_: Annotated[str | None, typer.Option("--as", help="Who you are, for the audit log.")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (YAML).")] = None,
) -> None:
    """Abort a pending run or one waiting for approval; nothing more is executed."""
    settings = _settings(config)
    try:
        record = build(settings).executor.cancel(run_id, as_ or settings.user, reason)
    except RunbookError as exc:
        _fail(exc)
    out.print(f"run {record.id}: {record.status}")


def freeze(
    state: Annotated[str, typer.Argument(help="on: refuse every approval, on every replica; off: accept them again.")],
    reason: Annotated[str, typer.Option(help="Why (shown to whoever tries to approve; audited).")] = "",
    as_: Annotated[str | None, typer.Option("--as", help="Who you are, for the audit log.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (YAML).")] = None,
) -> None:
    """Freeze changes (diagnoses and proposals still run, approvals are refused) or end the freeze."""
    if state not in ("on", "off"):
        _fail("freeze takes `on` or `off`")
    if state == "on" and not reason.strip():
        _fail("say why: runbook freeze on --reason '...' (approvers are shown it when refused)")
    settings = _settings(config)
    engine = build(settings)
    try:
        if state == "on":
            engine.executor.freeze(as_ or settings.user, reason)
            out.print(f"changes are frozen: {reason}", markup=False)
        else:
            was = engine.executor.unfreeze(as_ or settings.user, reason)
            out.print("the freeze is off" if was else "changes were not frozen", markup=False)
    finally:
        engine.close()


def audit(
    run_id: Annotated[str | None, typer.Argument(help="Only this run's entries.")] = None,
    limit: int = 200,
    output: OutputOpt = "text",
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (YAML).")] = None,
) -> None:
    """Print the append-only audit log: who did what, when (UTC), to which run."""
    settings = _settings(config)
    if settings.database_url is None and not Path(settings.db).exists():
        _fail(f"no run store at {settings.db} (setting db / RUNBOOK_DB)")
    try:
        entries = open_store(settings).audit_log(run_id, limit)
    except RunbookError as exc:
        _fail(exc)
    if output == "json":
        emit({"entries": [audit_row(e) for e in entries]})
        return
    for entry in entries:
        out.print(f"{when(entry.at)} {entry.actor:24} {entry.action:28} {entry.run_id or '-':14} "
                  f"{json.dumps(entry.detail)}", markup=False)


def actions(
    name: Annotated[str | None, typer.Argument(help="Show one action's arguments and its documentation.")] = None,
    output: OutputOpt = "text",
    config: Annotated[Path | None, typer.Option("--config", help="Settings file: its `plugins:` adds the "
                                                "actions of installed plug-in packages it names.")] = None,
) -> None:
    """List the actions steps can call: kind, the Kubernetes permissions each needs, and what it does."""
    registry = _registry(config)
    if name is not None:
        if name not in registry:
            _fail(f"unknown action {name!r}{did_you_mean(name, registry.names())}")
        action = registry.get(name)
        if output == "json":
            emit(action_row(action) | {"documentation": inspect.getdoc(action.func) or "",
                                       "read_back": action.read_back is not None})
            return
        out.print(f"[bold]{action.name}[/] ({action.kind})", highlight=False)
        out.print(inspect.getdoc(action.func) or "", markup=False)
        out.print("\narguments:", markup=False)
        for arg, field in action.args.model_fields.items():
            default = "required" if field.is_required() else f"default {field.default!r}"
            out.print(f"  {arg}: {getattr(field.annotation, '__name__', field.annotation)} ({default})", markup=False)
        out.print("permissions: " + (action.permissions_text().replace("\n", ", ") or "none"), markup=False)
        if action.kind == ActionKind.REMEDIATE:
            out.print("if its process dies while sending: " + ("the next owner re-reads the target (read-back)"
                      if action.read_back else "effect unknown (no read-back)"), markup=False)
        return
    if output == "json":
        emit({"actions": [action_row(a) for a in registry]})
        return
    table = Table("action", "kind", "permissions", "what it does")
    for action in registry:
        table.add_row(action.name, str(action.kind), action.permissions_text(), action.description)
    out.print(table)


def rbac(
    paths: Annotated[list[Path] | None, typer.Argument(help="Runbook files or folders (default: settings).")] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", help="Where the engine runs (default: the pod's own namespace, else 'runbook').")] = None,
    service_account: Annotated[str, typer.Option("--service-account", help="Its service account.")] = "runbook",
    target: Annotated[list[str] | None, typer.Option(
        "--target-namespace", help="Grant namespaced access only here (Roles), for runbooks whose namespace "
        "comes from an alert or chat. Repeatable.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file; its `identities` add "
                                                "impersonation of exactly the mapped users and groups.")] = None,
) -> None:
    """Print least-privilege RBAC (ServiceAccount, Roles, ClusterRoles, bindings) for the runbooks' actions."""
    from engine.catalog import Catalog
    from engine.loader import Loader
    from integrations.app.identities import impersonation_targets
    from integrations.app.incluster import pod_namespace
    from integrations.app.rbac import generate, to_yaml

    settings = _settings(config)
    registry = _registry(config)
    sources = [str(p) for p in paths] if paths else list(settings.runbook_path)
    catalog = Catalog.load(sources, Loader(registry, check_tests=False))
    if catalog.problems:
        for problem in catalog.problems:
            err.print(str(problem), markup=False)
        raise typer.Exit(1)
    ns = namespace or pod_namespace() or "runbook"
    objects = generate(catalog.runbooks.values(), registry, namespace=ns, service_account=service_account,
                       targets=tuple(target or ()), impersonate=impersonation_targets(settings))
    names = ", ".join(sorted(catalog.runbooks))
    again = " ".join(["runbook rbac", *sources, "--namespace", ns, "--service-account", service_account,
                      *(f"--target-namespace {t}" for t in target or ())])
    typer.echo(to_yaml(objects, f"Least-privilege RBAC for the runbooks {names}.\nGenerated; do not edit. "
                                f"Regenerate with:\n  {again}"), nl=False)


def register(app: typer.Typer) -> None:
    from integrations.app.cli.demo import demo
    from integrations.app.cli.serve import serve

    for command in (test, actions, simulate, serve, cancel, freeze, audit, rbac, demo):
        app.command()(command)
