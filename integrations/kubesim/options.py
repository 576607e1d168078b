"""Query options every write validates before anything else: dryRun, fieldValidation, propagationPolicy.

staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go: ValidateCreateOptions,
ValidateUpdateOptions, ValidatePatchOptions and ValidateDeleteOptions; `ValidateDryRun` accepts only "All"
and `ValidateFieldValidation` only "", Ignore, Warn and Strict. The handlers (endpoints/handlers/create.go
etc.) answer 422 Invalid for the options kind, e.g. `CreateOptions.meta.k8s.io "" is invalid: ...`.
"""

from __future__ import annotations

from .errors import ApiError
from .request import ApiRequest

_KINDS = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions",
          "delete": "DeleteOptions", "deletecollection": "DeleteOptions"}
FIELD_VALIDATION = ("", "Ignore", "Strict", "Warn")
PROPAGATION = ("Foreground", "Background", "Orphan")


def _go_strings(values: list[str]) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def check_options(req: ApiRequest, verb: str, body_dry_run: list[str] | None = None,
                  propagation: str | None = None) -> None:
    """Raise 422 for an unsupported dryRun / fieldValidation / propagationPolicy value."""
    kind = _KINDS.get(verb)
    if kind is None:
        return
    causes: list[dict[str, str]] = []
    dry_run = [*req.query.get("dryRun", []), *(body_dry_run or [])]
    if any(v != "All" for v in dry_run):
        causes.append({"reason": "FieldValueNotSupported", "field": "dryRun",
                       "message": f'Unsupported value: {_go_strings(dry_run)}: supported values: "All"'})
    validation = req.param("fieldValidation") or ""
    if kind != "DeleteOptions" and validation not in FIELD_VALIDATION:
        supported = ", ".join(f'"{v}"' for v in FIELD_VALIDATION)
        causes.append({"reason": "FieldValueNotSupported", "field": "fieldValidation",
                       "message": f'Unsupported value: "{validation}": supported values: {supported}'})
    if kind == "DeleteOptions" and propagation is not None and propagation not in PROPAGATION:
        causes.append({"reason": "FieldValueNotSupported", "field": "propagationPolicy",
                       "message": f'Unsupported value: "{propagation}": supported values: "Foreground", '
                                  '"Background", "Orphan", "nil"'})
    if not causes:
        return
    texts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    raise ApiError(422, "Invalid", f'{kind}.meta.k8s.io "" is invalid: {joined}',
                   {"group": "meta.k8s.io", "kind": kind, "causes": causes})
