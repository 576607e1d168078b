"""The JSON Schema of the runbook format with each action's arguments, as committed in runbooks/schema.json.

Built from the same declarations the loader checks against (the `Runbook` model and every registered
action's argument model), so an editor flags an unknown argument or a wrong type as the loader would.
An argument may always be a template instead (`"{{ params.replicas }}"`): it is checked after rendering.
"""

from __future__ import annotations

import json
from typing import Any

from engine.actions import ActionRegistry
from engine.model import Runbook

TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%", "description": "A template, checked after rendering."}


def _arguments(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The argument model's schema, each argument (and each field of a nested argument model, such as
    `limits.memory`) also accepting a template."""
    for name, nested in schema.pop("$defs", {}).items():
        defs[name] = _templated(nested) if "properties" in nested else nested
    return {**_templated(schema), "additionalProperties": False}


def _templated(schema: dict[str, Any]) -> dict[str, Any]:
    properties = {name: {"anyOf": [prop, TEMPLATE]} for name, prop in schema.get("properties", {}).items()}
    return {**schema, "properties": properties}


def json_schema(registry: ActionRegistry | None = None) -> str:
    """The schema document; with a registry, `with:` is checked per action and `action` is an enum."""
    document = Runbook.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "runbook/v1 Runbook"
    if registry is not None:
        defs = document.setdefault("$defs", {})
        step = defs["Step"]
        step["properties"]["action"]["enum"] = registry.names()
        rules = []
        for action in registry:
            ref = f"args.{action.name}"
            defs[ref] = _arguments(action.args.model_json_schema(ref_template="#/$defs/{model}"), defs)
            defs[ref]["description"] = action.description
            rules.append({"if": {"properties": {"action": {"const": action.name}}, "required": ["action"]},
                          "then": {"properties": {"with": {"$ref": f"#/$defs/{ref}"}}}})
        step["allOf"] = rules
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
