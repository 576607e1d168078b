"""Decode why a pod's containers are not running: exit codes, waiting reasons, kubelet messages.

Pure functions over the pod dict, shared by `k8s.pod.inspect`, `k8s.cronjob.inspect` and the node
actions. The aim is the sentence an SRE would say ("OOMKilled at its 256Mi limit", "Secret billing-db
does not exist"), with the exact fields that prove it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.redaction import redact

SIGNALS = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM"}

# Most specific first: a pod with an OOMKilled sidecar and a missing Secret is blocked by the Secret.
CAUSE_ORDER = (
    "missing_secret",
    "missing_configmap",
    "missing_key",
    "config_error",
    "image_pull",
    "oom_killed",
    "crash_loop",
    "exit_code",
    "unschedulable",
    "pending",
    "healthy",
)

_MISSING_OBJECT = re.compile(r'(?P<kind>secret|configmap) "(?P<name>[^"]+)" not found', re.IGNORECASE)
_MISSING_KEY = re.compile(
    r"couldn't find key (?P<key>\S+) in (?P<kind>Secret|ConfigMap) (?P<ns>[^/\s]+)/(?P<name>\S+)", re.IGNORECASE
)
_IMAGE = re.compile(r'(?:image|pull(?:ing)? image|Back-off pulling image) "(?P<image>[^"]+)"', re.IGNORECASE)


@dataclass(frozen=True)
class MissingObject:
    kind: str  # Secret | ConfigMap
    name: str
    namespace: str
    key: str | None = None


@dataclass
class ContainerState:
    """One container's condition, decoded."""

    name: str
    init: bool
    image: str
    ready: bool
    restarts: int
    state: str  # running | waiting | terminated | unknown
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    signal: str | None = None
    meaning: str = ""
    last_reason: str = ""
    last_exit_code: int | None = None
    last_finished_at: str | None = None
    memory_limit: str | None = None
    cause: str = "healthy"
    missing: MissingObject | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PodState:
    namespace: str
    name: str
    phase: str
    node: str | None
    cause: str
    summary: str
    containers: list[ContainerState] = field(default_factory=list)
    scheduling_message: str = ""

    @property
    def worst(self) -> ContainerState | None:
        bad = [c for c in self.containers if c.cause != "healthy"]
        return min(bad, key=lambda c: CAUSE_ORDER.index(c.cause)) if bad else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["containers"] = [c.as_dict() for c in self.containers]
        return data


def explain_exit_code(code: int | None, reason: str = "") -> str:
    """What an exit code usually means: 137 is SIGKILL (OOMKilled when the reason says so), 143 SIGTERM..."""
    if code is None:
        return ""
    if reason == "OOMKilled":
        return f"exit {code}: killed by the kernel OOM killer (memory limit reached)"
    if code == 0:
        return "exit 0: completed successfully"
    if code == 1:
        return "exit 1: the application failed (generic error; see its log)"
    if code == 2:
        return "exit 2: misuse of a shell builtin or invalid arguments"
    if code == 126:
        return "exit 126: command found but not executable"
    if code == 127:
        return "exit 127: command not found in the image"
    if code == 255:
        return "exit 255: exit status out of range or fatal runtime error"
    if 128 < code < 160:
        sig = code - 128
        name = SIGNALS.get(sig, f"signal {sig}")
        extra = {
            9: "SIGKILL: killed from outside (OOM killer, kubelet eviction, or preStop/termination timeout)",
            11: "SIGSEGV: segmentation fault in the process",
            15: "SIGTERM: asked to stop (deletion, eviction, rollout or activeDeadlineSeconds)",
            6: "SIGABRT: the process aborted itself",
        }.get(sig, name)
        return f"exit {code}: {extra}"
    return f"exit {code}: the application exited with an error"


def parse_config_error(message: str, namespace: str) -> MissingObject | None:
    """The Secret/ConfigMap (and key) a `CreateContainerConfigError` message names, if any."""
    found = _MISSING_KEY.search(message)
    if found:
        kind = "Secret" if found["kind"].lower() == "secret" else "ConfigMap"
        return MissingObject(kind, found["name"], found["ns"], found["key"])
    found = _MISSING_OBJECT.search(message)
    if found:
        kind = "Secret" if found["kind"].lower() == "secret" else "ConfigMap"
        return MissingObject(kind, found["name"], namespace)
    return None


