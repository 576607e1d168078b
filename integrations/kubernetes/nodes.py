"""`k8s.node.inspect`: why a node is NotReady, and whether it is this node's problem at all.

The first question in a node-not-ready incident is not "what is wrong with node-b" but "is it only
node-b": when a third of the nodes drop at once, the cause is a zone, the network or the control
plane, and cordoning or draining nodes one by one makes it worse. So the inspection always looks at
the whole node list (a few paged requests even for 5,000 nodes) before classifying this node.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.redaction import redact
from integrations.kubernetes.base import KubeActions
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


def analyze_node(
    node: dict[str, Any],
    lease: dict[str, Any] | None,
    nodes: list[dict[str, Any]],
    events: list[dict[str, Any]],
    now: datetime,
    args: NodeInspectArgs,
) -> Report:
    name = name_of(node)
    obj = f"Node {name}"
    spec, status = node.get("spec") or {}, node.get("status") or {}
    conds = {
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
    ready = ready_status(node)
    renew = (lease or {}).get("spec", {}).get("renewTime")
    lease_age = age_seconds(renew, now)
    lease_stale = None if lease is None else (lease_age is None or lease_age > args.lease_grace_seconds)
    heartbeat_source = "lease" if lease_age is not None else None
    if lease is None:  # clusters without node leases: the Ready condition's heartbeat is the next best clock
        lease_age = age_seconds((condition(node, "Ready") or {}).get("lastHeartbeatTime"), now)
        heartbeat_source = "node_status" if lease_age is not None else None
    node_taints = [{"key": t.get("key"), "effect": t.get("effect")} for t in taints(node)]
    taint_keys = {t["key"] for t in node_taints}
    pressures = [p for p in PRESSURES if conds.get(p, {}).get("status") == "True"]
    net_down = conds.get("NetworkUnavailable", {}).get("status") == "True"
    view = cluster_view(nodes, name)
    threshold = args.many_not_ready_count
    count = view["not_ready_count"]
    many = count >= 2 and (view["not_ready_share"] >= args.many_not_ready_share
                           or (threshold is not None and count >= threshold))
    stopped = bool(lease_stale) or ready == "Unknown" or UNREACHABLE_TAINT in taint_keys
    if ready != "True" and many:
        cause = "many_nodes_not_ready"
    elif stopped:
        cause = "kubelet_stopped"
    elif ready == "False":
        cause = "kubelet_not_ready"
    elif net_down:
        cause = "network_unavailable"
    elif pressures:
        cause = "pressure"
    else:
        cause = "healthy"
    info = status.get("nodeInfo") or {}
    summary_events = summarize_events(events, 10)
    output: dict[str, Any] = {
        "node": name,
        "cause": cause,
        "ready": ready == "True",
        "ready_status": ready,
        "ready_reason": conds.get("Ready", {}).get("reason"),
        "ready_message": conds.get("Ready", {}).get("message"),
        "conditions": conds,
        "lease_renew_time": renew,
        "lease_age_seconds": None if lease_age is None else round(lease_age, 1),
        "lease_stale": lease_stale,
        "heartbeat_source": heartbeat_source,
        "pressures": pressures,
        "network_unavailable": net_down,
        "taints": node_taints,
        "unreachable": UNREACHABLE_TAINT in taint_keys,
        "unschedulable": bool(spec.get("unschedulable")),
        "control_plane": is_control_plane(node),
        "zone": labels(node).get(ZONE_LABEL),
        "kubelet_version": info.get("kubeletVersion"),
        "container_runtime": info.get("containerRuntimeVersion"),
        "kernel_version": info.get("kernelVersion"),
        "os_image": info.get("osImage"),
        "events": summary_events,
        **view,
    }
    report = Report(output)
    ready_ev = ev(obj, "status.conditions[Ready]", _cond_text(conds.get("Ready"), now))
    lease_ev = ev(f"Lease kube-node-lease/{name}", "spec.renewTime",
                  stamp_with_age(renew, now) if lease is not None else "no Lease object")
    notable = [ev(f"Event {e['reason']}", "message", f"{e['message']} (x{e['count']}, last {e['last_seen']})")
               for e in summary_events if e["reason"] in NOTABLE_EVENTS][:3]
    if cause == "many_nodes_not_ready":
        zones = view["not_ready_by_zone"]
        where = ", ".join(f"{z}: {c}" for z, c in zones.items())
        report.add(
            "node.many_not_ready", "critical",
            f"{view['not_ready_count']} of {view['nodes_total']} nodes ({view['not_ready_share']:.0%}) are NotReady "
            f"(by zone: {where}): this looks like a zone, network or control-plane failure rather than {name} "
            "alone; do not cordon or drain nodes one by one",
            [ready_ev, *[ev(f"Node {n}", "status.conditions[Ready]", "not True") for n in view["not_ready_nodes"][:5]
                         if n != name]],
        )
    elif cause == "kubelet_stopped":
        since = human_duration(lease_age) if lease_age is not None else "an unknown time"
        report.add(
            "node.kubelet_stopped", "critical",
            f"kubelet on {name} stopped reporting: Lease last renewed {since} ago "
            f"(grace {args.lease_grace_seconds}s), Ready={ready}"
            + (f" ({conds['Ready']['reason']})" if conds.get("Ready", {}).get("reason") else "")
            + ("; the node is tainted unreachable" if UNREACHABLE_TAINT in taint_keys else ""),
            [lease_ev, ready_ev, *([ev(obj, "spec.taints", sorted(k for k in taint_keys if k))] if taint_keys else []),
             *notable],
        )
    elif cause == "kubelet_not_ready":
        ready_cond = conds.get("Ready", {})
        report.add(
            "node.not_ready", "critical",
            f"{name} is NotReady while its kubelet is still reporting: {ready_cond.get('reason') or 'no reason'}: "
            f"{ready_cond.get('message') or 'no message'}",
            [ready_ev, lease_ev, *notable],
        )
    elif cause == "network_unavailable":
        why = conds["NetworkUnavailable"].get("message") or "route or CNI not set up"
        report.add(
            "node.network_unavailable", "critical", f"{name} reports NetworkUnavailable: {why}",
            [ev(obj, "status.conditions[NetworkUnavailable]", _cond_text(conds["NetworkUnavailable"], now))],
        )
    if pressures and cause != "many_nodes_not_ready":
        report.add(
            "node.pressure", "warning",
            f"{name} reports {', '.join(pressures)}: the kubelet is evicting pods and refusing new ones",
            [ev(obj, f"status.conditions[{p}]", _cond_text(conds[p], now)) for p in pressures],
        )
    if cause != "healthy" and view["schedulable_share_after_cordon"] < 0.5:
        report.add(
            "node.capacity_low", "warning",
            f"only {view['schedulable_nodes']} of {view['nodes_total']} nodes are schedulable; without {name} "
            f"{view['schedulable_share_after_cordon']:.0%} of capacity remains for rescheduled pods",
            [ev("NodeList", "items[*].status.conditions[Ready], spec.unschedulable, spec.taints",
                f"{view['schedulable_nodes']}/{view['nodes_total']} schedulable")],
        )
    if cause == "healthy":
        hb = f"heartbeat {human_duration(lease_age)} ago" if lease_age is not None else "no Lease"
        report.add("node.healthy", "info",
                   f"{name} is Ready ({hb}), no pressure conditions; {view['not_ready_count']} of "
                   f"{view['nodes_total']} nodes are NotReady", [ready_ev, lease_ev])
    if spec.get("unschedulable"):
        report.add("node.cordoned", "info", f"{name} is cordoned (spec.unschedulable=true)",
                   [ev(obj, "spec.unschedulable", True)])
    return report


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

        Output: `cause` (healthy | kubelet_stopped | kubelet_not_ready | pressure | network_unavailable |
        many_nodes_not_ready), `ready`, `ready_status`, `ready_reason`, `ready_message`, `conditions`,
        `lease_renew_time`, `lease_age_seconds` (from the Lease, else from Ready.lastHeartbeatTime: see
        `heartbeat_source` = lease | node_status | None), `lease_stale` (None without a Lease), `pressures`,
        `network_unavailable`, `taints`, `unreachable`, `unschedulable`, `control_plane`, `zone`,
        `kubelet_version`, `container_runtime`, `kernel_version`, `os_image`, `events`, `nodes_total`,
        `not_ready_nodes`, `not_ready_count`, `not_ready_share`, `not_ready_by_zone`, `schedulable_nodes`,
        `schedulable_share`, `schedulable_share_after_cordon` (shares over worker nodes).
        Findings: `node.many_not_ready`, `node.kubelet_stopped`, `node.not_ready`, `node.network_unavailable`
        (critical); `node.pressure`, `node.capacity_low` (warning); `node.healthy`, `node.cordoned` (info).
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
