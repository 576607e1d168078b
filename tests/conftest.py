"""Shared fixtures: an action registry with test actions, a loader, a run store and an executor."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from engine.actions import ActionArgs, ActionContext, ActionKind, ActionRegistry, Identity, Permission
from engine.builtins import register_builtins
from engine.errors import TransientError
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.run_store import RunStore
from engine.sqlstore.sqlite import SqliteStore
from engine.verdict import Change

if TYPE_CHECKING:  # imported where used: the client tests also run in .venv-min, which has no psycopg
    from integrations.testing.postgres import PostgresCluster


class Toy:
    """A tiny stateful 'system' that the test actions read and change, standing in for a cluster."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.identities: list[Identity | None] = []


class SetArgs(ActionArgs):
    key: str
    value: str


class KeyArgs(ActionArgs):
    key: str


class SlowArgs(ActionArgs):
    seconds: float


def toy_registry(toy: Toy) -> ActionRegistry:
    registry = register_builtins(ActionRegistry())

    @registry.register("toy.set", kind=ActionKind.REMEDIATE, args=SetArgs,
                       permissions=(Permission("configmaps", "patch", namespaced=True),))
    def toy_set(ctx: ActionContext, args: SetArgs) -> dict[str, Any]:
        """Sets a key; under dry-run only describes the change."""
        before = toy.values.get(args.key)
        ctx.change(Change(verb="set", target=args.key, diff=(f"{args.key}: {before} -> {args.value}",),
                          dry_run=ctx.dry_run))
        if not ctx.dry_run:
            toy.values[args.key] = args.value
            toy.identities.append(ctx.identity)
        return {"before": before, "after": args.value}

    @registry.register("toy.get", kind=ActionKind.DIAGNOSE, args=KeyArgs)
    def toy_get(ctx: ActionContext, args: KeyArgs) -> dict[str, Any]:
        """Reads a key."""
        return {"value": toy.values.get(args.key)}

    @registry.register("toy.flaky", kind=ActionKind.DIAGNOSE, args=KeyArgs)
    def toy_flaky(ctx: ActionContext, args: KeyArgs) -> dict[str, Any]:
        """Fails transiently `toy.failures[key]` times, then succeeds."""
        toy.calls[args.key] = toy.calls.get(args.key, 0) + 1
        if toy.failures.get(args.key, 0) > 0:
            toy.failures[args.key] -= 1
            raise TransientError("server busy", retry_after=0.01)
        return {"calls": toy.calls[args.key]}

    @registry.register("toy.slow", kind=ActionKind.DIAGNOSE, args=SlowArgs)
    def toy_slow(ctx: ActionContext, args: SlowArgs) -> dict[str, Any]:
        """Sleeps, to exercise step timeouts."""
        import time

        time.sleep(args.seconds)
        return {}

    @registry.register("toy.crash", kind=ActionKind.DIAGNOSE, args=KeyArgs)
    def toy_crash(ctx: ActionContext, args: KeyArgs) -> dict[str, Any]:
        """A buggy action."""
        return {"x": {}[args.key]}

    return registry


TEAM = ("alice", "bob", "carol")  # the approvers of the `executor` fixture (with none, nobody may approve)

@pytest.fixture
def toy() -> Toy:
    return Toy()


@pytest.fixture
def registry(toy: Toy) -> ActionRegistry:
    return toy_registry(toy)


@pytest.fixture
def loader(registry: ActionRegistry) -> Loader:
    return Loader(registry)


def missing_tool(reason: str) -> NoReturn:
    """A program the tests drive (PostgreSQL, kubectl, Alertmanager, Prometheus, pgbouncer, chromium) is not
    installed. In CI (`CI=true`) that is a broken set-up, since `make tools` installs them all: fail. Elsewhere:
    skip, saying why."""
    if os.environ.get("CI"):
        pytest.fail(f"required in CI: {reason}")
    print(f"SKIPPED: {reason}")
    pytest.skip(reason)


def require_postgres() -> None:
    """Debian's PostgreSQL server binaries, for a throwaway cluster (`missing_tool` when absent)."""
    from integrations.testing.postgres import server_bin

    if server_bin() is None:
        missing_tool("PostgreSQL not found (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the session."""
    from integrations.testing.postgres import PostgresCluster

    require_postgres()
    with PostgresCluster() as cluster:
        yield cluster


StoreFactory = Callable[..., RunStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on this test's one database, of each backend in turn: several calls are several
    processes (or replicas) sharing it."""
    url = request.getfixturevalue("postgres").new_database() if request.param == "postgresql" else None
    opened: list[RunStore] = []

    def make(instance: str | None = None, **options: Any) -> RunStore:
        store: RunStore
        if url is None:
            store = SqliteStore(tmp_path / "runs.db", instance, **options)
        else:
            from integrations.postgres import PostgresStore

            store = PostgresStore(url, instance, migrate=options.pop("migrate", True), pool_size=4, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> RunStore:
    return make_store("test")


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def executor(registry: ActionRegistry, store: RunStore, sleeps: list[float]) -> Executor:
    return Executor(registry, store, sleep=sleeps.append, policy=Policy(approvers=TEAM))


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented YAML file into tmp_path and return its path."""

    def _write(text: str, name: str = "runbook.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


def require_kubectl(purpose: str) -> str:
    """The kubectl binary (`missing_tool` when absent)."""
    path = shutil.which("kubectl")
    if path is None:
        missing_tool(f"kubectl not found on PATH, needed for {purpose}")
    return path


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    """Debian's Alertmanager 0.25 (`missing_tool` when absent)."""
    from integrations.testing.alertmanager import BINARY

    if os.path.exists(BINARY) and os.access(BINARY, os.X_OK):
        return BINARY
    missing_tool(f"prometheus-alertmanager not found at {BINARY}: install it with "
                 "`apt-get install -y prometheus-alertmanager` (Debian's Alertmanager 0.25)")
