"""`k8s.node.pods`: what runs on a node and what happens to it if the node stays gone or is drained.

When a node is unreachable, Deployment pods are replaced elsewhere after the eviction timeout, but
StatefulSet pods (fixed identity, maybe a volume) and un-owned pods are not: someone must decide.
Before draining, the questions are which pods a PodDisruptionBudget will hold and which workloads
have no ready replica anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.errors import NotFoundError
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.client import Kube
from integrations.kubernetes.nodes import ready_status
from integrations.kubernetes.objects import (
    MIRROR_ANNOTATION,
    annotations_of,
    condition,
    controller_of,
    labels,
    meta,
    name_of,
    namespace_of,
    path,
    ref,
    selector_matches,
)
from integrations.kubernetes.permissions import NODE_GET, perm
from integrations.kubernetes.report import Report, ev

D = ActionKind.DIAGNOSE

_OWNER_RESOURCES = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets"}
MAX_OWNER_LOOKUPS = 100  # requests, GETs and namespace lists together
LIST_OWNERS_FROM = 4


class NodePodsArgs(ActionArgs):
    node: str


@dataclass(frozen=True)
class PodInfo:
    """A pod on the node, classified for drain and for node loss."""

    namespace: str
    name: str
    owner_kind: str  # Deployment | ReplicaSet | StatefulSet | DaemonSet | Job | Mirror | None | <other kind>
    owner: str
    controller_kind: str  # the direct controller (ReplicaSet for Deployment pods), "" when un-owned
    controller: str
    ready: bool
    phase: str
    terminating: bool
    emptydir: bool
    labels: dict[str, str]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def evictable(self) -> bool:
        """Would `kubectl drain --ignore-daemonsets` evict it (given --force for un-owned pods)?"""
        return self.owner_kind not in ("DaemonSet", "Mirror") and not self.terminating and not self.finished

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace, "name": self.name, "owner_kind": self.owner_kind, "owner": self.owner,
            "ready": self.ready, "phase": self.phase, "terminating": self.terminating, "emptydir": self.emptydir,
        }


def classify_pod(pod: dict[str, Any], owners: dict[tuple[str, str, str], dict[str, Any]] | None = None) -> PodInfo:
    """Owner by ownerReferences; a ReplicaSet resolves to its Deployment (from the RS, else by name)."""
    ctrl = controller_of(pod) or {}
    kind, owner = str(ctrl.get("kind") or ""), str(ctrl.get("name") or "")
    ns = namespace_of(pod)
    top_kind, top = kind or "None", owner
    if MIRROR_ANNOTATION in annotations_of(pod):
        top_kind = "Mirror"
    elif kind == "ReplicaSet":
        rs = (owners or {}).get(("ReplicaSet", ns, owner))
        rs_owner = controller_of(rs) if rs else None
        if rs_owner and rs_owner.get("kind") == "Deployment":
            top_kind, top = "Deployment", str(rs_owner.get("name"))
        elif rs is None:
            hash_ = labels(pod).get("pod-template-hash")
            if hash_ and owner.endswith(f"-{hash_}"):
                top_kind, top = "Deployment", owner[: -len(hash_) - 1]
    ready_cond = condition(pod, "Ready") or {}
    volumes = (pod.get("spec") or {}).get("volumes") or []
    return PodInfo(
        namespace=ns,
        name=name_of(pod),
        owner_kind=top_kind,
        owner=top,
        controller_kind=kind,
        controller=owner,
        ready=ready_cond.get("status") == "True",
        phase=str((pod.get("status") or {}).get("phase") or "Unknown"),
        terminating=bool(meta(pod).get("deletionTimestamp")),
        emptydir=any("emptyDir" in v for v in volumes if isinstance(v, dict)),
        labels=dict(labels(pod)),
    )


def covering_pdbs(pod: PodInfo, pdbs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pdbs if namespace_of(p) == pod.namespace
            and selector_matches((p.get("spec") or {}).get("selector"), pod.labels)]


def analyze_node_pods(
    node: dict[str, Any],
    pods: list[dict[str, Any]],
    owners: dict[tuple[str, str, str], dict[str, Any]],
    pdbs: list[dict[str, Any]],
) -> Report:
    node_name = name_of(node)
    ready = ready_status(node)
    unreachable = ready != "True"
    infos = [classify_pod(p, owners) for p in pods]
    by_kind: dict[str, int] = {}
    for info in infos:
        by_kind[info.owner_kind] = by_kind.get(info.owner_kind, 0) + 1
    sts = [i for i in infos if i.owner_kind == "StatefulSet" and not i.finished]
    unowned = [i for i in infos if i.owner_kind == "None" and not i.finished]
    daemon = [i for i in infos if i.owner_kind == "DaemonSet"]
    mirror = [i for i in infos if i.owner_kind == "Mirror"]

    at_risk: list[dict[str, Any]] = []
    for (kind, ns, name), obj in sorted(owners.items()):
        status, spec = obj.get("status") or {}, obj.get("spec") or {}
        desired = int(spec.get("replicas", 1) or 0)
        on_node = [i for i in infos if i.controller_kind == kind and i.controller == name and i.namespace == ns]
        ready_here = sum(1 for i in on_node if i.ready)
        elsewhere = max(0, int(status.get("readyReplicas") or 0) - ready_here)
        if desired > 0 and on_node and elsewhere == 0:
            top = on_node[0]
            at_risk.append({"kind": top.owner_kind, "namespace": ns, "name": top.owner, "controller": f"{kind}/{name}",
                            "desired": desired, "ready_elsewhere": 0, "pods_on_node": [i.name for i in on_node]})

    pdb_rows: list[dict[str, Any]] = []
    blocking: list[str] = []
    for pdb in pdbs:
        covered = [i for i in infos if i.evictable and pdb in covering_pdbs(i, [pdb])]
        if not covered:
            continue
        allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
        row = {"namespace": namespace_of(pdb), "name": name_of(pdb), "disruptions_allowed": allowed,
               "pods": [i.name for i in covered], "blocking": allowed < len(covered)}
        pdb_rows.append(row)
        if row["blocking"]:
            blocking.append(ref(pdb))

    stuck = [*sts, *unowned] if unreachable else []
    output = {
        "node": node_name,
        "node_ready": ready == "True",
        "pods_total": len(infos),
        "by_owner_kind": by_kind,
        "pods": [i.as_dict() for i in infos],
        "statefulset_pods": [i.ref for i in sts],
        "unowned_pods": [i.ref for i in unowned],
        "daemonset_pods": [i.ref for i in daemon],
        "mirror_pods": [i.ref for i in mirror],
        "stuck_pods": [i.ref for i in stuck],
        "terminating_pods": [i.ref for i in infos if i.terminating],
        "evictable_pods": sum(1 for i in infos if i.evictable),
        "workloads_without_ready_replicas": at_risk,
        "pdbs": pdb_rows,
        "blocking_pdbs": blocking,
    }
    report = Report(output)
    for risk in at_risk:
        ctrl_kind, _, ctrl_name = str(risk["controller"]).partition("/")
        report.add(
            "node_pods.no_ready_replica", "critical",
            f"{risk['kind']} {risk['namespace']}/{risk['name']} has no Ready replica outside {node_name} "
            f"(desired {risk['desired']}): it is down until its pods run elsewhere",
            [ev(f"{ctrl_kind} {risk['namespace']}/{ctrl_name}", "status.readyReplicas",
                f"{risk['ready_elsewhere']} outside {node_name}"),
             ev(f"Node {node_name}", "pods", ", ".join(risk["pods_on_node"]))],
        )
    if stuck:
        names = ", ".join(i.ref for i in stuck[:10])
        report.add(
            "node_pods.stuck", "warning",
            f"{len(stuck)} pods on NotReady {node_name} will not be rescheduled by their controllers: "
            f"StatefulSet pods keep their identity until the node returns or the pod is force-deleted, "
            f"un-owned pods are never recreated: {names}",
            [ev(f"Pod {i.ref}", "metadata.ownerReferences", i.owner_kind if i.owner_kind != "None" else "none")
             for i in stuck[:5]],
        )
    if unowned and not unreachable:
        report.add(
            "node_pods.unowned", "warning",
            f"{len(unowned)} pods on {node_name} have no controller; draining deletes them for good "
            f"(needs force): {', '.join(i.ref for i in unowned[:10])}",
            [ev(f"Pod {i.ref}", "metadata.ownerReferences", "none") for i in unowned[:5]],
        )
    for budget in pdb_rows:
        if budget["blocking"]:
            where = f"{budget['namespace']}/{budget['name']}"
            report.add(
                "node_pods.pdb_blocks", "warning",
                f"PodDisruptionBudget {where} allows {budget['disruptions_allowed']} disruption(s) but covers "
                f"{len(budget['pods'])} pod(s) on {node_name}: a drain will wait on it",
                [ev(f"PodDisruptionBudget {where}", "status.disruptionsAllowed", budget["disruptions_allowed"])],
            )
    if not report.findings:
        report.add(
            "node_pods.ok", "info",
            f"{len(infos)} pods on {node_name}; every workload has ready replicas elsewhere and no "
            "PodDisruptionBudget would block a drain",
            [ev(f"Node {node_name}", "pods", by_kind)],
        )
    return report


def fetch_owners(kube: Kube, pods: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The distinct ReplicaSets/StatefulSets controlling the pods (owners gone are skipped).

    A few owners in a namespace are fetched one GET each; from `LIST_OWNERS_FROM` owners of one kind in
    one namespace on, that namespace's collection is listed instead (paged), so a node running 28 pods of
    28 Deployments costs one request per namespace rather than 28 (the 5,000-node benchmark).
    """
    wanted: dict[tuple[str, str], set[str]] = {}
    for pod in pods:
        ctrl = controller_of(pod) or {}
        if ctrl.get("kind") in _OWNER_RESOURCES:
            wanted.setdefault((str(ctrl["kind"]), namespace_of(pod)), set()).add(str(ctrl.get("name")))
    owners: dict[tuple[str, str, str], dict[str, Any]] = {}
    lookups = 0
    for (kind, ns), names in sorted(wanted.items()):
        if lookups >= MAX_OWNER_LOOKUPS:
            break
        if len(names) >= LIST_OWNERS_FROM:
            lookups += 1
            for obj in kube.iter_list(path(_OWNER_RESOURCES[kind], namespace=ns)):
                if name_of(obj) in names:
                    owners[(kind, ns, name_of(obj))] = obj
            continue
        for name in sorted(names):
            if lookups >= MAX_OWNER_LOOKUPS:
                break
            lookups += 1
            found = kube.get_or_none(path(_OWNER_RESOURCES[kind], name, ns))
            if found is not None:
                owners[(kind, ns, name)] = found
    return owners


