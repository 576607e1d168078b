"""deploy/ renders with `kubectl kustomize` into a safe Deployment whose RBAC is exactly `runbook rbac`'s, and
the Dockerfile builds a slim, non-root image (checked statically: no docker engine runs in CI)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from integrations.app.cli.main import app
from tests.conftest import require_kubectl

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
FLAGSHIP = ("node-not-ready", "billing-cronjob-failed", "duplicate-migration")


def kubectl() -> str:
    return require_kubectl("the kustomize rendering test")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    proc = subprocess.run([kubectl(), "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name")
    return docs


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def test_the_deployment_runs_unprivileged_with_probes_and_resources(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "runbook"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
    # Slack and webhook secrets are references only; no Secret with values is shipped.
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
    assert env == {"RUNBOOK_SLACK_BOT_TOKEN": "runbook-slack", "RUNBOOK_SLACK_SIGNING_SECRET": "runbook-slack",
                   "RUNBOOK_WEBHOOK_TOKEN": "runbook-webhook", "RUNBOOK_READ_TOKEN": "runbook-read"}
    assert not [d for d in rendered if d["kind"] == "Secret"]


def test_volumes_config_and_store_are_wired(rendered: list[dict[str, Any]]) -> None:
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    assert one(rendered, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    runbooks = one(rendered, "ConfigMap", volumes["runbooks"]["configMap"]["name"])
    assert {Path(k).stem for k in runbooks["data"]} == set(FLAGSHIP)
    config = one(rendered, "ConfigMap", volumes["config"]["configMap"]["name"])
    settings = yaml.safe_load(config["data"]["config.yaml"])
    assert settings["runbook_path"] == [mounts["runbooks"]]
    assert Path(settings["db"]).parent == Path(mounts["data"])
    args = pod["containers"][0]["args"]
    assert Path(args[args.index("--config") + 1]).parent == Path(mounts["config"])
    assert one(rendered, "Service")["spec"]["selector"] == one(rendered, "Deployment")["spec"]["selector"][
        "matchLabels"]


def test_the_deployed_runbooks_are_the_repository_ones() -> None:
    for name in FLAGSHIP:
        original = yaml.safe_load((ROOT / "runbooks" / f"{name}.yaml").read_text(encoding="utf-8"))
        original.pop("tests", None)
        deployed = yaml.safe_load((DEPLOY / "base" / "runbooks" / f"{name}.yaml").read_text(encoding="utf-8"))
        assert deployed == original, f"deploy/base/runbooks/{name}.yaml is out of date (run deploy/sync.sh)"


def essence(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What RBAC decides on: kustomize may add labels, nothing else may differ."""
    meta = obj["metadata"]
    return (obj["kind"], meta["name"], meta.get("namespace"), yaml.safe_dump(
        {k: obj.get(k) for k in ("rules", "roleRef", "subjects")}, sort_keys=True))


def test_the_rbac_is_exactly_what_runbook_rbac_prints(rendered: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["rbac", str(DEPLOY / "base" / "runbooks"), "--namespace", "runbook",
                                      "--service-account", "runbook"])
    assert result.exit_code == 0, result.stderr
    generated = [d for d in yaml.safe_load_all(result.stdout) if d]
    rbac_kinds = {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    deployed = [d for d in rendered if d["kind"] in rbac_kinds]
    assert sorted(map(essence, deployed)) == sorted(map(essence, generated)), (
        "deploy/base/rbac.yaml is stale: run deploy/sync.sh")


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (instruction, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def test_the_dockerfile_builds_a_slim_non_root_image_without_build_tools() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: dependencies are installed in a build stage"
    final = stages[-1]
    base = final[0][1].split()[0]
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", base), base
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(arg for op, arg in final if op == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|make|build-essential|apt-get install|pip install)\b", runs)
    copies = [arg for op, arg in final if op == "COPY"]
    assert any(arg.startswith("--from=") for arg in copies), "the final stage copies the built virtualenv"
    everything = " ".join(arg for stage in stages for _, arg in stage).lower()
    assert not re.search(r"(token|secret|password)\s*=", everything), "no secrets baked into the image"
    assert not [arg for op, arg in final if op in ("ENV", "ARG") and re.search(r"SLACK|WEBHOOK", arg)]
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", ".runbook"} <= set(ignored)


def test_the_slack_app_manifest_has_what_the_server_serves() -> None:
    manifest = yaml.safe_load((DEPLOY / "slack-app-manifest.yaml").read_text(encoding="utf-8"))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {"chat:write", "commands", "usergroups:read"}
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/runbook" and command["url"].endswith("/slack/commands")
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/interactions")


def test_the_replicas_overlay_runs_three_spread_replicas_on_postgresql() -> None:
    proc = subprocess.run([kubectl(), "kustomize", str(DEPLOY / "replicas")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]  # no SQLite volume
    deployment = one(docs, "Deployment")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] == 3 and spec["strategy"] == {"type": "RollingUpdate",
                                                          "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    database = {"name": "RUNBOOK_DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "runbook-database",
                                                                                "key": "url"}}}
    (migrate,) = pod["initContainers"]
    assert migrate["args"][:2] == ["db", "migrate"] and database in migrate["env"]
    assert database in pod["containers"][0]["env"]
    assert next(v for v in pod["volumes"] if v["name"] == "data") == {"name": "data", "emptyDir": {"sizeLimit": "16Mi"}}
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2 and pdb["spec"]["selector"] == deployment["spec"]["selector"]
    prune = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert prune["args"][:3] == ["prune", "--older-than", "90d"] and database in prune["env"]
