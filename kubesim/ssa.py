"""Server-side apply and ``metadata.managedFields``, with kube-apiserver's semantics.

kube-apiserver delegates both to structured-merge-diff; the behaviour reproduced here:

- :func:`apply` merges the configuration into the live object (config values win; list-maps
  merge by key, sets by value, atomic lists and maps are replaced; ``null`` removes), then
  *prunes* what the applier owned last time but no longer sets, unless another manager owns it.
  A manager (other than the applier's own Apply entry) owning a field whose value the apply
  changes or adds is a conflict (409) unless ``force``, which takes the field from it.  Fields
  another manager owns with the same value end up shared.  The applier's entry then holds
  exactly the fields of its configuration.
- :func:`record_update` (create, update, patch): the writer takes every field it added or
  changed; every manager loses fields that changed value or disappeared.
- One entry per manager identity: (manager, operation, subresource), and for ``Update`` also
  the API version.  Entries with no field are dropped.  They are ordered as the server orders
  them: Apply before Update, then by time, manager, apiVersion, subresource.  An entry's time
  moves only when its write changed the object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubesim import fieldsets, fieldsv1
from kubesim.fieldsv1 import FieldSet
from kubesim.merge_types import (
    UNTRACKED_METADATA,
    ListType,
    Shape,
    TypeInfo,
    root_shape,
    type_info_from_schema,
)

__all__ = [
    "ApplyConflict",
    "Conflict",
    "ListType",
    "TypeInfo",
    "apply",
    "record_update",
    "type_info_from_schema",
]

Entry = dict[str, Any]


@dataclass(frozen=True)
class Conflict:
    """A field an apply would change that another manager owns."""

    manager: str
    field: str
    operation: str = "Update"
    api_version: str = ""
    subresource: str = ""

    def owner(self, api_version: str) -> str:
        """The manager as kube-apiserver names it: ``"kubectl" using v1`` for an updater."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version or api_version}"
        return text

    def identity(self) -> str:
        # The server sorts managers by their JSON identifier; this reproduces its field order.
        ident: dict[str, str] = {"manager": self.manager, "operation": self.operation}
        if self.operation == "Update" and self.api_version:
            ident["apiVersion"] = self.api_version
        if self.subresource:
            ident["subresource"] = self.subresource
        return json.dumps(ident, separators=(",", ":"))


class ApplyConflict(Exception):
    """An apply that would take fields from other managers without ``force`` (HTTP 409)."""

    def __init__(self, conflicts: Sequence[Conflict | tuple[str, str]]) -> None:
        self.details = [c if isinstance(c, Conflict) else Conflict(c[0], c[1]) for c in conflicts]
        self.conflicts: list[tuple[str, str]] = [(c.manager, c.field) for c in self.details]
        super().__init__(self.status_message(""))

    def status_message(self, api_version: str) -> str:
        """The Status message, worded as kube-apiserver words it."""
        if len(self.details) == 1:
            only = self.details[0]
            return (
                "Apply failed with 1 conflict: "
                f"conflict with {only.owner(api_version)}: {only.field}"
            )
        by_owner: dict[str, list[Conflict]] = {}
        for conflict in self.details:
            by_owner.setdefault(conflict.identity(), []).append(conflict)
        lines = []
        for identity in sorted(by_owner):
            group = by_owner[identity]
            lines.append(f"conflicts with {group[0].owner(api_version)}:")
            lines.extend(f"- {c.field}" for c in group)
        return f"Apply failed with {len(self.details)} conflicts: " + "\n".join(lines)

    def causes(self, api_version: str = "") -> list[dict[str, str]]:
        """Status ``details.causes``: one ``FieldManagerConflict`` per field."""
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {c.owner(api_version)}",
                "field": c.field,
            }
            for c in self.details
        ]


# ----------------------------------------------------------------- merging a configuration


def _merge(live: Any, config: Any, shape: Shape) -> Any:
    """The apply merge: config wins; lists per their type; ``null`` in config removes."""
    if isinstance(config, dict) and isinstance(live, dict) and not shape.atomic_map:
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            elif key in live:
                out[key] = _merge(live[key], value, shape.field(key)[0])
            else:
                out[key] = _without_nulls(value)
        return out
    if (
        isinstance(config, list)
        and isinstance(live, list)
        and shape.list_type.kind != "atomic"
        and live
    ):
        return _merge_items(live, config, shape)
    return _without_nulls(config)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        if any(v is None or isinstance(v, dict | list) for v in value.values()):
            return {k: _without_nulls(v) for k, v in value.items() if v is not None}
        return value
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return [_without_nulls(v) for v in value]
    return value


