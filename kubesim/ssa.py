"""Server-side apply and managedFields (FieldsV1), after structured-merge-diff's semantics."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Path = tuple[str, ...]
"""A field path in FieldsV1 element form: ("f:spec", "f:interval"), ('k:{"uid":"1"}', ...)."""


@dataclass(frozen=True)
class ListType:
    kind: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()


TypeInfo = Callable[[tuple[str, ...]], ListType]

_UNTRACKED_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}
_META_LISTS = {
    ("metadata", "finalizers"): ListType("set"),
    ("metadata", "ownerReferences"): ListType("map", ("uid",)),
}


def type_info_from_schema(schema: Mapping[str, Any] | None) -> TypeInfo:
    def info(names: tuple[str, ...]) -> ListType:
        if names in _META_LISTS:
            return _META_LISTS[names]
        node: Any = schema
        for name in names:
            if not isinstance(node, Mapping):
                return ListType("atomic")
            while node.get("type") == "array" and isinstance(node.get("items"), Mapping):
                node = node["items"]
            props = node.get("properties") or {}
            node = props.get(name) if name in props else node.get("additionalProperties")
        if isinstance(node, Mapping) and node.get("x-kubernetes-list-type") in ("set", "map"):
            return ListType(node["x-kubernetes-list-type"], tuple(node.get("x-kubernetes-list-map-keys") or ()))
        return ListType("atomic")

    return info


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts

    def status_message(self, api_version: str) -> str:
        if len(self.conflicts) == 1:
            manager, path = self.conflicts[0]
            return f'Apply failed with 1 conflict: conflict with "{manager}" using {api_version}: {path}'
        lines = "".join(f'\n- conflict with "{m}" using {api_version}: {p}' for m, p in self.conflicts)
        return f"Apply failed with {len(self.conflicts)} conflicts:{lines}"

    def causes(self) -> list[dict[str, str]]:
        return [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": p}
                for m, p in self.conflicts]


# ----------------------------------------------------------------- field sets

def _item_key(item: Any, keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({k: item.get(k) for k in keys} if isinstance(item, dict) else {}, separators=(",", ":"))


def fields_of(obj: Mapping[str, Any], type_info: TypeInfo) -> set[Path]:
    out: set[Path] = set()

    def visit(value: Any, path: Path, names: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                if not names and key in ("apiVersion", "kind"):
                    continue
                if names == ("metadata",) and key in _UNTRACKED_META:
                    continue
                visit(child, (*path, f"f:{key}"), (*names, key))
            return
        if isinstance(value, list) and value:
            lt = type_info(names)
            if lt.kind == "map":
                for item in value:
                    item_path = (*path, _item_key(item, lt.keys))
                    out.add((*item_path, "."))
                    if isinstance(item, dict):
                        for key, child in item.items():
                            visit(child, (*item_path, f"f:{key}"), (*names, key))
                return
            if lt.kind == "set":
                for item in value:
                    out.add((*path, "v:" + json.dumps(item, separators=(",", ":"))))
                return
        out.add(path)

    visit(obj, (), ())
    return out


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    return root


def from_fields_v1(tree: Mapping[str, Any]) -> set[Path]:
    out: set[Path] = set()

    def visit(node: Mapping[str, Any], path: Path) -> None:
        if not node:
            if path:
                out.add(path)
            return
        for key, child in node.items():
            if key == ".":
                out.add((*path, "."))
            else:
                visit(child if isinstance(child, Mapping) else {}, (*path, key))

    visit(tree, ())
    return out


_MISSING = object()


def value_at(obj: Any, path: Path) -> Any:
    cur = obj
    for element in path:
        if element == ".":
            continue
        if element.startswith("f:"):
            cur = cur.get(element[2:], _MISSING) if isinstance(cur, dict) else _MISSING
        elif element.startswith("k:"):
            want = json.loads(element[2:])
            cur = next((i for i in cur if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())),
                       _MISSING) if isinstance(cur, list) else _MISSING
        elif element.startswith("v:"):
            want = json.loads(element[2:])
            cur = want if isinstance(cur, list) and want in cur else _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _remove_path(obj: Any, path: Path) -> None:
    if not path:
        return
    if path[-1] == ".":
        path = path[:-1]
    parent = value_at(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        want = json.loads(last[2:])
        parent[:] = [i for i in parent if not (isinstance(i, dict) and all(i.get(k) == v for k, v in want.items()))]
    elif last.startswith("v:") and isinstance(parent, list):
        want = json.loads(last[2:])
        parent[:] = [i for i in parent if i != want]


def _prune_empty(obj: Any, before: Any) -> Any:
    """Drop maps emptied by a removal (they were not empty before)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            prev = before.get(k) if isinstance(before, dict) else None
            v = _prune_empty(v, prev)
            if isinstance(v, (dict, list)) and not v and prev:
                continue
            out[k] = v
        return out
    return obj


