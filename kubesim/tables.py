"""Server-side printing: `meta.k8s.io/v1 Table` answers for `kubectl get`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubesim.resources import PrinterColumn, ResourceType

_NAME_COL = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def human_duration(seconds: float) -> str:
    """Age as kubectl shows it (apimachinery's HumanDuration)."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 365 * 8 else f"{d // 365}y"


def _age(ts: str | None, now: datetime) -> str:
    if not ts:
        return "<unknown>"
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((now - when).total_seconds())


_FILTER = re.compile(r"\[\?\(@\.([\w.]+)\s*==\s*[\"']([^\"']*)[\"']\)\]")


def jsonpath(obj: Any, path: str) -> Any:
    """The subset of JSONPath used by printer columns: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`."""
    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    tokens = re.findall(r"\[\?\([^\]]*\)\]|\[\d+\]|\.[^.\[]+", expr)
    current: list[Any] = [obj]
    for tok in tokens:
        nxt: list[Any] = []
        for value in current:
            if tok.startswith("[?"):
                m = _FILTER.fullmatch(tok)
                if m and isinstance(value, list):
                    key_path, want = m.group(1).split("."), m.group(2)
                    for item in value:
                        v: Any = item
                        for k in key_path:
                            v = v.get(k) if isinstance(v, Mapping) else None
                        if v is not None and str(v) == want:
                            nxt.append(item)
            elif tok.startswith("["):
                idx = int(tok[1:-1])
                if isinstance(value, list) and idx < len(value):
                    nxt.append(value[idx])
            elif isinstance(value, Mapping) and tok[1:] in value:
                nxt.append(value[tok[1:]])
        current = nxt
    if not current:
        return None
    return current[0] if len(current) == 1 else current


Cell = Callable[[Mapping[str, Any], datetime], Any]

_BUILTIN_COLUMNS: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "configmaps"): [
        (
            {"name": "Data", "type": "integer"},
            lambda o, n: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
        )
    ],
    ("", "secrets"): [
        ({"name": "Type", "type": "string"}, lambda o, n: o.get("type", "")),
        ({"name": "Data", "type": "integer"}, lambda o, n: len(o.get("data") or {})),
    ],
    ("", "namespaces"): [
        (
            {"name": "Status", "type": "string"},
            lambda o, n: (o.get("status") or {}).get("phase", ""),
        )
    ],
    ("coordination.k8s.io", "leases"): [
        (
            {"name": "Holder", "type": "string"},
            lambda o, n: (o.get("spec") or {}).get("holderIdentity") or "",
        )
    ],
    ("networking.k8s.io", "ingresses"): [
        (
            {"name": "Class", "type": "string"},
            lambda o, n: (o.get("spec") or {}).get("ingressClassName") or "<none>",
        ),
        (
            {"name": "Hosts", "type": "string"},
            lambda o, n: (
                ",".join(r.get("host", "*") for r in (o.get("spec") or {}).get("rules") or [])
                or "*"
            ),
        ),
    ],
    ("", "events"): [
        ({"name": "Type", "type": "string"}, lambda o, n: o.get("type", "")),
        ({"name": "Reason", "type": "string"}, lambda o, n: o.get("reason", "")),
        (
            {"name": "Object", "type": "string"},
            lambda o, n: (
                f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                f"{(o.get('involvedObject') or {}).get('name', '')}"
            ),
        ),
        ({"name": "Message", "type": "string"}, lambda o, n: o.get("message", "")),
    ],
}


def _crd_cell(col: PrinterColumn) -> Cell:
    def cell(obj: Mapping[str, Any], now: datetime) -> Any:
        value = jsonpath(obj, col.json_path)
        if value is None:
            return None
        if col.type == "date":
            return _age(str(value), now)
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return value

    return cell


def columns_for(rt: ResourceType, version: str) -> list[tuple[dict[str, Any], Cell]]:
    if rt.is_crd:
        cols = rt.printer_columns.get(version, ())
        out = [
            (
                {
                    "name": c.name,
                    "type": "string" if c.type == "date" else c.type,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                },
                _crd_cell(c),
            )
            for c in cols
        ]
        if not cols:
            out.append(
                (
                    {"name": "Age", "type": "date"},
                    lambda o, n: _age(o["metadata"].get("creationTimestamp"), n),
                )
            )
        return out
    extra = _BUILTIN_COLUMNS.get(rt.gr, [])
    return [
        *extra,
        (
            {"name": "Age", "type": "string"},
            lambda o, n: _age(o["metadata"].get("creationTimestamp"), n),
        ),
    ]


def to_table(
    rt: ResourceType,
    version: str,
    objects: list[dict[str, Any]],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    continue_token: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    columns = columns_for(rt, version)
    definitions = [_NAME_COL] + [
        {"description": "", "format": "", "priority": 0, **definition} for definition, _ in columns
    ]
    rows = []
    for obj in objects:
        row: dict[str, Any] = {
            "cells": [obj["metadata"]["name"], *(cell(obj, now) for _, cell in columns)]
        }
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