def pods_on_node(kube: Kube, node: str) -> list[dict[str, Any]]:
    return kube.list(path("pods"), field_selector=f"spec.nodeName={node}")


class NodePodsActions(KubeActions):
    @action("k8s.node.pods", kind=D, args=NodePodsArgs,
            permissions=(NODE_GET, perm("pods", "list"), perm("replicasets", "get", "apps"),
                         perm("statefulsets", "get", "apps"), perm("poddisruptionbudgets", "list", "policy")))
    def pods(self, ctx: ActionContext, args: NodePodsArgs) -> dict[str, Any]:
        """Pods on a node grouped by owner, what will not move by itself, and what would block a drain.

        Output: `node`, `node_ready`, `pods_total`, `by_owner_kind` {kind: count}, `pods` [{namespace, name,
        owner_kind, owner, ready, phase, terminating, emptydir}], `statefulset_pods`, `unowned_pods`,
        `daemonset_pods`, `mirror_pods`, `stuck_pods` (StatefulSet + un-owned pods, only when the node is not
        Ready), `terminating_pods`, `evictable_pods` (count), `workloads_without_ready_replicas` [{kind, namespace,
        name, controller, desired, ready_elsewhere, pods_on_node}], `pdbs` [{namespace, name, disruptions_allowed,
        pods, blocking}], `blocking_pdbs` ["ns/name"].
        Findings: `node_pods.no_ready_replica` (critical), `node_pods.stuck`, `node_pods.unowned`,
        `node_pods.pdb_blocks` (warning), `node_pods.ok` (info, only when nothing else was found).
        Requests: node, pods (fieldSelector spec.nodeName), one GET per ReplicaSet/StatefulSet (one list per
        namespace with 4 or more of one kind), PDB list.
        """
        kube = self.kube_for(ctx)
        node = kube.get_or_none(path("nodes", args.node))
        if node is None:
            raise NotFoundError(f'node "{args.node}" not found')
        pods = pods_on_node(kube, args.node)
        owners = fetch_owners(kube, pods)
        pdbs = kube.list(path("poddisruptionbudgets")) if pods else []
        return analyze_node_pods(node, pods, owners, pdbs).emit(ctx)
