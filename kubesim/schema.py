"""OpenAPI v3 structural-schema validation of custom resources, as kube-apiserver does it:
prune unknown fields, apply defaults, report errors with the server's wording."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from kubesim import cel


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str
    message: str

    def cause(self) -> dict[str, str]:
        prefix = f"{self.field}: "
        text = self.message[len(prefix) :] if self.message.startswith(prefix) else self.message
        return {"reason": self.reason, "message": text, "field": self.field}


@dataclass(frozen=True)
class ValidationResult:
    obj: dict[str, Any]
    errors: list[FieldError]
    unknown_fields: list[str]


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return '"object"' if isinstance(value, dict) else '"array"'
    return json.dumps(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches_type(value: Any, expected: str) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


@dataclass
class _Walk:
    errors: list[FieldError] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def error(self, path: str, reason: str, message: str) -> None:
        self.errors.append(FieldError(path, reason, f"{path}: {message}"))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(schema: Mapping[str, Any], value: Any, path: str, w: _Walk, *, root: bool = False) -> Any:
    """Validate `value` against `schema`; returns the pruned and defaulted value."""
    if value is None:
        if schema.get("nullable"):
            return None
        if schema.get("type") and not schema.get("x-kubernetes-int-or-string"):
            w.error(
                path,
                "FieldValueTypeInvalid",
                f'Invalid value: "null": {path} in body must be of type {schema["type"]}: "null"',
            )
        return None
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _matches_type(value, "integer")):
            w.error(
                path,
                "FieldValueTypeInvalid",
                f"Invalid value: {_quote(value)}: {path} in body must be of type "
                f"integer-or-string: {_quote(_type_name(value))}",
            )
            return value
    elif expected and not _matches_type(value, expected):
        w.error(
            path,
            "FieldValueTypeInvalid",
            f'Invalid value: "{_type_name(value)}": {path} in body must be of type {expected}: '
            f'"{_type_name(value)}"',
        )
        return value
    if isinstance(value, dict):
        value = _walk_object(schema, value, path, w, root=root)
    elif isinstance(value, list):
        value = _walk_array(schema, value, path, w)
    else:
        _check_scalar(schema, value, path, w)
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_quote(v) for v in schema["enum"])
        w.error(
            path,
            "FieldValueNotSupported",
            f"Unsupported value: {_quote(value)}: supported values: {supported}",
        )
    for sub in schema.get("allOf") or []:
        _walk(sub, value, path, _Walk(w.errors, []))
    for key in ("oneOf", "anyOf"):
        options = schema.get(key)
        if options:
            passing = 0
            for sub in options:
                probe = _Walk()
                _walk(sub, copy.deepcopy(value), path, probe)
                passing += not probe.errors
            if passing == 0 or (key == "oneOf" and passing > 1):
                w.error(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_quote(value)}: {path} in body must match "
                    f"{'exactly one' if key == 'oneOf' else 'at least one'} schema",
                )
    if "not" in schema:
        probe = _Walk()
        _walk(schema["not"], copy.deepcopy(value), path, probe)
        if not probe.errors:
            w.error(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_quote(value)}: {path} in body must not match the schema",
            )
    for rule in schema.get("x-kubernetes-validations") or []:
        outcome = cel.evaluate(rule.get("rule", ""), value)
        if outcome is False:
            message = rule.get("message") or f"failed rule: {rule.get('rule')}"
            reason = rule.get("reason", "FieldValueInvalid")
            rule_path = (
                _join(path, rule["fieldPath"].lstrip(".")) if rule.get("fieldPath") else path
            )
            w.error(rule_path or "<root>", reason, f"Invalid value: {_quote(value)}: {message}")
    return value


def _walk_object(
    schema: Mapping[str, Any], value: dict[str, Any], path: str, w: _Walk, *, root: bool
) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    embedded = schema.get("x-kubernetes-embedded-resource")
    out: dict[str, Any] = {}
    for key, item in value.items():
        child = _join(path, key)
        if (root or embedded) and key in ("apiVersion", "kind", "metadata"):
            out[key] = item
            continue
        if key in properties:
            out[key] = _walk(properties[key], item, child, w)
        elif isinstance(additional, Mapping):
            out[key] = _walk(additional, item, child, w)
        elif additional is True or preserve:
            out[key] = item
        else:
            w.unknown.append("." + child)
    for key, prop in properties.items():
        if key not in out and "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
            out[key] = _walk(prop, out[key], _join(path, key), _Walk())
    for key in schema.get("required") or []:
        if key not in out:
            w.error(_join(path, key), "FieldValueRequired", "Required value")
    if "maxProperties" in schema and len(out) > schema["maxProperties"]:
        w.error(
            path,
            "FieldValueTooMany",
            f"Too many: {len(out)}: must have at most {schema['maxProperties']} items",
        )
    if "minProperties" in schema and len(out) < schema["minProperties"]:
        w.error(
            path,
            "FieldValueInvalid",
            f"Invalid value: {len(out)}: {path} in body should have at least "
            f"{schema['minProperties']} properties",
        )
    return out


def _walk_array(schema: Mapping[str, Any], value: list[Any], path: str, w: _Walk) -> list[Any]:
    items = schema.get("items")
    out = (
        [_walk(items, v, f"{path}[{i}]", w) for i, v in enumerate(value)]
        if isinstance(items, Mapping)
        else list(value)
    )
    if "maxItems" in schema and len(out) > schema["maxItems"]:
        w.error(
            path,
            "FieldValueTooMany",
            f"Too many: {len(out)}: must have at most {schema['maxItems']} items",
        )
    if "minItems" in schema and len(out) < schema["minItems"]:
        w.error(
            path,
            "FieldValueInvalid",
            f"Invalid value: {len(out)}: {path} in body should have at least "
            f"{schema['minItems']} items",
        )
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen: list[Any] = []
        for i, v in enumerate(out):
            if v in seen:
                w.error(f"{path}[{i}]", "FieldValueDuplicate", f"Duplicate value: {_quote(v)}")
            seen.append(v)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[tuple[Any, ...]] = []
        for i, v in enumerate(out):
            if isinstance(v, dict):
                k = tuple(v.get(key) for key in keys)
                if k in seen_keys:
                    w.error(
                        f"{path}[{i}]",
                        "FieldValueDuplicate",
                        "Duplicate value: "
                        + json.dumps({key: v.get(key) for key in keys}, separators=(",", ":")),
                    )
                seen_keys.append(k)
    return out


def _check_scalar(schema: Mapping[str, Any], value: Any, path: str, w: _Walk) -> None:
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            w.error(
                path,
                "FieldValueTooLong",
                f"Too long: may not be more than {schema['maxLength']} bytes",
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            w.error(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_quote(value)}: {path} in body should be at least "
                f"{schema['minLength']} chars long",
            )
        pattern = schema.get("pattern")
        if pattern and not _regex(pattern).search(value):
            w.error(
                path,
                "FieldValueInvalid",
                f"Invalid value: {_quote(value)}: {path} in body should match '{pattern}'",
            )
        if schema.get("format") == "date-time" and value:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                w.error(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_quote(value)}: {path} in body must be of type date-time: "
                    f"{_quote(value)}",
                )
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "maximum" in schema:
            limit = schema["maximum"]
            if value > limit or (schema.get("exclusiveMaximum") is True and value >= limit):
                w.error(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {value}: {path} in body should be less than or equal to "
                    f"{limit}",
                )
        if "minimum" in schema:
            limit = schema["minimum"]
            if value < limit or (schema.get("exclusiveMinimum") is True and value <= limit):
                w.error(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {value}: {path} in body should be greater than or equal to "
                    f"{limit}",
                )


def validate(schema: Mapping[str, Any], obj: Mapping[str, Any]) -> ValidationResult:
    w = _Walk()
    result = _walk(schema, dict(obj), "", w, root=True)
    return ValidationResult(result if isinstance(result, dict) else dict(obj), w.errors, w.unknown)


def validate_crd_schema(schema: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []

    def visit(node: Any, path: str) -> None:
        if not isinstance(node, Mapping):
            problems.append(f"{path}: must be an object")
            return
        untyped = not any(
            node.get(k)
            for k in ("type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")
        )
        if untyped and path and not any(k in node for k in ("allOf", "anyOf", "oneOf", "not")):
            problems.append(
                f"{path}.type: Required value: must not be empty for specified object fields"
            )
        for key, child in (node.get("properties") or {}).items():
            visit(child, f"{path}.properties[{key}]")
        if isinstance(node.get("items"), Mapping):
            visit(node["items"], f"{path}.items")
        if isinstance(node.get("additionalProperties"), Mapping):
            visit(node["additionalProperties"], f"{path}.additionalProperties")

    visit(schema, "")
    return problems
