"""`k8s.node.inspect`: why a node is NotReady, and whether it is this node's problem at all.

The first question in a node-not-ready incident is not "what is wrong with node-b" but "is it only
node-b": when a third of the nodes drop at once, the cause is a zone, the network or the control
plane, and cordoning or draining nodes one by one makes it worse. So the inspection always looks at
the whole node list (a few paged requests even for 5,000 nodes) before classifying this node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.redaction import redact
from engine.verdict import Evidence
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.diagnosis import first_cause, render
from integrations.kubernetes.events import fetch_events, summarize_events
from integrations.kubernetes.objects import condition, labels, name_of, path
from integrations.kubernetes.permissions import NODE_GET, NODE_LIST, perm
from integrations.kubernetes.report import Report, ev
from integrations.kubernetes.timeutil import age_seconds, human_duration, stamp_with_age

D = ActionKind.DIAGNOSE

CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure")
ZONE_LABEL = "topology.kubernetes.io/zone"
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# cluster-autoscaler taints a node it is scaling down (its scale-down code, `ToBeDeletedTaint`): NotReady there is
# the removal itself. The out-of-service taint is a person's word that the node is shut down: the pod GC
# controller then force-deletes its pods and detaches volumes (non-graceful node shutdown, KEP-2268).
AUTOSCALER_REMOVAL_TAINT = "ToBeDeletedByClusterAutoscaler"
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
NOTABLE_EVENTS = ("NodeNotReady", "Rebooted", "SystemOOM", "EvictionThresholdMet", "ContainerGCFailed",
                  "ImageGCFailed", "NodeHasInsufficientMemory", "NodeHasDiskPressure", "KubeletNotReady")


class NodeInspectArgs(ActionArgs):
    node: str
    lease_grace_seconds: int = 40
    many_not_ready_share: float = 0.3
    many_not_ready_count: int | None = None


def ready_status(node: dict[str, Any]) -> str:
    """`True`, `False` or `Unknown` (a node without a Ready condition has never reported)."""
    cond = condition(node, "Ready")
    return str(cond.get("status")) if cond else "Unknown"


def is_control_plane(node: dict[str, Any]) -> bool:
    return any(label in labels(node) for label in CONTROL_PLANE_LABELS)


def taints(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]


def schedulable(node: dict[str, Any]) -> bool:
    """Ready, not cordoned, and no NoSchedule/NoExecute taint: new pods can land here."""
    if ready_status(node) != "True" or (node.get("spec") or {}).get("unschedulable"):
        return False
    return not any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints(node))


def cluster_view(nodes: list[dict[str, Any]], target: str) -> dict[str, Any]:
    """Counts over worker nodes (control-plane nodes never take workloads, so they skew shares)."""
    workers = [n for n in nodes if not is_control_plane(n)] or nodes
    not_ready = [n for n in workers if ready_status(n) != "True"]
    sched = [n for n in workers if schedulable(n)]
    target_sched = any(name_of(n) == target for n in sched)
    total = len(workers) or 1
    zones = Counter(labels(n).get(ZONE_LABEL, "") for n in not_ready)
    return {
        "nodes_total": len(workers),
        "not_ready_nodes": sorted(name_of(n) for n in not_ready)[:50],
        "not_ready_count": len(not_ready),
        "not_ready_share": round(len(not_ready) / total, 3),
        "not_ready_by_zone": {z or "none": c for z, c in zones.most_common()},
        "schedulable_nodes": len(sched),
        "schedulable_share": round(len(sched) / total, 3),
        "schedulable_share_after_cordon": round((len(sched) - (1 if target_sched else 0)) / total, 3),
    }


@dataclass(frozen=True)
class NodeFacts:
    """What the node, its Lease, its events and the node list say, read once; nothing below reads more."""

    name: str
    ready: str  # True | False | Unknown
    conditions: dict[str, dict[str, Any]]
    lease_present: bool
    renew: str | None
    lease_age: float | None
    lease_stale: bool | None
    heartbeat_source: str | None
    taints: tuple[dict[str, Any], ...]
    pressures: tuple[str, ...]
    network_unavailable: bool
    unschedulable: bool
    control_plane: bool
    zone: str | None
    node_info: dict[str, Any]
    view: dict[str, Any]
    many_not_ready: bool
    events: tuple[dict[str, Any], ...]
    lease_grace_seconds: int
    now: datetime

    @property
    def taint_keys(self) -> set[Any]:
        return {t["key"] for t in self.taints}

    @property
    def unreachable(self) -> bool:
        return UNREACHABLE_TAINT in self.taint_keys

    @property
    def being_removed(self) -> bool:
        return AUTOSCALER_REMOVAL_TAINT in self.taint_keys

    @property
    def out_of_service(self) -> bool:
        return OUT_OF_SERVICE_TAINT in self.taint_keys

    @property
    def stopped(self) -> bool:
        """The kubelet stopped reporting: stale Lease, Ready Unknown, or the controller's unreachable taint."""
        return bool(self.lease_stale) or self.ready == "Unknown" or self.unreachable

    def condition(self, name: str) -> dict[str, Any]:
        return self.conditions.get(name, {})


