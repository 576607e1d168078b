"""Cell printers for server-side Tables: ports of kubernetes/pkg/printers/internalversion.

Each printer turns one object into the row cells kubectl shows (STATUS reasons, READY counts,
RESTARTS with last-restart age, ...), so output matches a real cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .objects import age, human_duration, meta, parse_time

Cells = list[Any]
Printer = Callable[[dict, datetime], Cells]


def spec_of(obj: dict) -> dict:
    return obj.get("spec") or {}


def status_of(obj: dict) -> dict:
    return obj.get("status") or {}


def _age(obj: dict, now: datetime) -> str:
    return age(meta(obj).get("creationTimestamp"), now)


def _since(value: Any, now: datetime, empty: str = "<none>") -> str:
    return age(value, now) if value else empty


def _images(obj: dict) -> tuple[str, str]:
    template = (spec_of(obj).get("jobTemplate") or {}).get("spec", {}).get("template") or spec_of(obj).get(
        "template"
    )
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


def _selector(obj: dict) -> str:
    sel = spec_of(obj).get("selector") or {}
    parts = [f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or []:
        parts.append(
            f"{expr.get('key')} {expr.get('operator', '').lower()} ({','.join(expr.get('values') or [])})"
        )
    return ",".join(parts) or "<none>"


# -- nodes -----------------------------------------------------------------------------------
def node_status(obj: dict) -> str:
    statuses = []
    for cond in status_of(obj).get("conditions") or []:
        if cond.get("type") == "Ready":
            statuses.append("Ready" if cond.get("status") == "True" else "NotReady")
    if not statuses:
        statuses.append("Unknown")
    if spec_of(obj).get("unschedulable"):
        statuses.append("SchedulingDisabled")
    return ",".join(statuses)


def node_roles(obj: dict) -> str:
    roles = set()
    for key, value in (meta(obj).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def node_row(obj: dict, now: datetime) -> Cells:
    st = status_of(obj)
    info = st.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    return [
        meta(obj)["name"],
        node_status(obj),
        node_roles(obj),
        _age(obj, now),
        info.get("kubeletVersion", ""),
        addrs.get("InternalIP", "<none>"),
        addrs.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


# -- pods ------------------------------------------------------------------------------------
def pod_status_reason(obj: dict) -> str:
    """The STATUS column: port of printPod's reason logic (CrashLoopBackOff, OOMKilled, Init:...)."""
    st, spec, m = status_of(obj), spec_of(obj), meta(obj)
    reason = st.get("reason") or st.get("phase") or ""
    init_statuses = st.get("initContainerStatuses") or []
    initializing = False
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = (
                "Init:" + term["reason"]
                if term.get("reason")
                else (
                    f"Init:Signal:{term['signal']}"
                    if term.get("signal")
                    else f"Init:ExitCode:{term.get('exitCode', 0)}"
                )
            )
        elif waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(st.get("containerStatuses") or []):
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = (
                    f"Signal:{term['signal']}"
                    if term.get("signal")
                    else f"ExitCode:{term.get('exitCode', 0)}"
                )
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
            )
            reason = "Running" if ready else "NotReady"
    if m.get("deletionTimestamp") and st.get("reason") == "NodeLost":
        reason = "Unknown"
    elif m.get("deletionTimestamp") and st.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason


def pod_row(obj: dict, now: datetime) -> Cells:
    st, spec = status_of(obj), spec_of(obj)
    statuses = st.get("containerStatuses") or []
    ready = sum(
        1 for cs in statuses if cs.get("ready") and (cs.get("state") or {}).get("running") is not None
    )
    total = len(spec.get("containers") or []) + sum(
        1 for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
    )
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    last_restart: datetime | None = None
    for cs in statuses:
        finished = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished
    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        gates_cell = f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}"
    return [
        meta(obj)["name"],
        f"{ready}/{total}",
        pod_status_reason(obj),
        restarts_cell,
        _age(obj, now),
        st.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        st.get("nominatedNodeName") or "<none>",
        gates_cell,
    ]


# -- workloads -------------------------------------------------------------------------------
def _conds(obj: dict) -> set[str]:
    return {c.get("type", "") for c in status_of(obj).get("conditions") or [] if c.get("status") == "True"}


def job_status(obj: dict) -> str:
    conds = _conds(obj)
    for cond, label in (("Complete", "Complete"), ("Failed", "Failed")):
        if cond in conds:
            return label
    if meta(obj).get("deletionTimestamp"):
        return "Terminating"
    for cond in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if cond in conds:
            return cond
    return "Running"


