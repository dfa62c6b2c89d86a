"""Turn the OpenAPI document into what the /api/docs template shows: endpoints, fields, examples."""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape

from app.web.words import plain_number

REF_PREFIX = "#/components/schemas/"
_CODE_SPAN = re.compile(r"`([^`]+)`")


def code_spans(text: Any) -> Markup:
    """Descriptions are written with Markdown's `code` spans (as OpenAPI allows): show them as <code>,
    not as literal backticks; everything else is escaped."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(str(text or "")))))


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref[len(REF_PREFIX) :] if isinstance(ref, str) and ref.startswith(REF_PREFIX) else None


def type_label(schema: dict[str, Any]) -> str:
    """A short human type: `integer`, `date`, `number | null`, `list of PredictRequest`."""
    if "$ref" in schema:
        return _ref_name(schema) or "object"
    if "anyOf" in schema:
        return " | ".join(type_label(option) for option in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_label(schema.get('items', {}))}"
    if kind == "string" and "format" in schema:
        return schema["format"]
    if kind == "object" and "additionalProperties" in schema:
        return "object"
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf", [schema])
    parts = []
    for option in options:
        low = option.get("minimum", option.get("exclusiveMinimum"))
        high = option.get("maximum", option.get("exclusiveMaximum"))
        if low is not None and high is not None:
            parts.append(f"{plain_number(low)} – {plain_number(high)}")
        elif low is not None:
            parts.append(f"≥ {plain_number(low)}")
        elif high is not None:
            parts.append(f"≤ {plain_number(high)}")
        if "enum" in option:
            parts.append(", ".join(map(str, option["enum"])))
    if "default" in schema and schema["default"] is not None:
        parts.append(f"default {schema['default']}")
    return "; ".join(parts)


def schema_fields(components: dict[str, Any], name: str) -> list[dict[str, Any]]:
    schema = components.get(name, {})
    required = set(schema.get("required", []))
    return [
        {
            "name": field,
            "type": type_label(prop),
            "required": field in required,
            "constraints": _constraints(prop),
            "description": code_spans(prop.get("description", "")),
        }
        for field, prop in schema.get("properties", {}).items()
    ]


def docs_context(document: dict[str, Any]) -> dict[str, Any]:
    components = document.get("components", {}).get("schemas", {})
    base = document.get("servers", [{"url": ""}])[0]["url"]
    endpoints = []
    for path, operations in document.get("paths", {}).items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {})
            request_schema = None
            examples = []
            for media, content in body.items():
                name = _ref_name(content.get("schema", {}))
                if name:
                    request_schema = name
                if "example" in content:
                    example = content["example"]
                    examples.append(
                        {
                            "media": media,
                            "text": example if isinstance(example, str) else json.dumps(example, indent=2),
                        }
                    )
            responses = []
            for code, response in op.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                responses.append(
                    {
                        "code": code,
                        "description": code_spans(response.get("description", "")),
                        "schema": _ref_name(schema),
                    }
                )
            endpoints.append(
                {
                    "id": op.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": base + path,
                    "summary": code_spans(op.get("summary", "")),
                    "description": code_spans(op.get("description", "")),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": type_label(p.get("schema", {})),
                            "constraints": _constraints(p.get("schema", {})),
                            "description": code_spans(p.get("description", "")),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "request_schema": request_schema,
                    "request_fields": schema_fields(components, request_schema) if request_schema else [],
                    "examples": examples,
                    "responses": responses,
                }
            )
    schemas = [{"name": name, "fields": schema_fields(components, name)} for name in sorted(components)]
    info = {**document.get("info", {})}
    info["description"] = code_spans(info.get("description", ""))
    return {"info": info, "endpoints": endpoints, "schemas": schemas, "base": base}
