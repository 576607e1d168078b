"""Fields the kubelet and apiserver always populate, filled in when a scenario omits them.

Hand-written scenarios tend to skip e.g. ``nodeInfo.bootID``; real servers never do, and strict
clients (the pydantic-based ``kubernetes`` client) reject objects without them.
"""

from __future__ import annotations

from .objects import meta

_NODE_INFO = (
    "architecture",
    "bootID",
    "containerRuntimeVersion",
    "kernelVersion",
    "kubeProxyVersion",
    "kubeletVersion",
    "machineID",
    "operatingSystem",
    "osImage",
    "systemUUID",
)

_STATUS_KEYS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def _node(obj: dict) -> dict:
    status = obj.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("nodeInfo"), dict):
        return obj
    info = status["nodeInfo"]
    if all(k in info for k in _NODE_INFO):
        return obj
    uid = str(meta(obj).get("uid", "")).replace("-", "")
    filled = {
        "architecture": "amd64",
        "operatingSystem": "linux",
        "bootID": uid,
        "machineID": uid,
        "systemUUID": uid,
        "containerRuntimeVersion": "",
        "kernelVersion": "",
        "osImage": "",
        "kubeletVersion": "",
        "kubeProxyVersion": "",
        **info,
    }
    return {**obj, "status": {**status, "nodeInfo": filled}}


def _container_statuses(obj: dict) -> dict:
    status = obj.get("status")
    if not isinstance(status, dict):
        return obj
    if all(
        isinstance(cs, dict) and "imageID" in cs and "restartCount" in cs and "image" in cs and "ready" in cs
        for key in _STATUS_KEYS
        for cs in status.get(key) or ()
    ):
        return obj
    spec = obj.get("spec") or {}
    images = {
        c.get("name"): c.get("image", "")
        for key in ("containers", "initContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    }
    changed = {}
    for key in _STATUS_KEYS:
        statuses = status.get(key)
        if not isinstance(statuses, list):
            continue
        fixed = []
        for cs in statuses:
            if isinstance(cs, dict) and not all(
                k in cs for k in ("image", "imageID", "ready", "restartCount")
            ):
                cs = {
                    "image": images.get(cs.get("name"), ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    **cs,
                }
            fixed.append(cs)
        if fixed != statuses:
            changed[key] = fixed
    return {**obj, "status": {**status, **changed}} if changed else obj


def apply_defaults(obj: dict) -> dict:
    """Return ``obj`` (or a shallow-copied variant) with always-present server fields filled."""
    kind = obj.get("kind")
    if kind == "Node":
        return _node(obj)
    if kind == "Pod":
        return _container_statuses(obj)
    return obj
