"""Field sets of objects: what an apply configuration claims, what a write changed, pruning.

Paths and their FieldsV1 encoding are described in :mod:`kubesim.fieldsv1`.  What makes a node a
member follows structured-merge-diff:

- :func:`field_set` (what an apply configuration claims): scalars, atomic lists and maps,
  list items, empty or null values, and keys of granular maps (not struct fields) are members;
- :func:`compare` (what a write changed): every node of an added or removed subtree, and the
  leaves whose values changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubesim.fieldsv1 import FieldSet, Path, go_json
from kubesim.merge_types import ListType, Shape


def item_element(item: Any, list_type: ListType) -> str:
    """The path element of one item of a ``set`` or ``map`` list."""
    if list_type.kind == "map" and isinstance(item, dict):
        keys = list_type.keys
        if len(keys) == 1:
            name = keys[0]
            if name not in item:
                return "k:{}"
            return f"k:{{{go_json(name)}:{go_json(item[name])}}}"
        fields = sorted(k for k in keys if k in item)
        return "k:{" + ",".join(f"{go_json(k)}:{go_json(item[k])}" for k in fields) + "}"
    return "v:" + go_json(item)


# ----------------------------------------------------------------- what an object claims


def field_set(obj: Mapping[str, Any], shape: Shape) -> FieldSet:
    """The fields an apply configuration sets (structured-merge-diff ``ToFieldSet``)."""
    out: FieldSet = set()
    _collect_map(obj, shape, (), out)
    return out


def _collect_map(value: Mapping[str, Any], shape: Shape, path: Path, out: FieldSet) -> None:
    untracked, unowned = shape.untracked, shape.unowned
    for key, child_value in value.items():
        if key in untracked:
            continue
        child, declared = shape.field(key)
        child_path = (*path, "f:" + key)
        owned = key not in unowned
        if isinstance(child_value, dict) and not child.atomic_map:
            if child_value:
                _collect_map(child_value, child, child_path, out)
            if owned and (not child_value or not declared):
                out.add(child_path)
        elif isinstance(child_value, list) and child.list_type.kind != "atomic":
            _collect_items(child_value, child, child_path, out)
            if owned and not declared:
                out.add(child_path)
        elif owned:
            out.add(child_path)


def _collect_items(items: list[Any], shape: Shape, path: Path, out: FieldSet) -> None:
    list_type = shape.list_type
    item_shape = shape.items()
    elements = [item_element(item, list_type) for item in items]
    repeated = (
        {e for e in elements if elements.count(e) > 1}
        if len(set(elements)) < len(elements)
        else set()
    )
    for element, item in zip(elements, items, strict=True):
        item_path = (*path, element)
        out.add(item_path)
        if element in repeated:
            continue  # duplicated items are owned whole, as structured-merge-diff does
        if isinstance(item, dict) and not item_shape.atomic_map:
            _collect_map(item, item_shape, item_path, out)


# ----------------------------------------------------------------- what a write changed


def compare(
    old: Mapping[str, Any], new: Mapping[str, Any], shape: Shape
) -> tuple[FieldSet, FieldSet, FieldSet]:
    """``(added, modified, removed)`` between two versions of an object."""
    added: FieldSet = set()
    modified: FieldSet = set()
    removed: FieldSet = set()
    _cmp_map(old, new, shape, (), (added, modified, removed))
    for key in shape.unowned:
        added.discard(("f:" + key,))
        removed.discard(("f:" + key,))
    return added, modified, removed


_Sets = tuple[FieldSet, FieldSet, FieldSet]


def _cmp_map(
    old: Mapping[str, Any], new: Mapping[str, Any], shape: Shape, path: Path, sets: _Sets
) -> None:
    untracked = shape.untracked
    for key, old_value in old.items():
        if key in untracked:
            continue
        child = shape.field(key)[0]
        if key in new:
            new_value = new[key]
            if new_value is not old_value:
                _cmp(old_value, new_value, child, (*path, "f:" + key), sets)
        else:
            _whole(old_value, child, (*path, "f:" + key), sets[2])
    for key, new_value in new.items():
        if key not in old and key not in untracked:
            _whole(new_value, shape.field(key)[0], (*path, "f:" + key), sets[0])


def _cmp(old: Any, new: Any, shape: Shape, path: Path, sets: _Sets) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        if shape.atomic_map or not (old or new):
            if old != new:
                sets[1].add(path)
        else:
            _cmp_map(old, new, shape, path, sets)
    elif isinstance(old, list) and isinstance(new, list):
        if shape.list_type.kind == "atomic" or not (old or new):
            if old != new:
                sets[1].add(path)
        else:
            _cmp_items(old, new, shape, path, sets)
    elif not same_scalar(old, new):
        sets[1].add(path)


def same_scalar(a: Any, b: Any) -> bool:
    """JSON equality of two values: ``1 == 1.0`` but ``true != 1`` (Python says otherwise)."""
    if type(a) is type(b):
        return bool(a == b)
    numbers = (int, float)
    return type(a) in numbers and type(b) in numbers and a == b


def _cmp_items(old: list[Any], new: list[Any], shape: Shape, path: Path, sets: _Sets) -> None:
    list_type, item_shape = shape.list_type, shape.items()
    old_by: dict[str, list[Any]] = {}
    new_by: dict[str, list[Any]] = {}
    for item in old:
        old_by.setdefault(item_element(item, list_type), []).append(item)
    for item in new:
        new_by.setdefault(item_element(item, list_type), []).append(item)
    added, modified, removed = sets
    for element in {**old_by, **new_by}:
        before: list[Any] = old_by.get(element, [])
        after: list[Any] = new_by.get(element, [])
        item_path = (*path, element)
        if len(before) <= 1 and len(after) <= 1:
            if before and after:
                if before[0] is not after[0]:
                    _cmp(before[0], after[0], item_shape, item_path, sets)
            elif before:
                _whole(before[0], item_shape, item_path, removed)
            else:
                _whole(after[0], item_shape, item_path, added)
        elif len(before) > 1 and len(after) > 1:
            if before != after:
                modified.add(item_path)
        elif len(before) > 1:
            if after:
                _whole(after[0], item_shape, item_path, added)
            removed.add(item_path)
        else:
            if before:
                _whole(before[0], item_shape, item_path, removed)
            added.add(item_path)


def _whole(value: Any, shape: Shape, path: Path, out: FieldSet) -> None:
    """Every node of a subtree present on one side only."""
    if isinstance(value, dict) and value and not shape.atomic_map:
        untracked = shape.untracked
        for key, child_value in value.items():
            if key not in untracked:
                _whole(child_value, shape.field(key)[0], (*path, "f:" + key), out)
    elif isinstance(value, list) and value and shape.list_type.kind != "atomic":
        item_shape = shape.items()
        for item in value:
            _whole(item, item_shape, (*path, item_element(item, shape.list_type)), out)
    out.add(path)


# ----------------------------------------------------------------- set algebra with the schema


def named_fields(paths: Iterable[Path], shape: Shape) -> FieldSet:
    """Every path, or prefix of one, that ends in a declared struct field.

    structured-merge-diff's ``EnsureNamedFieldsAreMembers`` counts those as owned when a field
    below them is: pruning a dropped struct removes it whole, but never a map's other keys.
    """
    shapes: dict[Path, Shape] = {(): shape}
    out: FieldSet = set()
    for path in paths:
        for depth in range(1, len(path) + 1):
            prefix = path[:depth]
            if prefix in shapes:
                continue
            parent = shapes[path[: depth - 1]]
            element = prefix[-1]
            if element.startswith("f:"):
                child, declared = parent.field(element[2:])
                if declared:
                    out.add(prefix)
            else:
                child = parent.items()
            shapes[prefix] = child
    return out


def proper_prefixes(paths: Iterable[Path]) -> FieldSet:
    return {path[:depth] for path in paths for depth in range(1, len(path))}


_EMPTIED = object()


def remove_paths(obj: dict[str, Any], paths: Iterable[Path], shape: Shape) -> dict[str, Any]:
    """``obj`` without the nodes at ``paths`` (whole subtrees), copying only what changes.

    Maps and lists emptied by a removal go too: structured-merge-diff leaves ``null`` there and
    the server drops it.
    """
    trie: dict[str, Any] = {}
    for path in sorted(paths, key=len):
        node = trie
        for element in path[:-1]:
            node = node.setdefault(element, {})
            if node is True:
                break
        else:
            node[path[-1]] = True
    result = _remove(obj, trie, shape)
    return result if isinstance(result, dict) else {}


def _remove(value: Any, trie: dict[str, Any], shape: Shape) -> Any:
    if isinstance(value, dict):
        new: dict[str, Any] | None = None
        for element, below in trie.items():
            name = element[2:]
            if not element.startswith("f:") or name not in value:
                continue
            if new is None:
                new = dict(value)
            if below is True:
                del new[name]
                continue
            child = _remove(value[name], below, shape.field(name)[0])
            if child is _EMPTIED:
                del new[name]
            else:
                new[name] = child
        if new is None:
            return value
        return new if new else _EMPTIED
    if isinstance(value, list) and shape.list_type.kind != "atomic":
        item_shape = shape.items()
        kept: list[Any] = []
        changed = False
        for item in value:
            below = trie.get(item_element(item, shape.list_type))
            if below is None:
                kept.append(item)
                continue
            changed = True
            if below is not True:
                item = _remove(item, below, item_shape)
                if item is not _EMPTIED:
                    kept.append(item)
        if not changed:
            return value
        return kept if kept else _EMPTIED
    return value