def _merge_items(live: list[Any], config: list[Any], shape: Shape) -> list[Any]:
    """Merge a set or list-map, ordering items as structured-merge-diff does.

    Live-only items keep their place; configured items come in configuration order; a
    configured item also live is emitted where it stood in the live list, preceded by the
    configured items before it that were not live.
    """
    list_type, item_shape = shape.list_type, shape.items()
    configured: dict[str, Any] = {}
    for item in config:
        configured.setdefault(fieldsets.item_element(item, list_type), item)
    live_elements = [fieldsets.item_element(item, list_type) for item in live]
    live_by: dict[str, Any] = {}
    for element, item in zip(live_elements, live, strict=True):
        live_by.setdefault(element, item)
    order = list(configured)
    shared = [e for e in order if e in live_by]
    out: list[Any] = []
    next_config = next_shared = 0

    def emit(element: str) -> None:
        old = live_by.get(element)
        new = configured[element]
        out.append(_merge(old, new, item_shape) if old is not None else _without_nulls(new))

    for element, item in zip(live_elements, live, strict=True):
        if element not in configured:
            out.append(item)
        elif next_shared < len(shared) and shared[next_shared] == element:
            while next_config < len(order):
                emitted = order[next_config]
                next_config += 1
                emit(emitted)
                if emitted == element:
                    break
            next_shared += 1
    for element in order[next_config:]:
        emit(element)
    return out


# ----------------------------------------------------------------- managedFields entries


def _entries(obj: Mapping[str, Any] | None) -> list[Entry]:
    meta = (obj or {}).get("metadata")
    found = meta.get("managedFields") if isinstance(meta, Mapping) else None
    return [e for e in found or [] if isinstance(e, dict)]