def _conditions(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        c: {
            "status": cond.get("status"),
            "reason": cond.get("reason"),
            "message": redact(str(cond.get("message") or "")),
            "last_heartbeat": cond.get("lastHeartbeatTime"),
            "last_transition": cond.get("lastTransitionTime"),
        }
        for c in CONDITIONS
        if (cond := condition(node, c)) is not None
    }


def _heartbeat(node: dict[str, Any], lease: dict[str, Any] | None, now: datetime,
               grace: int) -> tuple[str | None, float | None, bool | None, str | None]:
    """(renewTime, age, stale, source): the Lease's clock, else (no leases) the Ready heartbeat's."""
    renew = (lease or {}).get("spec", {}).get("renewTime")
    age = age_seconds(renew, now)
    if lease is not None:
        return renew, age, age is None or age > grace, "lease" if age is not None else None
    age = age_seconds((condition(node, "Ready") or {}).get("lastHeartbeatTime"), now)
    return renew, age, None, "node_status" if age is not None else None


def _many_not_ready(view: dict[str, Any], args: NodeInspectArgs) -> bool:
    count, threshold = view["not_ready_count"], args.many_not_ready_count
    return count >= 2 and (view["not_ready_share"] >= args.many_not_ready_share
                           or (threshold is not None and count >= threshold))


def node_facts(node: dict[str, Any], lease: dict[str, Any] | None, nodes: list[dict[str, Any]],
               events: list[dict[str, Any]], now: datetime, args: NodeInspectArgs) -> NodeFacts:
    name, conds = name_of(node), _conditions(node)
    renew, lease_age, lease_stale, source = _heartbeat(node, lease, now, args.lease_grace_seconds)
    view = cluster_view(nodes, name)
    return NodeFacts(
        name=name, ready=ready_status(node), conditions=conds, lease_present=lease is not None, renew=renew,
        lease_age=lease_age, lease_stale=lease_stale, heartbeat_source=source,
        taints=tuple({"key": t.get("key"), "effect": t.get("effect")} for t in taints(node)),
        pressures=tuple(p for p in PRESSURES if conds.get(p, {}).get("status") == "True"),
        network_unavailable=conds.get("NetworkUnavailable", {}).get("status") == "True",
        unschedulable=bool((node.get("spec") or {}).get("unschedulable")), control_plane=is_control_plane(node),
        zone=labels(node).get(ZONE_LABEL), node_info=dict((node.get("status") or {}).get("nodeInfo") or {}),
        view=view, many_not_ready=_many_not_ready(view, args), events=tuple(summarize_events(events, 10)),
        lease_grace_seconds=args.lease_grace_seconds, now=now,
    )


# The order is the precedence: a correlated failure explains this node too; a silent kubelet explains
# any condition it last posted; a kubelet that reports NotReady names its own reason.
NODE_CAUSES: tuple[tuple[str, Callable[[NodeFacts], bool]], ...] = (
    ("being_removed", lambda f: f.being_removed),
    ("many_nodes_not_ready", lambda f: f.ready != "True" and f.many_not_ready),
    ("kubelet_stopped", lambda f: f.stopped),
    ("kubelet_not_ready", lambda f: f.ready == "False"),
    ("network_unavailable", lambda f: f.network_unavailable),
    ("pressure", lambda f: bool(f.pressures)),
)


def node_output(f: NodeFacts, cause: str) -> dict[str, Any]:
    ready = f.condition("Ready")
    return {
        "node": f.name, "cause": cause, "ready": f.ready == "True", "ready_status": f.ready,
        "ready_reason": ready.get("reason"), "ready_message": ready.get("message"), "conditions": f.conditions,
        "lease_renew_time": f.renew, "lease_age_seconds": None if f.lease_age is None else round(f.lease_age, 1),
        "lease_stale": f.lease_stale, "heartbeat_source": f.heartbeat_source, "pressures": list(f.pressures),
        "network_unavailable": f.network_unavailable, "taints": list(f.taints), "unreachable": f.unreachable,
        "out_of_service": f.out_of_service,
        "unschedulable": f.unschedulable, "control_plane": f.control_plane, "zone": f.zone,
        "kubelet_version": f.node_info.get("kubeletVersion"),
        "container_runtime": f.node_info.get("containerRuntimeVersion"),
        "kernel_version": f.node_info.get("kernelVersion"), "os_image": f.node_info.get("osImage"),
        "events": list(f.events), **f.view,
    }


