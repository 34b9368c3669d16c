"""JSON Schema of run specs, with each installed plugin's parameters, for editors."""

from __future__ import annotations

from typing import Any

from hone.registry import KINDS, Registries
from hone.spec.models import spec_model


def spec_schema(registries: Registries) -> dict[str, Any]:
    schema = spec_model(registries).model_json_schema()
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    for kind in KINDS:
        ref_name = f"{kind.capitalize()}Ref"
        if ref_name not in defs:
            continue
        choices: list[dict[str, Any]] = []
        names: list[str] = []
        for component in registries[kind]:
            params = component.params.model_json_schema(ref_template="#/$defs/{model}")
            defs.update(params.pop("$defs", {}))
            names += [component.name, *component.aliases]
            choices.append(
                {
                    "type": "object",
                    "title": component.name,
                    "description": component.doc,
                    "properties": {"name": {"enum": [component.name, *component.aliases]}, **params.get("properties", {})},
                    "required": ["name", *params.get("required", [])],
                    "additionalProperties": False,
                }
            )
        defs[ref_name] = {
            "description": f"A {kind} chosen by name, with its parameters.",
            "anyOf": [{"type": "string", "enum": names}, *choices],
        }
    model = defs.get("ModelSpec")
    if model is not None:  # `model: <source>` is shorthand for `model: {source: <source>}`
        defs["ModelSpec"] = {"anyOf": [{"type": "string"}, model]}
    return schema
