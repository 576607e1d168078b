"""Inside a pod the engine needs no kubeconfig: the mounted service account is found and used, over TLS,
with the RBAC `runbook rbac` generated, against a simulated API server that enforces it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from engine.errors import ForbiddenError
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.records import RunStatus
from engine.settings import Settings
from engine.sqlstore.sqlite import SqliteStore
from integrations.app.clusters import open_cluster
from integrations.app.incluster import ServiceAccountFiles, detected, pod_namespace
from integrations.app.rbac import generate
from integrations.app.wiring import build_registry
from integrations.kubernetes.access import AccessChecker
from integrations.kubesim import SimulatedCluster

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
SA_USER = "system:serviceaccount:runbook:runbook"


def mount_service_account(sim: SimulatedCluster, folder: Path, token: str) -> ServiceAccountFiles:
    """What the kubelet mounts into a pod: token, cluster CA and namespace."""
    kubeconfig = yaml.safe_load(sim.write_kubeconfig(folder / "kubeconfig").read_text(encoding="utf-8"))
    ca = base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"])
    files = ServiceAccountFiles(folder / "serviceaccount")
    files.root.mkdir()
    files.token.write_text(token, encoding="utf-8")
    files.ca_cert.write_bytes(ca)
    files.namespace.write_text("runbook\n", encoding="utf-8")
    return files


def test_detection_needs_both_the_service_host_and_the_token(tmp_path: Path) -> None:
    files = ServiceAccountFiles(tmp_path)
    assert not detected({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, files)
    files.token.write_text("t", encoding="utf-8")
    assert detected({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, files) and not detected({}, files)
    assert pod_namespace(files) is None
    files.namespace.write_text("ops\n", encoding="utf-8")
    assert pod_namespace(files) == "ops"


def test_the_service_account_is_used_without_a_kubeconfig(tmp_path: Path) -> None:
    registry = build_registry()
    runbook = Loader(registry).load_file(ROOT / "runbooks" / "node-not-ready.yaml")
    rbac = generate([runbook], registry)
    sim = SimulatedCluster.from_files([SCENARIO], rbac=True, tls=True, tokens={"sa-token": SA_USER})
    sim.load(rbac)
    with sim:
        files = mount_service_account(sim, tmp_path, "sa-token")
        environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(sim.port)}
        settings = Settings(db=str(tmp_path / "runs.db"))
        with open_cluster(settings, environ=environ, files=files) as kube:
            assert kube.server == sim.url and sim.url.startswith("https://")
            with pytest.raises(ForbiddenError, match="grant secrets/list"):
                kube.list("/api/v1/secrets")  # proves it is the service account, not an admin
            executor = Executor(build_registry(kube), SqliteStore(":memory:"), checker=AccessChecker(kube),
                                policy=Policy(approvers=("alice",)))
            run = executor.run(runbook, {"node": "node-b"}, requester="alertmanager")
            assert run.status == RunStatus.AWAITING_APPROVAL, [s.error for s in run.steps]
            assert [p.id for p in run.proposals] == ["cordon"]
            run = executor.decide(run.id, True, "alice", step="cordon")
        assert sim.get("Node", "node-b")["spec"]["unschedulable"] is True


def test_a_kubeconfig_still_wins_over_a_mounted_service_account(tmp_path: Path) -> None:
    with SimulatedCluster([], tls=True) as sim:
        files = mount_service_account(sim, tmp_path, "unknown-token")
        environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1"}
        with open_cluster(Settings(), kubeconfig=str(tmp_path / "kubeconfig"), environ=environ, files=files) as kube:
            assert kube.server == sim.url


def test_a_rotated_service_account_token_is_re_read_after_a_401(tmp_path: Path) -> None:
    """The kubelet rotates the mounted token; the loader's own schedule re-reads it only every minute."""
    with SimulatedCluster([], rbac=True, tls=True, tokens={"new-token": SA_USER}) as sim:
        files = mount_service_account(sim, tmp_path, "old-token")
        environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(sim.port)}
        with open_cluster(Settings(), environ=environ, files=files) as kube:
            files.token.write_text("new-token", encoding="utf-8")
            with pytest.raises(ForbiddenError, match="cannot list secrets"):  # authenticated: 403, not 401
                kube.list("/api/v1/secrets")
            assert sim.requests[("GET", "/api/v1/secrets")] == 2
