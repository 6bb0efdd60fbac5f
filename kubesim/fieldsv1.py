"""FieldsV1, the encoding of field sets in ``metadata.managedFields``, as kube-apiserver writes it.

A field set is a Python ``set`` of paths; a path is a tuple of FieldsV1 path elements, spelled
exactly as they appear as keys of ``fieldsV1``: ``f:<name>`` (a map key or struct field),
``k:{"name":"x"}`` (an item of a list-map, key fields sorted by name, compact JSON),
``v:<json>`` (an item of a set).  A path in the set is a *member*: that node is owned.  In
FieldsV1 a member with no owned children is ``{}`` and a member that also has owned children
carries ``".": {}`` first among them, as structured-merge-diff serialises it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

Path = tuple[str, ...]
FieldSet = set[Path]

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(value: Any) -> str:
    """Compact JSON as Go's encoding/json writes it (sorted keys, UTF-8, HTML-safe escapes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).translate(
        _GO_ESCAPES
    )


def from_fields_v1(tree: Mapping[str, Any]) -> FieldSet:
    out: FieldSet = set()
    _decode(tree, (), out)
    return out


def _decode(node: Mapping[str, Any], prefix: Path, out: FieldSet) -> None:
    for element, child in node.items():
        if element == ".":
            if prefix:
                out.add(prefix)
            continue
        path = (*prefix, element)
        if isinstance(child, Mapping) and child:
            _decode(child, path, out)
        else:
            out.add(path)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """FieldsV1 JSON of a field set, ordered as structured-merge-diff writes it."""
    trie: dict[str, Any] = {}
    for path in paths:
        node = trie
        for element in path:
            node = node.setdefault(element, {})
        node["."] = True
    return _emit(trie)


def _emit(node: dict[str, Any]) -> dict[str, Any]:
    member = node.pop(".", False)
    out: dict[str, Any] = {}
    if member and node:
        out["."] = {}
    for element in sorted(node, key=element_order):
        out[element] = _emit(node[element])
    return out


def has_member(tree: Mapping[str, Any], path: Path) -> bool:
    """Whether a FieldsV1 tree owns ``path``, without decoding the tree."""
    node: Any = tree
    for element in path:
        node = node.get(element) if isinstance(node, Mapping) else None
        if node is None:
            return False
    return not node or "." in node


@lru_cache(maxsize=4096)
def element_order(element: str) -> tuple[Any, ...]:
    """Sort key of a path element: fields by name, then list-map keys, then set values."""
    if element.startswith("f:"):
        return (0, element)
    if element.startswith("k:"):
        fields = json.loads(element[2:])
        return (1, tuple((name, _value_order(value)) for name, value in fields.items()))
    if element.startswith("v:"):
        return (2, _value_order(json.loads(element[2:])))
    return (3, element)


def _value_order(value: Any) -> tuple[Any, ...]:
    # structured-merge-diff orders numbers < strings < booleans < lists < maps < null.
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if value is None:
        return (5, 0)
    return (3 if isinstance(value, list) else 4, go_json(value))


def iteration_order(path: Path) -> tuple[tuple[int, tuple[Any, ...]], ...]:
    """Sort key giving structured-merge-diff's set iteration order (a node's members first)."""
    last = len(path) - 1
    return tuple((0 if depth == last else 1, element_order(e)) for depth, e in enumerate(path))


def dotted(path: Path) -> str:
    """A path as kube-apiserver prints it in conflicts: ``.metadata.ownerReferences[uid="1"]``."""
    parts = []
    for element in path:
        if element.startswith("f:"):
            parts.append("." + element[2:])
        elif element.startswith("k:"):
            fields = json.loads(element[2:])
            parts.append("[" + ",".join(f"{k}={_go_string(v)}" for k, v in fields.items()) + "]")
        elif element.startswith("v:"):
            parts.append("[=" + _go_string(json.loads(element[2:])) + "]")
        else:
            parts.append(f"[{element[2:]}]")
    return "".join(parts)


def _go_string(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_go_string(v)}" for k, v in value.items())
    return str(value)