def analyze_node(
    node: dict[str, Any],
    lease: dict[str, Any] | None,
    nodes: list[dict[str, Any]],
    events: list[dict[str, Any]],
    now: datetime,
    args: NodeInspectArgs,
) -> Report:
    facts = node_facts(node, lease, nodes, events, now, args)
    cause = first_cause(NODE_CAUSES, facts, "healthy")
    return render(Report(node_output(facts, cause)), facts, cause, _CAUSE_FINDINGS, _always_findings(cause))


def _ready_ev(f: NodeFacts) -> Evidence:
    return ev(f"Node {f.name}", "status.conditions[Ready]", _cond_text(f.conditions.get("Ready"), f.now))


def _lease_ev(f: NodeFacts) -> Evidence:
    return ev(f"Lease kube-node-lease/{f.name}", "spec.renewTime",
              stamp_with_age(f.renew, f.now) if f.lease_present else "no Lease object")


def _notable(f: NodeFacts) -> list[Evidence]:
    return [ev(f"Event {e['reason']}", "message", f"{e['message']} (x{e['count']}, last {e['last_seen']})")
            for e in f.events if e["reason"] in NOTABLE_EVENTS][:3]


def _many(report: Report, f: NodeFacts) -> None:
    view = f.view
    where = ", ".join(f"{z}: {c}" for z, c in view["not_ready_by_zone"].items())
    report.add(
        "node.many_not_ready", "critical",
        f"{view['not_ready_count']} of {view['nodes_total']} nodes ({view['not_ready_share']:.0%}) are NotReady "
        f"(by zone: {where}): this looks like a zone, network or control-plane failure rather than {f.name} "
        "alone; do not cordon or drain nodes one by one",
        [_ready_ev(f), *[ev(f"Node {n}", "status.conditions[Ready]", "not True") for n in view["not_ready_nodes"][:5]
                         if n != f.name]],
    )


def _being_removed(report: Report, f: NodeFacts) -> None:
    report.add(
        "node.being_removed", "info",
        f"{f.name} is being removed by the cluster autoscaler (taint {AUTOSCALER_REMOVAL_TAINT}); NotReady is "
        "the scale-down itself and its pods are being moved: nothing to do",
        [ev(f"Node {f.name}", "spec.taints", sorted(k for k in f.taint_keys if k)), _ready_ev(f)],
    )


def _out_of_service(report: Report, f: NodeFacts) -> None:
    report.add(
        "node.out_of_service", "info",
        f"{f.name} is tainted {OUT_OF_SERVICE_TAINT}: someone confirmed it is shut down, so Kubernetes "
        "force-deletes its pods and detaches their volumes by itself; no force-delete is needed",
        [ev(f"Node {f.name}", "spec.taints", OUT_OF_SERVICE_TAINT)],
    )


def _stopped(report: Report, f: NodeFacts) -> None:
    since = human_duration(f.lease_age) if f.lease_age is not None else "an unknown time"
    reason = f.condition("Ready").get("reason")
    keys = f.taint_keys
    report.add(
        "node.kubelet_stopped", "critical",
        f"kubelet on {f.name} stopped reporting: Lease last renewed {since} ago "
        f"(grace {f.lease_grace_seconds}s), Ready={f.ready}"
        + (f" ({reason})" if reason else "")
        + ("; the node is tainted unreachable" if f.unreachable else ""),
        [_lease_ev(f), _ready_ev(f), *([ev(f"Node {f.name}", "spec.taints", sorted(k for k in keys if k))]
                                       if keys else []), *_notable(f)],
    )


def _not_ready(report: Report, f: NodeFacts) -> None:
    ready = f.condition("Ready")
    report.add(
        "node.not_ready", "critical",
        f"{f.name} is NotReady while its kubelet is still reporting: {ready.get('reason') or 'no reason'}: "
        f"{ready.get('message') or 'no message'}",
        [_ready_ev(f), _lease_ev(f), *_notable(f)],
    )


def _network(report: Report, f: NodeFacts) -> None:
    cond = f.condition("NetworkUnavailable")
    report.add(
        "node.network_unavailable", "critical",
        f"{f.name} reports NetworkUnavailable: {cond.get('message') or 'route or CNI not set up'}",
        [ev(f"Node {f.name}", "status.conditions[NetworkUnavailable]", _cond_text(cond, f.now))],
    )


def _pressure(report: Report, f: NodeFacts) -> None:
    report.add(
        "node.pressure", "warning",
        f"{f.name} reports {', '.join(f.pressures)}: the kubelet is evicting pods and refusing new ones",
        [ev(f"Node {f.name}", f"status.conditions[{p}]", _cond_text(f.conditions[p], f.now)) for p in f.pressures],
    )


