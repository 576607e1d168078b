"""What happens to a pod a controller creates: the scheduler picks a node, the kubelet runs its containers.

How each container image behaves is declared by the scenario, one comment line per image pattern
(shell-style wildcards), among the file's leading comments::

    # kubesim-image: registry.example.com/shop/web:2.4.1 crash
    # kubesim-image: registry.example.com/shop/web:* ready
    # kubesim-image: *:does-not-exist pull-error

Behaviours: `ready` (Running and Ready, the default), `crash` (CrashLoopBackOff after exiting 1),
`pull-error` (Pending, ImagePullBackOff), `complete` (exits 0: Succeeded), `fail` (exits 1: Failed).
The first matching line wins. Pods written in the scenario are never touched: they are served as written.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .objects import format_time, meta, node_ready, utcnow
from .resources import ResourceType
from .scenario import ScenarioError
from .store import Store

BEHAVIOURS = ("ready", "crash", "pull-error", "complete", "fail")
_IMAGE_LINE = re.compile(r"^#\s*kubesim-image:\s*(\S+)\s+(\S+)\s*$")


class BehaviourError(ScenarioError):
    """A `# kubesim-image:` line naming an unknown behaviour."""


@dataclass(frozen=True)
class ImageBehaviours:
    """Image pattern -> behaviour, first match wins; unlisted images are `ready`."""

    rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_text(cls, text: str, source: str = "<string>") -> ImageBehaviours:
        rules = []
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if stripped and stripped != "---" and not stripped.startswith("#"):
                break  # only the leading comments declare behaviours, like `# kubesim-now:`
            m = _IMAGE_LINE.match(stripped)
            if not m:
                continue
            if m.group(2) not in BEHAVIOURS:
                raise BehaviourError(f"{source}:{number}: kubesim-image behaviour {m.group(2)!r} is not one of "
                                     f"{', '.join(BEHAVIOURS)}")
            rules.append((m.group(1), m.group(2)))
        return cls(tuple(rules))

    def merged(self, other: ImageBehaviours) -> ImageBehaviours:
        return ImageBehaviours(self.rules + other.rules)

    def of(self, image: str) -> str:
        return next((b for pattern, b in self.rules if fnmatch.fnmatchcase(image, pattern)), "ready")


@dataclass
class Kubelet:
    """Schedules and 'runs' new pods, synchronously, per the declared behaviours."""

    store: Store
    nodes_rt: ResourceType
    behaviours: ImageBehaviours = field(default_factory=ImageBehaviours)

    def place(self, pod: dict) -> dict:
        """Return `pod` bound to a node and with the status its containers' behaviours give."""
        if (pod.get("spec") or {}).get("nodeName"):
            node = self.store.get(self.nodes_rt, None, pod["spec"]["nodeName"])
        else:
            node = self._pick_node(pod)
        if node is None:
            return {**pod, "status": _unschedulable(len(self._nodes()))}
        spec = {**(pod.get("spec") or {}), "nodeName": meta(node)["name"]}
        pod = {**pod, "spec": spec}
        return {**pod, "status": self._run(pod, node)}

    def _nodes(self) -> list[dict]:
        return self.store.list(self.nodes_rt)[0]

    def _pick_node(self, pod: dict) -> dict | None:
        """Feasible nodes (Ready, schedulable, taints tolerated, nodeSelector matched), fewest pods first."""
        spec = pod.get("spec") or {}
        selector = spec.get("nodeSelector") or {}
        tolerations = spec.get("tolerations") or []
        fits = []
        for node in self._nodes():
            labels = meta(node).get("labels") or {}
            if not node_ready(node) or (node.get("spec") or {}).get("unschedulable"):
                continue
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            taints = [t for t in (node.get("spec") or {}).get("taints") or []
                      if t.get("effect") in ("NoSchedule", "NoExecute")]
            if all(_tolerated(t, tolerations) for t in taints):
                fits.append((len(self.store.pods_on_node(meta(node)["name"])), meta(node)["name"], node))
        return min(fits, key=lambda f: (f[0], f[1]))[2] if fits else None

    def _run(self, pod: dict, node: dict) -> dict:
        spec = pod.get("spec") or {}
        now = format_time(utcnow())
        statuses = [self._container(c, now) for c in spec.get("containers") or []]
        behaviours = [self.behaviours.of(c.get("image", "")) for c in spec.get("containers") or []]
        phase = _phase(behaviours)
        ready = all(b == "ready" for b in behaviours) and phase == "Running"
        host_ip = next((a.get("address") for a in (node.get("status") or {}).get("addresses") or []
                        if a.get("type") == "InternalIP"), "")
        status = {
            "phase": phase,
            "conditions": _conditions(ready, phase, now),
            "hostIP": host_ip,
            "podIP": _pod_ip(meta(pod).get("uid", "")),
            "startTime": now,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }
        if host_ip:
            status["hostIPs"] = [{"ip": host_ip}]
            status["podIPs"] = [{"ip": status["podIP"]}]
        return status

    def _container(self, container: dict, now: str) -> dict:
        image = container.get("image", "")
        behaviour = self.behaviours.of(image)
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        cs: dict = {"name": container.get("name", ""), "image": image, "imageID": f"{image}@{digest}",
                    "containerID": "containerd://" + hashlib.sha256((image + now).encode()).hexdigest(),
                    "ready": behaviour == "ready", "restartCount": 0, "started": behaviour == "ready"}
        if behaviour == "ready":
            cs["state"] = {"running": {"startedAt": now}}
        elif behaviour == "crash":
            cs["restartCount"] = 1
            cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed "
                                       f"container={container.get('name', '')}"}}
            cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}
        elif behaviour == "pull-error":
            cs.update(imageID="", started=False)
            cs.pop("containerID")
            cs["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
        else:
            code, reason = (0, "Completed") if behaviour == "complete" else (1, "Error")
            cs["state"] = {"terminated": {"exitCode": code, "reason": reason, "startedAt": now, "finishedAt": now}}
        return cs


def _phase(behaviours: Iterable[str]) -> str:
    found = set(behaviours)
    if "pull-error" in found:
        return "Pending"
    if found and found <= {"complete"}:
        return "Succeeded"
    if found and found <= {"complete", "fail"}:
        return "Failed"
    return "Running"


def _conditions(ready: bool, phase: str, now: str) -> list[dict]:
    why = "" if ready else ("PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady")
    flag = "True" if ready else "False"
    started = "True" if phase != "Pending" else "False"
    out: list[dict[str, Any]] = [{"type": "PodReadyToStartContainers", "status": started},
                                 {"type": "Initialized", "status": "True"},
                                 {"type": "Ready", "status": flag},
                                 {"type": "ContainersReady", "status": flag},
                                 {"type": "PodScheduled", "status": "True"}]
    for cond in out:
        cond["lastTransitionTime"] = now
        cond["lastProbeTime"] = None
        if cond["status"] == "False" and why:
            cond["reason"] = why
    return out


def _unschedulable(total: int) -> dict:
    return {"phase": "Pending", "qosClass": "BestEffort", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": None,
        "lastTransitionTime": format_time(utcnow()),
        "message": f"0/{total} nodes are available: no node is Ready, schedulable and tolerated."}]}


def _tolerated(taint: dict, tolerations: list[dict]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and (not tol.get("key") or tol.get("key") == taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _pod_ip(uid: str) -> str:
    digest = hashlib.sha256(uid.encode()).digest()
    return f"10.244.{digest[0]}.{digest[1] % 254 + 1}"
