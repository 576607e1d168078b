"""Known fields of the kinds runbooks write, for server-side field validation.

The real server decodes into Go structs: an unknown field is dropped, and per `fieldValidation`
(staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go, the decoder's strict mode) it is ignored
(Ignore), reported in a `Warning: 299 - "unknown field \\"spec.foo\\""` header (Warn, the default), or refused
with 400 `... strict decoding error: unknown field "spec.foo"` (Strict, what kubectl sends). The field lists
are those of k8s.io/api (core/v1, apps/v1, batch/v1, policy/v1 types.go); parts not listed here (status,
volumes, probes, custom resources) are not checked.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]  # field -> None (not checked further) | Schema | ("list", Schema)


def _any(*names: str) -> Schema:
    return dict.fromkeys(names)


def _list(schema: Schema) -> tuple[str, Schema]:
    return ("list", schema)


OBJECT_META = _any("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                   "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
                   "ownerReferences", "finalizers", "managedFields")
CONTAINER = _any("name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
                 "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe",
                 "startupProbe", "lifecycle", "terminationMessagePath", "terminationMessagePolicy",
                 "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty", "targetContainerName")
POD_SPEC: Schema = {
    **_any("volumes", "restartPolicy", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy",
           "nodeSelector", "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
           "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext", "imagePullSecrets",
           "hostname", "subdomain", "affinity", "schedulerName", "tolerations", "hostAliases", "priorityClassName",
           "priority", "dnsConfig", "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy",
           "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
           "resourceClaims", "resources"),
    "containers": _list(CONTAINER),
    "initContainers": _list(CONTAINER),
    "ephemeralContainers": _list(CONTAINER),
}
POD_TEMPLATE: Schema = {"metadata": OBJECT_META, "spec": POD_SPEC}
JOB_SPEC: Schema = {
    **_any("parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy", "successPolicy",
           "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes", "selector", "manualSelector",
           "ttlSecondsAfterFinished", "completionMode", "suspend", "podReplacementPolicy", "managedBy"),
    "template": POD_TEMPLATE,
}
CRONJOB_SPEC: Schema = {
    **_any("schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend",
           "successfulJobsHistoryLimit", "failedJobsHistoryLimit"),
    "jobTemplate": {"metadata": OBJECT_META, "spec": JOB_SPEC},
}
_WORKLOAD = ("replicas", "selector", "minReadySeconds", "revisionHistoryLimit")
KINDS: dict[str, Schema] = {
    "Pod": {"spec": POD_SPEC, "status": None},
    "Job": {"spec": JOB_SPEC, "status": None},
    "CronJob": {"spec": CRONJOB_SPEC, "status": None},
    "Deployment": {"spec": {**_any(*_WORKLOAD, "strategy", "paused", "progressDeadlineSeconds"),
                            "template": POD_TEMPLATE}, "status": None},
    "ReplicaSet": {"spec": {**_any(*_WORKLOAD), "template": POD_TEMPLATE}, "status": None},
    "StatefulSet": {"spec": {**_any(*_WORKLOAD, "volumeClaimTemplates", "serviceName", "podManagementPolicy",
                                    "updateStrategy", "persistentVolumeClaimRetentionPolicy", "ordinals"),
                             "template": POD_TEMPLATE}, "status": None},
    "DaemonSet": {"spec": {**_any("selector", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"),
                           "template": POD_TEMPLATE}, "status": None},
    "Node": {"spec": _any("podCIDR", "podCIDRs", "providerID", "unschedulable", "taints", "configSource",
                          "externalID"), "status": None},
    "PodDisruptionBudget": {"spec": _any("minAvailable", "selector", "maxUnavailable",
                                         "unhealthyPodEvictionPolicy"), "status": None},
    "ConfigMap": _any("data", "binaryData", "immutable"),
    "Secret": _any("data", "stringData", "type", "immutable"),
    "Namespace": _any("spec", "status"),
    "Service": _any("spec", "status"),
    "ServiceAccount": _any("secrets", "imagePullSecrets", "automountServiceAccountToken"),
}


def unknown_fields(kind: str, obj: dict) -> list[str]:
    """Dotted paths of fields `kind` does not have (e.g. `spec.template.spec.containers[0].imagee`)."""
    schema = KINDS.get(kind)
    if schema is None:
        return []
    top: Schema = {**_any("apiVersion", "kind"), "metadata": OBJECT_META, **schema}
    return _walk(top, obj, "")


def _walk(schema: Schema, value: Any, prefix: str) -> list[str]:
    if not isinstance(value, dict):
        return []
    found = []
    for key, sub in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in schema:
            found.append(path)
            continue
        rule = schema[key]
        if isinstance(rule, dict):
            found += _walk(rule, sub, path)
        elif isinstance(rule, tuple) and isinstance(sub, list):
            for i, item in enumerate(sub):
                found += _walk(rule[1], item, f"{path}[{i}]")
    return found


def without(obj: dict, paths: list[str]) -> dict:
    """`obj` with the fields at `paths` removed (copying only what changes)."""
    out = obj
    for path in paths:
        out = _drop(out, _split(path))
    return out


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.lstrip("[")
    return parts


def _drop(value: Any, parts: list[str | int]) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict) and isinstance(head, str) and head in value:
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        return {**value, head: _drop(value[head], rest)}
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        return [_drop(v, rest) if i == head else v for i, v in enumerate(value)] if rest else value
    return value