def job_row(obj: dict, now: datetime) -> Cells:
    spec, st = spec_of(obj), status_of(obj)
    succeeded = int(st.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism") or 1) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = ""
    if start and end:
        duration = human_duration((end - start).total_seconds())
    elif start:
        duration = human_duration((now - start).total_seconds())
    names, images = _images(obj)
    return [
        meta(obj)["name"],
        job_status(obj),
        completions,
        duration,
        _age(obj, now),
        names,
        images,
        _selector(obj),
    ]


def cronjob_row(obj: dict, now: datetime) -> Cells:
    spec, st = spec_of(obj), status_of(obj)
    suspend = spec.get("suspend")
    names, images = _images(obj)
    return [
        meta(obj)["name"],
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        "<unset>" if suspend is None else ("True" if suspend else "False"),
        len(st.get("active") or []),
        _since(st.get("lastScheduleTime"), now),
        _age(obj, now),
        names,
        images,
        "<none>",
    ]


def deployment_row(obj: dict, now: datetime) -> Cells:
    spec, st = spec_of(obj), status_of(obj)
    names, images = _images(obj)
    return [
        meta(obj)["name"],
        f"{int(st.get('readyReplicas') or 0)}/{int(spec.get('replicas', 1))}",
        int(st.get("updatedReplicas") or 0),
        int(st.get("availableReplicas") or 0),
        _age(obj, now),
        names,
        images,
        _selector(obj),
    ]


def replicaset_row(obj: dict, now: datetime) -> Cells:
    spec, st = spec_of(obj), status_of(obj)
    names, images = _images(obj)
    return [
        meta(obj)["name"],
        int(spec.get("replicas", 1)),
        int(st.get("replicas") or 0),
        int(st.get("readyReplicas") or 0),
        _age(obj, now),
        names,
        images,
        _selector(obj),
    ]


def statefulset_row(obj: dict, now: datetime) -> Cells:
    spec, st = spec_of(obj), status_of(obj)
    names, images = _images(obj)
    return [
        meta(obj)["name"],
        f"{int(st.get('readyReplicas') or 0)}/{int(spec.get('replicas', 1))}",
        _age(obj, now),
        names,
        images,
    ]


def daemonset_row(obj: dict, now: datetime) -> Cells:
    st = status_of(obj)
    node_sel = ((spec_of(obj).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    names, images = _images(obj)
    return [
        meta(obj)["name"],
        int(st.get("desiredNumberScheduled") or 0),
        int(st.get("currentNumberScheduled") or 0),
        int(st.get("numberReady") or 0),
        int(st.get("updatedNumberScheduled") or 0),
        int(st.get("numberAvailable") or 0),
        ",".join(f"{k}={v}" for k, v in node_sel.items()) or "<none>",
        _age(obj, now),
        names,
        images,
        _selector(obj),
    ]


def pdb_row(obj: dict, now: datetime) -> Cells:
    spec = spec_of(obj)
    return [
        meta(obj)["name"],
        str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
        str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
        int(status_of(obj).get("disruptionsAllowed") or 0),
        _age(obj, now),
    ]


# -- core misc -------------------------------------------------------------------------------
def event_row(obj: dict, now: datetime) -> Cells:
    first = obj.get("firstTimestamp") or obj.get("eventTime")
    last = obj.get("lastTimestamp") or first
    count = int(obj.get("count") or 0) or 1
    series = obj.get("series")
    if series:
        last, count = series.get("lastObservedTime"), int(series.get("count") or count)
    inv = obj.get("involvedObject") or {}
    kind = str(inv.get("kind", "")).lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = obj.get("source") or {}
    component = src.get("component") or obj.get("reportingComponent") or ""
    host = src.get("host") or obj.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [
        _since(last, now, "<unknown>"),
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        inv.get("fieldPath", ""),
        source,
        str(obj.get("message", "")).strip(),
        _since(first, now, "<unknown>"),
        count,
        meta(obj)["name"],
    ]


def _node_port(port: dict) -> str:
    return f":{port['nodePort']}" if port.get("nodePort") else ""


def service_row(obj: dict, now: datetime) -> Cells:
    spec = spec_of(obj)
    ingress = (status_of(obj).get("loadBalancer") or {}).get("ingress") or []
    external = (
        ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
        or ",".join(spec.get("externalIPs") or [])
        or ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    )
    ports = (
        ",".join(
            f"{p.get('port')}{_node_port(p)}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []
        )
        or "<none>"
    )
    sel = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
    return [
        meta(obj)["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        external,
        ports,
        _age(obj, now),
        sel,
    ]


def simple_row(*cells: Callable[[dict], Any]) -> Printer:
    def printer(obj: dict, now: datetime) -> Cells:
        return [meta(obj)["name"], *(c(obj) for c in cells), _age(obj, now)]

    return printer


def default_row(obj: dict, now: datetime) -> Cells:
    return [meta(obj)["name"], meta(obj).get("creationTimestamp")]