def _identity(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    operation = entry.get("operation")
    version = entry.get("apiVersion") if operation == "Update" else None
    return entry.get("manager"), operation, entry.get("subresource") or None, version


def _tree(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    tree = entry.get("fieldsV1")
    return tree if isinstance(tree, Mapping) else {}


def _new_entry(
    manager: str,
    operation: str,
    api_version: str,
    time: str | None,
    subresource: str | None,
    fields: FieldSet | Mapping[str, Any],
) -> Entry:
    entry: Entry = {"manager": manager, "operation": operation, "apiVersion": api_version}
    if time:
        entry["time"] = time
    entry["fieldsType"] = "FieldsV1"
    entry["fieldsV1"] = fields if isinstance(fields, Mapping) else fieldsv1.to_fields_v1(fields)
    if subresource:
        entry["subresource"] = subresource
    return entry


def _without(entry: Entry, lost: FieldSet) -> Entry | None:
    """``entry`` minus ``lost`` fields, or None when nothing is left."""
    remaining = fieldsv1.from_fields_v1(_tree(entry)) - lost
    if not remaining:
        return None
    return {**entry, "fieldsV1": fieldsv1.to_fields_v1(remaining)}


def _sort_key(entry: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    # Times compare to the second, as the server's (RFC 3339, UTC) do.
    return (
        str(entry.get("operation") or ""),
        str(entry.get("time") or "")[:19],
        str(entry.get("manager") or ""),
        str(entry.get("apiVersion") or ""),
        str(entry.get("subresource") or ""),
    )


def _with_entries(obj: dict[str, Any], entries: list[Entry]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    if entries:
        meta["managedFields"] = sorted(entries, key=_sort_key)
    else:
        meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def _ignored(subresource: str | None, *sets: FieldSet) -> None:
    # Writes to /status own nothing in spec (the server resets it); kube-apiserver filters the
    # same "reset fields" out of field sets and comparisons.
    if subresource == "status":
        for s in sets:
            s.difference_update([p for p in s if p[0] == "f:spec"])


# ----------------------------------------------------------------- the operations


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    type_info: TypeInfo,
    api_version: str,
    now: str,
    subresource: str | None = None,
) -> dict[str, Any]:
    """Server-side apply of ``config`` onto ``live`` (``None``: create).

    Returns the new object with ``metadata.managedFields`` updated; raises :class:`ApplyConflict`.
    """
    shape = root_shape(type_info)
    base: dict[str, Any] = live if live is not None else {}
    meta = config.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        config = {**config, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    applied = fieldsets.field_set(config, shape)
    _ignored(subresource, applied)
    entries = _entries(live)
    key = (manager, "Apply", subresource or None, None)
    own = next((e for e in entries if _identity(e) == key), None)
    others = [e for e in entries if e is not own]
    last = fieldsv1.from_fields_v1(_tree(own)) if own is not None else set()

    merged = _merge(base, config, shape)
    if not last <= applied:
        merged = _prune(merged, last, applied | _server_fields(config), others, shape)

    added, modified, removed = fieldsets.compare(base, merged, shape)
    _ignored(subresource, added, modified, removed)
    taken = added | modified
    conflicts: list[tuple[Entry, FieldSet]] = []
    kept: list[Entry] = []
    for entry in others:
        tree = _tree(entry)
        lost = {p for p in taken if fieldsv1.has_member(tree, p)}
        gone = {p for p in removed if fieldsv1.has_member(tree, p)}
        if lost:
            conflicts.append((entry, lost))
        if lost or gone:
            reduced = _without(entry, lost | gone)
            if reduced is not None:
                kept.append(reduced)
        else:
            kept.append(entry)
    if conflicts and not force:
        raise ApplyConflict(_describe(conflicts))

    changed = bool(taken or removed)
    if applied:
        time = now if changed or own is None else own.get("time")
        fields: FieldSet | Mapping[str, Any] = (
            _tree(own) if own is not None and applied == last else applied
        )
        kept.append(_new_entry(manager, "Apply", api_version, time, subresource, fields))
    return _with_entries(merged, kept)


def _server_fields(config: Mapping[str, Any]) -> FieldSet:
    """The untracked fields a configuration sets (``metadata.name``...): never pruned.

    kube-apiserver strips them from managedFields only after structured-merge-diff has run, so
    while pruning they still count as the applier's.
    """
    meta = config.get("metadata")
    if not isinstance(meta, Mapping):
        return set()
    return {("f:metadata", "f:" + key) for key in meta if key in UNTRACKED_METADATA}


def _prune(
    merged: dict[str, Any], last: FieldSet, applied: FieldSet, others: list[Entry], shape: Shape
) -> dict[str, Any]:
    """Remove what the applier owned before, no longer applies, and nobody else owns."""
    owned: FieldSet = set(applied)
    for entry in others:
        owned |= fieldsv1.from_fields_v1(_tree(entry))
    named = fieldsets.named_fields(last, shape)
    owned_prefixes = fieldsets.proper_prefixes(owned)
    candidates = last | (named & fieldsets.proper_prefixes(last))
    doomed = {p for p in candidates if p not in owned and not (p in named and p in owned_prefixes)}
    return fieldsets.remove_paths(merged, doomed, shape) if doomed else merged


def _describe(conflicts: list[tuple[Entry, FieldSet]]) -> list[Conflict]:
    out = []
    for entry, paths in conflicts:
        for path in sorted(paths, key=fieldsv1.iteration_order):
            out.append(
                Conflict(
                    str(entry.get("manager") or ""),
                    fieldsv1.dotted(path),
                    str(entry.get("operation") or "Update"),
                    str(entry.get("apiVersion") or ""),
                    str(entry.get("subresource") or ""),
                )
            )
    out.sort(key=lambda c: c.identity())
    return out


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    type_info: TypeInfo,
    api_version: str,
    now: str,
    subresource: str | None = None,
) -> dict[str, Any]:
    """After a create, update or patch: ``new`` with managedFields updated for ``manager``
    (Update)."""
    shape = root_shape(type_info)
    entries = _entries(old) if old is not None else _entries(new)
    added, modified, removed = fieldsets.compare(old if old is not None else {}, new, shape)
    _ignored(subresource, added, modified, removed)
    taken = added | modified
    if not taken and not removed:
        return _with_entries(new, entries)
    key = (manager, "Update", subresource or None, api_version)
    own: Entry | None = None
    kept: list[Entry] = []
    for entry in entries:
        if own is None and _identity(entry) == key:
            own = entry
            continue
        tree = _tree(entry)
        if any(fieldsv1.has_member(tree, p) for p in taken) or any(
            fieldsv1.has_member(tree, p) for p in removed
        ):
            reduced = _without(entry, taken | removed)
            if reduced is not None:
                kept.append(reduced)
        else:
            kept.append(entry)
    previous = fieldsv1.from_fields_v1(_tree(own)) if own is not None else set()
    if taken:
        kept.append(
            _new_entry(
                manager, "Update", api_version, now, subresource, (previous - removed) | taken
            )
        )
    elif own is not None and previous - removed:
        kept.append(
            own
            if not previous & removed
            else {**own, "fieldsV1": fieldsv1.to_fields_v1(previous - removed)}
        )
    return _with_entries(new, kept)
