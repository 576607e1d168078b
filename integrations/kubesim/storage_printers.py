"""Table columns for storage, autoscaling and ingress kinds: ports of the matching printers in
kubernetes/pkg/printers/internalversion/printers.go (printPersistentVolumeClaim, printPersistentVolume,
printStorageClass, printHorizontalPodAutoscaler, printIngress)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .objects import age, meta

Column = tuple[str, str, int]
_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
_N: Column = ("Name", "string", 0)
_AGE: Column = ("Age", "string", 0)


def _modes(modes: Any) -> str:
    return ",".join(_MODES.get(m, m) for m in modes or [])


def _age(obj: dict, now: datetime) -> str:
    return age(meta(obj).get("creationTimestamp"), now)


def pvc_row(obj: dict, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if meta(obj).get("deletionTimestamp") else status.get("phase", "")
    capacity = (status.get("capacity") or {}).get("storage", "") if spec.get("volumeName") or status else ""
    return [meta(obj)["name"], phase, spec.get("volumeName", ""), capacity, _modes(status.get("accessModes")),
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>", _age(obj, now),
            spec.get("volumeMode", "Filesystem")]


def pv_row(obj: dict, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else ""
    phase = "Terminating" if meta(obj).get("deletionTimestamp") else status.get("phase", "")
    return [meta(obj)["name"], (spec.get("capacity") or {}).get("storage", ""), _modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", "Retain"), phase, claim, spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>", status.get("reason", ""), _age(obj, now),
            spec.get("volumeMode", "Filesystem")]


def storageclass_row(obj: dict, now: datetime) -> list[Any]:
    name = meta(obj)["name"]
    if (meta(obj).get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy", "Delete"),
            obj.get("volumeBindingMode", "Immediate"), bool(obj.get("allowVolumeExpansion", False)), _age(obj, now)]


def _hpa_targets(obj: dict) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    current = {(m.get("resource") or {}).get("name"): (m.get("resource") or {}).get("current") or {}
               for m in status.get("currentMetrics") or [] if m.get("type") == "Resource"}
    shown = []
    for metric in spec.get("metrics") or []:
        if metric.get("type") != "Resource":
            shown.append("<unknown>/<unknown>")
            continue
        res = metric.get("resource") or {}
        target, now = res.get("target") or {}, current.get(res.get("name")) or {}
        if target.get("type") == "Utilization":
            value = f"{now['averageUtilization']}%" if "averageUtilization" in now else "<unknown>"
            shown.append(f"{res.get('name')}: {value}/{target.get('averageUtilization')}%")
        else:
            value = now.get("averageValue", "<unknown>")
            shown.append(f"{res.get('name')}: {value}/{target.get('averageValue') or target.get('value')}")
    return ", ".join(shown) or "<none>"


def hpa_row(obj: dict, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [meta(obj)["name"], f"{ref.get('kind')}/{ref.get('name')}", _hpa_targets(obj),
            spec.get("minReplicas", 1), spec.get("maxReplicas", 0), status.get("currentReplicas", 0), _age(obj, now)]


def ingress_row(obj: dict, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    hosts = ",".join(r.get("host", "") for r in spec.get("rules") or [] if r.get("host")) or "*"
    lbs = (status.get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(i.get("ip") or i.get("hostname") or "" for i in lbs)
    ports = "80, 443" if spec.get("tls") else "80"
    return [meta(obj)["name"], spec.get("ingressClassName") or "<none>", hosts, address, ports, _age(obj, now)]


PRINTERS: dict[str, tuple[list[Column], Any]] = {
    "persistentvolumeclaims": ([_N, ("Status", "string", 0), ("Volume", "string", 0), ("Capacity", "string", 0),
                                ("Access Modes", "string", 0), ("StorageClass", "string", 0),
                                ("VolumeAttributesClass", "string", 0), _AGE, ("VolumeMode", "string", 1)], pvc_row),
    "persistentvolumes": ([_N, ("Capacity", "string", 0), ("Access Modes", "string", 0),
                           ("Reclaim Policy", "string", 0), ("Status", "string", 0), ("Claim", "string", 0),
                           ("StorageClass", "string", 0), ("VolumeAttributesClass", "string", 0),
                           ("Reason", "string", 0), _AGE, ("VolumeMode", "string", 1)], pv_row),
    "storageclasses.storage.k8s.io": ([_N, ("Provisioner", "string", 0), ("ReclaimPolicy", "string", 0),
                                       ("VolumeBindingMode", "string", 0), ("AllowVolumeExpansion", "string", 0),
                                       _AGE], storageclass_row),
    "horizontalpodautoscalers.autoscaling": ([_N, ("Reference", "string", 0), ("Targets", "string", 0),
                                              ("MinPods", "string", 0), ("MaxPods", "integer", 0),
                                              ("Replicas", "integer", 0), _AGE], hpa_row),
    "ingresses.networking.k8s.io": ([_N, ("Class", "string", 0), ("Hosts", "string", 0), ("Address", "string", 0),
                                     ("Ports", "string", 0), _AGE], ingress_row),
}