def merge(live: Any, config: Any, type_info: TypeInfo, names: tuple[str, ...] = ()) -> Any:
    if isinstance(config, dict) and isinstance(live, dict):
        out = dict(live)
        for key, value in config.items():
            out[key] = merge(live.get(key), value, type_info, (*names, key)) if key in live else copy.deepcopy(value)
        return out
    if isinstance(config, list) and isinstance(live, list):
        lt = type_info(names)
        if lt.kind == "map":
            out_list = [copy.deepcopy(i) for i in live]
            for item in config:
                key = _item_key(item, lt.keys)
                index = next((n for n, i in enumerate(out_list) if _item_key(i, lt.keys) == key), None)
                if index is None:
                    out_list.append(copy.deepcopy(item))
                else:
                    out_list[index] = merge(out_list[index], item, type_info, names)
            return out_list
        if lt.kind == "set":
            return list(live) + [copy.deepcopy(i) for i in config if i not in live]
    return copy.deepcopy(config)


# ----------------------------------------------------------------- managed fields

Entry = dict[str, Any]


def _entries(obj: Mapping[str, Any] | None) -> list[Entry]:
    if not obj:
        return []
    return [dict(e) for e in (obj.get("metadata") or {}).get("managedFields") or [] if isinstance(e, Mapping)]


def _set_of(entry: Entry) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1") or {})


def _finish(obj: dict[str, Any], entries: list[tuple[Entry, set[Path]]]) -> dict[str, Any]:
    managed = []
    for entry, paths in entries:
        if paths:
            managed.append({**entry, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)})
    obj["metadata"] = {**(obj.get("metadata") or {}), "managedFields": managed}
    if not managed:
        obj["metadata"].pop("managedFields")
    return obj


def _entry(manager: str, operation: str, api_version: str, now: str, subresource: str | None) -> Entry:
    entry: Entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now}
    if subresource:
        entry["subresource"] = subresource
    return entry


def _same(entry: Entry, manager: str, operation: str, subresource: str | None) -> bool:
    return (entry.get("manager") == manager and entry.get("operation") == operation
            and entry.get("subresource") == subresource)


def apply(live: dict[str, Any] | None, config: dict[str, Any], *, manager: str, force: bool, type_info: TypeInfo,
          api_version: str, now: str, subresource: str | None = None) -> dict[str, Any]:
    config_fields = fields_of(config, type_info)
    entries = [(e, _set_of(e)) for e in _entries(live)]
    base = dict(live or {})
    conflicts: list[tuple[str, str]] = []
    for entry, paths in entries:
        if _same(entry, manager, "Apply", subresource):
            continue
        for path in sorted(paths & config_fields):
            if path[-1] == ".":
                continue
            if value_at(base, path) != value_at(config, path):
                conflicts.append((str(entry.get("manager")), _dotted(path)))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    if force:
        for entry, paths in entries:
            if not _same(entry, manager, "Apply", subresource):
                paths -= {p for p in paths & config_fields if value_at(base, p) != value_at(config, p)}
    previous: set[Path] = set()
    for entry, paths in entries:
        if _same(entry, manager, "Apply", subresource):
            previous = paths
    others: set[Path] = set().union(*(p for e, p in entries if not _same(e, manager, "Apply", subresource)))
    merged = merge(base, config, type_info) if live is not None else copy.deepcopy(config)
    dropped = previous - config_fields - others
    if dropped:
        before = copy.deepcopy(merged)
        for path in sorted(dropped, key=len, reverse=True):
            _remove_path(merged, path)
        merged = _prune_empty(merged, before)
    new_entries = [(e, p) for e, p in entries if not _same(e, manager, "Apply", subresource)]
    position = next((i for i, (e, _) in enumerate(entries) if _same(e, manager, "Apply", subresource)), len(new_entries))
    new_entries.insert(min(position, len(new_entries)), (_entry(manager, "Apply", api_version, now, subresource),
                                                         config_fields))
    return _finish(merged, new_entries)


def record_update(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str, type_info: TypeInfo,
                  api_version: str, now: str, subresource: str | None = None) -> dict[str, Any]:
    new_fields = fields_of(new, type_info)
    if old is None:
        changed = new_fields
        removed: set[Path] = set()
    else:
        old_fields = fields_of(old, type_info)
        changed = {p for p in new_fields if value_at(old, p) != value_at(new, p) or p not in old_fields}
        removed = old_fields - new_fields
    entries = [(e, _set_of(e)) for e in _entries(old)]
    if not changed and not removed:
        return _finish(dict(new), entries)
    found = False
    updated: list[tuple[Entry, set[Path]]] = []
    for entry, paths in entries:
        if _same(entry, manager, "Update", subresource):
            found = True
            updated.append((_entry(manager, "Update", api_version, now, subresource), (paths | changed) - removed))
        else:
            updated.append((entry, paths - changed - removed))
    if not found:
        updated.append((_entry(manager, "Update", api_version, now, subresource), changed))
    return _finish(dict(new), updated)


def _dotted(path: Path) -> str:
    out = ""
    for element in path:
        if element.startswith("f:"):
            out += "." + element[2:]
        elif element.startswith("k:"):
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(element[2:]).items()) + "]"
        elif element.startswith("v:"):
            out += f"[={element[2:]}]"
    return out
