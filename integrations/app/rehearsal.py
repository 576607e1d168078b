"""`runbook test`: rehearses runbooks against simulated clusters and checks their verdicts.

Each case loads its scenario into a fresh simulator, starts the run from params or from an alert (through
the runbook's own triggers, as the server would), checks the verdict, approves the listed steps and checks
the state afterwards. A case also fails when anything in the cluster changed without an approval.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.catalog import Catalog
from engine.errors import DefinitionError, Problem, RunbookError
from engine.executor import Executor
from engine.expectations import check_expectations
from engine.loader import Loader, parse_yaml
from engine.model import Runbook, RunbookTest
from engine.policy import Policy
from engine.records import RunRecord
from engine.sqlstore.sqlite import SqliteStore
from engine.templating import Templating
from engine.triggers import MappingError, OwnerLookup, first_trigger, resolve
from integrations.app.clusters import SIM_TOKEN
from integrations.app.wiring import build_registry

TESTER, APPROVER = "runbook-test", "runbook-test-approver"


class TestFile(BaseModel):
    """`runbooks/tests/<anything>.yaml`: cases for one runbook kept beside it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    runbook: str
    tests: tuple[RunbookTest, ...]


@dataclass
class Case:
    runbook: Runbook
    test: RunbookTest
    base: Path


@dataclass
class CaseResult:
    runbook: str
    name: str
    failures: list[str] = field(default_factory=list)
    run: RunRecord | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def collect(paths: Iterable[str | Path], loader: Loader) -> tuple[list[Case], list[Problem]]:
    """Cases from the runbooks' own `tests:` and from `tests/*.yaml` files in the given folders."""
    paths = list(paths)
    catalog = Catalog.load(paths, loader)
    cases = [Case(rb, t, catalog.files[rb.name].parent) for rb in catalog.runbooks.values() for t in rb.tests]
    problems = list(catalog.problems)
    for folder in (Path(p) for p in paths):
        for file in sorted((folder / "tests").glob("*.y*ml")) if folder.is_dir() else []:
            found, errors = _load_test_file(file, catalog)
            cases.extend(found)
            problems.extend(errors)
    return cases, problems


def _load_test_file(file: Path, catalog: Catalog) -> tuple[list[Case], list[Problem]]:
    doc = parse_yaml(file.read_text(encoding="utf-8"), str(file))
    if doc.problems:
        return [], doc.problems
    try:
        parsed = TestFile.model_validate(doc.data)
    except ValidationError as exc:
        return [], [doc.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
    if parsed.runbook not in catalog.runbooks:
        return [], [doc.problem(("runbook",), f"no runbook named {parsed.runbook!r}")]
    problems = [doc.problem(("tests", i, "scenario"), f"scenario file {t.scenario!r} not found")
                for i, t in enumerate(parsed.tests) if not (file.parent / t.scenario).is_file()]
    cases = [Case(catalog.runbooks[parsed.runbook], t, file.parent) for t in parsed.tests]
    return ([], problems) if problems else (cases, [])


@dataclass(frozen=True)
class Authz:
    """Rehearse under RBAC: these Roles/ClusterRoles/bindings are added to the scenario, the simulator
    enforces them, and the engine authenticates as `user` (e.g. the service account `runbook rbac` binds)."""

    objects: tuple[dict[str, Any], ...]
    user: str = "system:serviceaccount:runbook:runbook"


RBAC_TOKEN = "runbook-rehearsal-sa"


def rehearse(case: Case, authz: Authz | None = None, plugins: Mapping[str, Any] | None = None) -> CaseResult:
    """Run one case against a fresh simulated cluster; never raises for the case's own failures.
    `plugins` are the settings' plug-ins (installed action packages, Prometheus sources)."""
    from integrations.kubernetes.access import AccessChecker
    from integrations.kubernetes.client import Kube
    from integrations.kubernetes.owners import OwnerResolver
    from integrations.kubesim import ScenarioError, SimulatedCluster

    result = CaseResult(case.runbook.name, case.test.name)
    started = time.perf_counter()
    scenario = case.base / case.test.scenario
    options: dict[str, Any] = {}
    if authz is not None:
        options = {"rbac": True, "tokens": {RBAC_TOKEN: authz.user}}
    token = RBAC_TOKEN if authz is not None else SIM_TOKEN
    try:
        sim = SimulatedCluster.from_files([scenario], **options)
    except (ScenarioError, OSError) as exc:  # e.g. a kind without its CustomResourceDefinition: a FAIL row
        result.failures.append(f"scenario: {exc}")
        return result
    with sim, Kube.from_url(sim.url, token) as kube:
        if authz is not None:
            sim.load(authz.objects)
        executor = Executor(build_registry(kube, plugins), SqliteStore(":memory:"), checker=AccessChecker(kube),
                            templating=Templating(clock=kube.now),
                            policy=Policy(approvers=(APPROVER,)))  # the case's approvals are the tester's
        before = _state(sim)
        try:
            params = _params(case, OwnerResolver(kube))
            run = executor.run(case.runbook, params, requester=TESTER, trigger=_trigger(case))
        except RunbookError as exc:
            result.failures.append(f"could not start: {exc}")
            return result
        result.failures += check_expectations(run, case.test.expect, sim.get)
        if run.mutations or _state(sim) != before:
            result.failures.append("the cluster changed before anyone approved: " + _changed(before, _state(sim)))
        for step in case.test.approve:
            try:
                run = executor.decide(run.id, True, APPROVER, step=step)
            except RunbookError as exc:
                result.failures.append(f"approving {step!r}: {exc}")
                break
        if case.test.after is not None:
            result.failures += [f"after approval: {f}" for f in check_expectations(run, case.test.after, sim.get)]
        result.run = run
    result.seconds = time.perf_counter() - started
    return result


def _params(case: Case, lookup: OwnerLookup) -> dict[str, Any]:
    """The case's params, or those the runbook's first matching trigger resolves from its alert, as served."""
    if case.test.alert is None:
        return dict(case.test.params)
    labels = case.test.alert.get("labels", {})
    trigger = first_trigger(case.runbook, labels)
    if trigger is None:
        raise DefinitionError([Problem(case.test.name, 0, 0, "alert", "no trigger of the runbook matches the alert")])
    try:
        return resolve(trigger, labels, lookup)[0]
    except MappingError as exc:
        raise DefinitionError([Problem(case.test.name, 0, 0, "alert", str(exc))]) from exc


def _trigger(case: Case) -> dict[str, Any]:
    trigger: dict[str, Any] = {"source": "test", "case": case.test.name}
    if case.test.alert is not None:
        trigger["alert"] = case.test.alert
    return trigger


def _state(sim: Any) -> dict[tuple[str, str, str], str]:
    """resourceVersion of every object, to prove nothing changed without an approval."""
    state: dict[tuple[str, str, str], str] = {}
    for kind in ("Node", "Pod", "Job", "CronJob", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                 "Secret", "ConfigMap", "PodDisruptionBudget", "Lease"):
        for obj in sim.list(kind):
            meta = obj["metadata"]
            state[(kind, meta.get("namespace", ""), meta["name"])] = meta.get("resourceVersion", "")
    return state


def _changed(before: dict[tuple[str, str, str], str], after: dict[tuple[str, str, str], str]) -> str:
    keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return ", ".join(f"{k}/{ns + '/' if ns else ''}{n}" for k, ns, n in sorted(keys)) or "mutations recorded"
