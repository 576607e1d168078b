"""Generic create/update validation producing the real server's 400/422 answers."""

from __future__ import annotations

import re

from .errors import ApiError, bad_request, invalid
from .kindrules import kind_errors
from .resources import ResourceType

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{_SUBDOMAIN}')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{_LABEL}')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    f"character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    f"validation is '{_DNS1035}')"
)

# kind -> (regex, message, max length); RBAC kinds only need a valid path segment.
_NAME_RULES: dict[str, tuple[str, str, int]] = {
    "Namespace": (_LABEL, _LABEL_MSG, 63),
    "Service": (_DNS1035, _DNS1035_MSG, 63),
}
_PATH_SEGMENT_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def _cause(field: str, reason: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def name_errors(rt: ResourceType, name: str) -> list[dict[str, str]]:
    if rt.kind in _PATH_SEGMENT_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return [
                _cause(
                    "metadata.name",
                    "FieldValueInvalid",
                    f"Invalid value: \"{name}\": may not contain '/' or '%'",
                )
            ]
        return []
    regex, msg, max_len = _NAME_RULES.get(rt.kind, (_SUBDOMAIN, _SUBDOMAIN_MSG, 253))
    errors = []
    if len(name) > max_len:
        errors.append(
            _cause(
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be no more than {max_len} characters',
            )
        )
    if not re.fullmatch(regex, name):
        errors.append(_cause("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {msg}'))
    return errors


def check_type(rt: ResourceType, obj: dict) -> None:
    """The body's apiVersion/kind must name the resource of the URL (400 otherwise)."""
    if not isinstance(obj, dict):
        raise bad_request("the object provided is unrecognized (must be of type " + rt.kind + ")")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if kind and kind != rt.kind:
        raise bad_request(
            f'{kind} in version "{api_version or rt.version}" cannot be handled as a {rt.kind}: '
            f'no kind "{kind}" is registered for version "{api_version}" in scheme '
            '"pkg/api/legacyscheme/scheme.go:30"'
        )
    if api_version and api_version != rt.api_version:
        group = api_version.split("/")[0] if "/" in api_version else ""
        if group != rt.group:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )


def check_namespace(rt: ResourceType, obj: dict, namespace: str | None) -> None:
    body_ns = (obj.get("metadata") or {}).get("namespace")
    if rt.namespaced and body_ns and namespace and body_ns != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )


def validate(rt: ResourceType, obj: dict) -> None:
    """Field validation for create/update; raises a 422 Invalid ApiError listing every cause."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    causes: list[dict[str, str]] = []
    if not name:
        causes.append(
            _cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
        )
    else:
        causes.extend(name_errors(rt, name))
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is not None and not isinstance(values, dict):
            causes.append(_cause(f"metadata.{field}", "FieldValueInvalid", "Invalid value: must be a map"))
    if rt.kind == "Pod":
        containers = (obj.get("spec") or {}).get("containers")
        if not containers:
            causes.append(_cause("spec.containers", "FieldValueRequired", "Required value"))
        else:
            for i, c in enumerate(containers):
                if not isinstance(c, dict) or not c.get("name"):
                    causes.append(
                        _cause(f"spec.containers[{i}].name", "FieldValueRequired", "Required value")
                    )
                elif not c.get("image"):
                    causes.append(
                        _cause(f"spec.containers[{i}].image", "FieldValueRequired", "Required value")
                    )
    causes.extend(kind_errors(rt.kind, obj))
    if causes:
        raise invalid(rt, name, causes)


def require_name_match(rt: ResourceType, obj: dict, name: str) -> None:
    body_name = (obj.get("metadata") or {}).get("name")
    if body_name and body_name != name:
        raise bad_request(
            "the name of the object ("
            + str(body_name)
            + ") does not match the name on the URL ("
            + name
            + ")"
        )


__all__ = ["ApiError", "check_namespace", "check_type", "require_name_match", "validate"]