def memory_limits(pod: dict[str, Any]) -> dict[str, str]:
    spec = pod.get("spec") or {}
    out: dict[str, str] = {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if limit:
            out[c["name"]] = str(limit)
    return out


def decode_container(status: dict[str, Any], namespace: str, init: bool, limits: dict[str, str]) -> ContainerState:
    state_obj = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    kind = next((k for k in ("waiting", "terminated", "running") if k in state_obj), "unknown")
    detail = state_obj.get(kind) or {}
    c = ContainerState(
        name=str(status.get("name", "")),
        init=init,
        image=str(status.get("image", "")),
        ready=bool(status.get("ready")),
        restarts=int(status.get("restartCount") or 0),
        state=kind,
        reason=str(detail.get("reason") or ""),
        message=redact(str(detail.get("message") or ""))[:500],
        exit_code=detail.get("exitCode"),
        last_reason=str(last.get("reason") or ""),
        last_exit_code=last.get("exitCode"),
        last_finished_at=last.get("finishedAt"),
        memory_limit=limits.get(str(status.get("name", ""))),
    )
    code = c.exit_code if c.exit_code is not None else c.last_exit_code
    reason = c.reason if c.exit_code is not None else c.last_reason
    if code is not None and code > 128:
        c.signal = SIGNALS.get(code - 128, f"signal {code - 128}")
    c.meaning = explain_exit_code(code, reason)
    c.cause = _container_cause(c, namespace)
    return c


def _container_cause(c: ContainerState, namespace: str) -> str:
    if c.state == "waiting":
        if c.reason == "CreateContainerConfigError":
            c.missing = parse_config_error(c.message, namespace)
            if c.missing is None:
                return "config_error"
            if c.missing.key:
                return "missing_key"
            return "missing_secret" if c.missing.kind == "Secret" else "missing_configmap"
        if c.reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"):
            found = _IMAGE.search(c.message)
            if found:
                c.image = found["image"]
            return "image_pull"
        if c.reason == "CrashLoopBackOff":
            return "oom_killed" if c.last_reason == "OOMKilled" else "crash_loop"
        if c.reason == "CreateContainerError":
            return "config_error"
        return "healthy"  # ContainerCreating, PodInitializing: transient by themselves
    if c.state == "terminated":
        if c.reason == "OOMKilled":
            return "oom_killed"
        if c.exit_code not in (0, None):
            return "exit_code"
        return "healthy"
    if c.last_reason == "OOMKilled" and c.restarts:
        return "oom_killed"
    return "healthy"


def decode_pod(pod: dict[str, Any]) -> PodState:
    """The pod's containers decoded and its single most important cause."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    ns = str(meta.get("namespace", ""))
    limits = memory_limits(pod)
    containers = [decode_container(s, ns, True, limits) for s in status.get("initContainerStatuses") or []]
    containers += [decode_container(s, ns, False, limits) for s in status.get("containerStatuses") or []]
    state = PodState(
        namespace=ns,
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or "Unknown"),
        node=(pod.get("spec") or {}).get("nodeName"),
        cause="healthy",
        summary="",
        containers=containers,
    )
    worst = state.worst
    if worst is not None:
        state.cause = worst.cause
        state.summary = describe(worst, ns)
    elif state.phase == "Pending":
        scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if scheduled and scheduled.get("status") == "False":
            state.cause = "unschedulable"
            state.scheduling_message = redact(str(scheduled.get("message") or ""))
            state.summary = f"cannot be scheduled: {state.scheduling_message or scheduled.get('reason')}"
        elif not containers:
            state.cause, state.summary = "pending", "pending, no container started yet"
    if state.cause == "healthy":
        state.summary = f"{state.phase}, containers healthy"
    return state


def describe(c: ContainerState, namespace: str) -> str:
    """One sentence for a container's problem."""
    who = f"{'init ' if c.init else ''}container {c.name}"
    if c.missing is not None:
        m = c.missing
        if m.key:
            return f"{who} cannot start: key {m.key} is missing from {m.kind} {m.namespace}/{m.name}"
        return f"{who} cannot start: {m.kind} {m.namespace}/{m.name} does not exist"
    if c.cause == "config_error":
        return f"{who} cannot start ({c.reason}): {c.message}"
    if c.cause == "image_pull":
        return f"{who} cannot pull image {c.image} ({c.reason})"
    if c.cause == "oom_killed":
        limit = f" at its memory limit {c.memory_limit}" if c.memory_limit else " (no memory limit set: node OOM)"
        return f"{who} was OOMKilled{limit} ({c.restarts} restarts)"
    if c.cause == "crash_loop":
        return f"{who} is crash-looping ({c.restarts} restarts); last {c.meaning or 'exit unknown'}"
    if c.cause == "exit_code":
        return f"{who} failed: {c.meaning}"
    return f"{who} is {c.state}"