def _capacity_low(report: Report, f: NodeFacts) -> None:
    view = f.view
    report.add(
        "node.capacity_low", "warning",
        f"only {view['schedulable_nodes']} of {view['nodes_total']} nodes are schedulable; without {f.name} "
        f"{view['schedulable_share_after_cordon']:.0%} of capacity remains for rescheduled pods",
        [ev("NodeList", "items[*].status.conditions[Ready], spec.unschedulable, spec.taints",
            f"{view['schedulable_nodes']}/{view['nodes_total']} schedulable")],
    )


def _healthy(report: Report, f: NodeFacts) -> None:
    hb = f"heartbeat {human_duration(f.lease_age)} ago" if f.lease_age is not None else "no Lease"
    report.add("node.healthy", "info",
               f"{f.name} is Ready ({hb}), no pressure conditions; {f.view['not_ready_count']} of "
               f"{f.view['nodes_total']} nodes are NotReady", [_ready_ev(f), _lease_ev(f)])


def _cordoned(report: Report, f: NodeFacts) -> None:
    report.add("node.cordoned", "info", f"{f.name} is cordoned (spec.unschedulable=true)",
               [ev(f"Node {f.name}", "spec.unschedulable", True)])


_CAUSE_FINDINGS: dict[str, Callable[[Report, NodeFacts], None]] = {
    "being_removed": _being_removed, "many_nodes_not_ready": _many, "kubelet_stopped": _stopped,
    "kubelet_not_ready": _not_ready, "network_unavailable": _network,
}


def _always_findings(cause: str) -> list[tuple[Callable[[NodeFacts], bool], Callable[[Report, NodeFacts], None]]]:
    """Findings beside the cause's own, in order; the cause decides some of them."""
    return [
        (lambda f: bool(f.pressures) and cause != "many_nodes_not_ready", _pressure),
        (lambda f: cause not in ("healthy", "being_removed") and f.view["schedulable_share_after_cordon"] < 0.5,
         _capacity_low),
        (lambda f: cause == "healthy", _healthy),
        (lambda f: f.unschedulable, _cordoned),
        (lambda f: f.out_of_service, _out_of_service),
    ]


def _cond_text(cond: dict[str, Any] | None, now: datetime) -> str:
    if not cond:
        return "absent"
    text = f"{cond.get('status')}"
    if cond.get("reason"):
        text += f" {cond['reason']}"
    if cond.get("message"):
        text += f": {cond['message']}"
    return text + f" (since {stamp_with_age(cond.get('last_transition'), now)})"


class NodeActions(KubeActions):
    @action("k8s.node.inspect", kind=D, args=NodeInspectArgs,
            permissions=(NODE_LIST, NODE_GET, perm("leases", "get", "coordination.k8s.io"), perm("events", "list")))
    def inspect(self, ctx: ActionContext, args: NodeInspectArgs) -> dict[str, Any]:
        """Classify a node's state and the cluster around it.

        Output: `cause` (healthy | being_removed (cluster-autoscaler scale-down) | kubelet_stopped |
        kubelet_not_ready | pressure | network_unavailable |
        many_nodes_not_ready), `ready`, `ready_status`, `ready_reason`, `ready_message`, `conditions`,
        `lease_renew_time`, `lease_age_seconds` (from the Lease, else from Ready.lastHeartbeatTime: see
        `heartbeat_source` = lease | node_status | None), `lease_stale` (None without a Lease), `pressures`,
        `network_unavailable`, `taints`, `unreachable`, `out_of_service`, `unschedulable`, `control_plane`, `zone`,
        `kubelet_version`, `container_runtime`, `kernel_version`, `os_image`, `events`, `nodes_total`,
        `not_ready_nodes`, `not_ready_count`, `not_ready_share`, `not_ready_by_zone`, `schedulable_nodes`,
        `schedulable_share`, `schedulable_share_after_cordon` (shares over worker nodes).
        Findings: `node.many_not_ready`, `node.kubelet_stopped`, `node.not_ready`, `node.network_unavailable`
        (critical); `node.pressure`, `node.capacity_low` (warning); `node.healthy`, `node.cordoned`,
        `node.being_removed`, `node.out_of_service` (info).
        Requests: node list (paged), the Lease, the node's events.
        """
        kube = self.kube_for(ctx)
        nodes = kube.list(path("nodes"))
        node = next((n for n in nodes if name_of(n) == args.node), None)
        if node is None:
            node = kube.get(path("nodes", args.node))  # raises NotFoundError with the usual message
        lease = kube.get_or_none(path("leases", args.node, "kube-node-lease"))
        events = fetch_events(kube, "Node", args.node, None)
        return analyze_node(node, lease, nodes, events, kube.now(), args).emit(ctx)
