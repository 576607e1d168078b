"""`k8s.node.pods`: what runs on a node and what happens to it if the node stays gone or is drained.

When a node is unreachable, Deployment pods are replaced elsewhere after the eviction timeout, but
StatefulSet pods (fixed identity, maybe a volume) and un-owned pods are not: someone must decide.
Before draining, the questions are which pods a PodDisruptionBudget will hold and which workloads
have no ready replica anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
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
    uid: str = ""  # a pod re-created under the same name is another pod (drain re-reads by it)
    pinned: bool = False  # nodeSelector / required node affinity on the hostname: it can run nowhere else

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


def _top_owner(pod: dict[str, Any], kind: str, owner: str,
               owners: dict[tuple[str, str, str], dict[str, Any]]) -> tuple[str, str]:
    """(kind, name) of the workload: a ReplicaSet resolves to its Deployment (from the RS, else by name)."""
    if MIRROR_ANNOTATION in annotations_of(pod):
        return "Mirror", owner
    if kind != "ReplicaSet":
        return kind or "None", owner
    rs = owners.get(("ReplicaSet", namespace_of(pod), owner))
    rs_owner = controller_of(rs) if rs else None
    if rs_owner and rs_owner.get("kind") == "Deployment":
        return "Deployment", str(rs_owner.get("name"))
    hash_ = labels(pod).get("pod-template-hash")
    if rs is None and hash_ and owner.endswith(f"-{hash_}"):
        return "Deployment", owner[: -len(hash_) - 1]
    return kind, owner


def classify_pod(pod: dict[str, Any], owners: dict[tuple[str, str, str], dict[str, Any]] | None = None) -> PodInfo:
    """Owner by ownerReferences; a ReplicaSet resolves to its Deployment (from the RS, else by name)."""
    ctrl = controller_of(pod) or {}
    kind, owner = str(ctrl.get("kind") or ""), str(ctrl.get("name") or "")
    top_kind, top = _top_owner(pod, kind, owner, owners or {})
    volumes = (pod.get("spec") or {}).get("volumes") or []
    return PodInfo(
        namespace=namespace_of(pod),
        name=name_of(pod),
        owner_kind=top_kind,
        owner=top,
        controller_kind=kind,
        controller=owner,
        ready=(condition(pod, "Ready") or {}).get("status") == "True",
        phase=str((pod.get("status") or {}).get("phase") or "Unknown"),
        terminating=bool(meta(pod).get("deletionTimestamp")),
        emptydir=any("emptyDir" in v for v in volumes if isinstance(v, dict)),
        labels=dict(labels(pod)),
        uid=str(meta(pod).get("uid") or ""),
        pinned=pinned_to_its_node(pod),
    )


HOSTNAME_LABEL = "kubernetes.io/hostname"


def pinned_to_its_node(pod: dict[str, Any]) -> bool:
    """Whether the scheduler may place this pod only on one node: a nodeSelector on the hostname label, or a
    required node affinity term on it (`metadata.name` field too). Evicted, such a pod stays Pending."""
    spec = pod.get("spec") or {}
    if HOSTNAME_LABEL in (spec.get("nodeSelector") or {}):
        return True
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]
    return bool(terms) and all(
        any(e.get("key") in (HOSTNAME_LABEL, "metadata.name") and e.get("operator") == "In"
            and len(e.get("values") or []) == 1
            for e in [*(t.get("matchExpressions") or []), *(t.get("matchFields") or [])])
        for t in terms)


def covering_pdbs(pod: PodInfo, pdbs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pdbs if namespace_of(p) == pod.namespace
            and selector_matches((p.get("spec") or {}).get("selector"), pod.labels)]


@dataclass(frozen=True)
class NodePodsFacts:
    """The pods on one node, classified, with the workloads and budgets they belong to."""

    node: str
    node_ready: bool
    pods: tuple[PodInfo, ...]
    at_risk: tuple[dict[str, Any], ...]
    pdbs: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str, running_only: bool = True) -> list[PodInfo]:
        return [i for i in self.pods if i.owner_kind == kind and not (running_only and i.finished)]

    @property
    def by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for info in self.pods:
            counts[info.owner_kind] = counts.get(info.owner_kind, 0) + 1
        return counts

    @property
    def pinned(self) -> list[PodInfo]:
        """Pods a drain would evict that can run on no other node."""
        return [i for i in self.pods if i.evictable and i.pinned]

    @property
    def stuck(self) -> list[PodInfo]:
        """On a node that is not Ready, what no controller will move: StatefulSet pods and un-owned pods."""
        return [*self.of_kind("StatefulSet"), *self.of_kind("None")] if not self.node_ready else []


def workloads_at_risk(owners: dict[tuple[str, str, str], dict[str, Any]],
                      infos: list[PodInfo]) -> list[dict[str, Any]]:
    """Workloads with pods here and no Ready replica anywhere else (readyReplicas minus those here)."""
    at_risk: list[dict[str, Any]] = []
    for (kind, ns, name), obj in sorted(owners.items()):
        desired = int((obj.get("spec") or {}).get("replicas", 1) or 0)
        on_node = [i for i in infos if i.controller_kind == kind and i.controller == name and i.namespace == ns]
        ready_here = sum(1 for i in on_node if i.ready)
        elsewhere = max(0, int((obj.get("status") or {}).get("readyReplicas") or 0) - ready_here)
        if desired > 0 and on_node and elsewhere == 0:
            top = on_node[0]
            at_risk.append({"kind": top.owner_kind, "namespace": ns, "name": top.owner, "controller": f"{kind}/{name}",
                            "desired": desired, "ready_elsewhere": 0, "pods_on_node": [i.name for i in on_node]})
    return at_risk


def budget_rows(pdbs: list[dict[str, Any]], infos: list[PodInfo]) -> list[dict[str, Any]]:
    """The budgets covering evictable pods here, each `blocking` when it allows fewer disruptions than that."""
    rows: list[dict[str, Any]] = []
    for pdb in pdbs:
        covered = [i for i in infos if i.evictable and pdb in covering_pdbs(i, [pdb])]
        if covered:
            allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
            rows.append({"namespace": namespace_of(pdb), "name": name_of(pdb), "disruptions_allowed": allowed,
                         "pods": [i.name for i in covered], "blocking": allowed < len(covered)})
    return rows


def node_pods_facts(node: dict[str, Any], pods: list[dict[str, Any]],
                    owners: dict[tuple[str, str, str], dict[str, Any]], pdbs: list[dict[str, Any]]) -> NodePodsFacts:
    infos = [classify_pod(p, owners) for p in pods]
    return NodePodsFacts(node=name_of(node), node_ready=ready_status(node) == "True", pods=tuple(infos),
                         at_risk=tuple(workloads_at_risk(owners, infos)), pdbs=tuple(budget_rows(pdbs, infos)))


def node_pods_output(f: NodePodsFacts) -> dict[str, Any]:
    return {
        "node": f.node,
        "node_ready": f.node_ready,
        "pods_total": len(f.pods),
        "by_owner_kind": f.by_kind,
        "pods": [i.as_dict() for i in f.pods],
        "statefulset_pods": [i.ref for i in f.of_kind("StatefulSet")],
        "unowned_pods": [i.ref for i in f.of_kind("None")],
        "daemonset_pods": [i.ref for i in f.of_kind("DaemonSet", running_only=False)],
        "mirror_pods": [i.ref for i in f.of_kind("Mirror", running_only=False)],
        "stuck_pods": [i.ref for i in f.stuck],
        "terminating_pods": [i.ref for i in f.pods if i.terminating],
        "evictable_pods": sum(1 for i in f.pods if i.evictable),
        "pinned_pods": [i.ref for i in f.pinned],
        "movable_pods": sum(1 for i in f.pods if i.evictable and not i.pinned),
        "workloads_without_ready_replicas": list(f.at_risk),
        "pdbs": list(f.pdbs),
        "blocking_pdbs": [f"{b['namespace']}/{b['name']}" for b in f.pdbs if b["blocking"]],
    }


def analyze_node_pods(
    node: dict[str, Any],
    pods: list[dict[str, Any]],
    owners: dict[tuple[str, str, str], dict[str, Any]],
    pdbs: list[dict[str, Any]],
) -> Report:
    """Every rule that holds adds its findings (a node can hold several problems at once); `ok` when none."""
    facts = node_pods_facts(node, pods, owners, pdbs)
    report = Report(node_pods_output(facts))
    for applies, add in NODE_PODS_FINDINGS:
        if applies(facts):
            add(report, facts)
    if not report.findings:
        _ok(report, facts)
    return report


def _no_ready_replica(report: Report, f: NodePodsFacts) -> None:
    for risk in f.at_risk:
        ctrl_kind, _, ctrl_name = str(risk["controller"]).partition("/")
        report.add(
            "node_pods.no_ready_replica", "critical",
            f"{risk['kind']} {risk['namespace']}/{risk['name']} has no Ready replica outside {f.node} "
            f"(desired {risk['desired']}): it is down until its pods run elsewhere",
            [ev(f"{ctrl_kind} {risk['namespace']}/{ctrl_name}", "status.readyReplicas",
                f"{risk['ready_elsewhere']} outside {f.node}"),
             ev(f"Node {f.node}", "pods", ", ".join(risk["pods_on_node"]))],
        )


def _stuck(report: Report, f: NodePodsFacts) -> None:
    stuck = f.stuck
    report.add(
        "node_pods.stuck", "warning",
        f"{len(stuck)} pods on NotReady {f.node} will not be rescheduled by their controllers: "
        f"StatefulSet pods keep their identity until the node returns or the pod is force-deleted, "
        f"un-owned pods are never recreated: {', '.join(i.ref for i in stuck[:10])}",
        [ev(f"Pod {i.ref}", "metadata.ownerReferences", i.owner_kind if i.owner_kind != "None" else "none")
         for i in stuck[:5]],
    )


def _unowned(report: Report, f: NodePodsFacts) -> None:
    unowned = f.of_kind("None")
    report.add(
        "node_pods.unowned", "warning",
        f"{len(unowned)} pods on {f.node} have no controller; draining deletes them for good "
        f"(needs force): {', '.join(i.ref for i in unowned[:10])}",
        [ev(f"Pod {i.ref}", "metadata.ownerReferences", "none") for i in unowned[:5]],
    )


def _pdb_blocks(report: Report, f: NodePodsFacts) -> None:
    for budget in (b for b in f.pdbs if b["blocking"]):
        where = f"{budget['namespace']}/{budget['name']}"
        report.add(
            "node_pods.pdb_blocks", "warning",
            f"PodDisruptionBudget {where} allows {budget['disruptions_allowed']} disruption(s) but covers "
            f"{len(budget['pods'])} pod(s) on {f.node}: a drain will wait on it",
            [ev(f"PodDisruptionBudget {where}", "status.disruptionsAllowed", budget["disruptions_allowed"])],
        )


def _pinned(report: Report, f: NodePodsFacts) -> None:
    pinned = f.pinned
    report.add(
        "node_pods.pinned", "warning",
        f"{len(pinned)} pod(s) on {f.node} may run only there ({HOSTNAME_LABEL} nodeSelector or required affinity): "
        f"evicted, they stay Pending until {f.node} returns: {', '.join(i.ref for i in pinned[:10])}",
        [ev(f"Pod {i.ref}", "spec.nodeSelector / spec.affinity.nodeAffinity", f"{HOSTNAME_LABEL}={f.node}")
         for i in pinned[:5]],
    )


def _ok(report: Report, f: NodePodsFacts) -> None:
    report.add(
        "node_pods.ok", "info",
        f"{len(f.pods)} pods on {f.node}; every workload has ready replicas elsewhere and no "
        "PodDisruptionBudget would block a drain",
        [ev(f"Node {f.node}", "pods", f.by_kind)],
    )


# Each problem a node's pods can have, in the order findings are shown; several may hold at once.
NODE_PODS_FINDINGS: tuple[tuple[Callable[[NodePodsFacts], bool], Callable[[Report, NodePodsFacts], None]], ...] = (
    (lambda f: bool(f.at_risk), _no_ready_replica),
    (lambda f: bool(f.stuck), _stuck),
    (lambda f: bool(f.of_kind("None")) and f.node_ready, _unowned),
    (lambda f: any(b["blocking"] for b in f.pdbs), _pdb_blocks),
    (lambda f: bool(f.pinned), _pinned),
)


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
        Ready), `terminating_pods`, `evictable_pods` (count), `pinned_pods` (evictable pods that may run only on
        this node), `movable_pods` (count of evictable pods that can run elsewhere),
        `workloads_without_ready_replicas` [{kind, namespace, name, controller, desired, ready_elsewhere,
        pods_on_node}], `pdbs` [{namespace, name, disruptions_allowed, pods, blocking}], `blocking_pdbs` ["ns/name"].
        Findings: `node_pods.no_ready_replica` (critical, one per workload), `node_pods.stuck`, `node_pods.unowned`,
        `node_pods.pdb_blocks`, `node_pods.pinned` (warning), `node_pods.ok` (info, only when nothing else was
        found).
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
