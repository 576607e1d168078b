"""Per-kind validation the runbooks can trip over: name limits that come from derived names, and enums.

- pkg/apis/batch/validation/validation.go ValidateCronJobCreate: a CronJob name may be at most 52 characters
  (the controller appends an 11-character `-<unix minutes>` to name its Jobs).
- A Job's name becomes the `batch.kubernetes.io/job-name` label of its pod template (pkg/registry/batch/job/
  strategy.go generateSelector), and label values are at most 63 characters (validation.IsValidLabelValue), so
  a longer Job name is refused on `spec.template.labels`.
- Enumerations are checked with field.NotSupported ("Unsupported value: ...: supported values: ...") in
  pkg/apis/core/validation (restartPolicy, imagePullPolicy, taint effect, service type), pkg/apis/batch/validation
  (concurrencyPolicy, completionMode), pkg/apis/apps/validation (strategy types, podManagementPolicy) and
  pkg/apis/policy/validation (unhealthyPodEvictionPolicy).
"""

from __future__ import annotations

from typing import Any

_POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
}
_RESTART_ALL = ("Always", "OnFailure", "Never")
_RESTART_BATCH = ("OnFailure", "Never")
_ENUMS: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "CronJob": ((("spec", "concurrencyPolicy"), ("Allow", "Forbid", "Replace")),),
    "Job": ((("spec", "completionMode"), ("NonIndexed", "Indexed")),),
    "Deployment": ((("spec", "strategy", "type"), ("Recreate", "RollingUpdate")),),
    "StatefulSet": ((("spec", "podManagementPolicy"), ("OrderedReady", "Parallel")),
                    (("spec", "updateStrategy", "type"), ("RollingUpdate", "OnDelete"))),
    "DaemonSet": ((("spec", "updateStrategy", "type"), ("RollingUpdate", "OnDelete")),),
    "Service": ((("spec", "type"), ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")),),
    "PodDisruptionBudget": ((("spec", "unhealthyPodEvictionPolicy"), ("AlwaysAllow", "IfHealthyBudget")),),
}


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _unsupported(field: str, value: Any, allowed: tuple[str, ...]) -> dict[str, str]:
    supported = ", ".join(f'"{v}"' for v in allowed)
    return {"reason": "FieldValueNotSupported", "field": field,
            "message": f'Unsupported value: "{value}": supported values: {supported}'}


def _pod_spec_errors(kind: str, spec: dict, prefix: str) -> list[dict[str, str]]:
    errors = []
    restart = spec.get("restartPolicy")
    allowed = _RESTART_BATCH if kind in ("Job", "CronJob") else _RESTART_ALL
    if restart is not None and restart not in allowed:
        errors.append(_unsupported(f"{prefix}.restartPolicy", restart, allowed))
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            policy = c.get("imagePullPolicy") if isinstance(c, dict) else None
            if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
                errors.append(_unsupported(f"{prefix}.{key}[{i}].imagePullPolicy", policy,
                                           ("Always", "IfNotPresent", "Never")))
    return errors


def kind_errors(kind: str, obj: dict) -> list[dict[str, str]]:
    """Field errors (causes) of `obj` beyond the generic metadata checks."""
    name = str((obj.get("metadata") or {}).get("name") or "")
    errors: list[dict[str, str]] = []
    if kind == "CronJob" and len(name) > 52:
        errors.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": f'Invalid value: "{name}": must be no more than 52 characters'})
    if kind == "Job" and len(name) > 63:
        errors.append({"reason": "FieldValueInvalid", "field": "spec.template.labels",
                       "message": f'Invalid value: "{name}": must be no more than 63 characters'})
    for path, allowed in _ENUMS.get(kind, ()):
        value = _at(obj, path)
        if value is not None and value not in allowed:
            errors.append(_unsupported(".".join(path), value, allowed))
    if kind == "Node":
        for i, taint in enumerate(_at(obj, ("spec", "taints")) or []):
            effect = taint.get("effect") if isinstance(taint, dict) else None
            if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                errors.append(_unsupported(f"spec.taints[{i}].effect", effect,
                                           ("NoExecute", "NoSchedule", "PreferNoSchedule")))
    pod_path = _POD_SPEC.get(kind)
    spec = _at(obj, pod_path) if pod_path else None
    if isinstance(spec, dict) and pod_path:
        errors.extend(_pod_spec_errors(kind, spec, ".".join(pod_path)))
    return errors
