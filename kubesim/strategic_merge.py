"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``).

Semantics follow apimachinery's ``strategicpatch`` package, which kubectl's client-side apply,
``kubectl patch`` and ``kubectl edit`` rely on:

- maps merge as in a JSON merge patch (``null`` deletes);
- a list whose field has a merge key merges its items by that key; a list of scalars with
  the merge strategy (``metadata.finalizers``) merges as a set; other lists are replaced;
- merged lists keep the patch's order for its items and the live order for the others, the
  two interleaved by live position (so new items come first, as with a real server);
- directives: ``$patch: replace|delete|merge`` in a map or a list item (``{"$patch":
  "replace"}`` as a list item replaces the whole list), ``$retainKeys`` (clear the keys not
  listed), ``$deleteFromPrimitiveList/<field>``, and ``$setElementOrder/<field>`` (the order
  kubectl apply wants for a merged list).  No ``$`` key survives into the result.

``merge_key(path)`` tells how the list at ``path`` (field names from the root, list indices
omitted) merges: ``None`` replaces it, ``""`` merges scalars as a set, a field name merges maps
by that field.  ObjectMeta's lists merge as on every real kind (finalizers as a set,
ownerReferences by ``uid``) whatever ``merge_key`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from kubesim.errors import PatchError

MergeKey = Callable[[tuple[str, ...]], str | None]

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"
_OBJECT_META: dict[tuple[str, ...], str] = {
    ("metadata", "finalizers"): "",
    ("metadata", "ownerReferences"): "uid",
}


class _Deleted:
    """What a ``$patch: delete`` map turns into: its key goes away."""


_DELETED = _Deleted()


def strategic_merge_patch(target: Any, patch: Any, *, merge_key: MergeKey) -> Any:
    """``target`` with ``patch`` applied; raises PatchError (400 malformed, 422 inapplicable)."""
    if not isinstance(patch, dict):
        raise PatchError(
            "json: cannot unmarshal array into Go value of type map[string]interface {}", 400
        )
    merged = _Merger(merge_key).merge_map(target if isinstance(target, dict) else {}, patch, ())
    return {} if isinstance(merged, _Deleted) else merged


class _Merger:
    def __init__(self, merge_key: MergeKey) -> None:
        self._merge_key = merge_key

    def key(self, path: tuple[str, ...]) -> str | None:
        key = self._merge_key(path)
        return _OBJECT_META.get(path) if key is None else key

    # ------------------------------------------------------------- maps

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> Any:
        directive = patch.get(_DIRECTIVE)
        if directive == "replace":
            return clean({k: v for k, v in patch.items() if k != _DIRECTIVE})
        if directive == "delete":
            return _DELETED
        if directive not in (None, "merge"):
            raise PatchError(f"unknown patch type: {directive} in map: {go_repr(patch)}")
        out = dict(original)
        if _RETAIN_KEYS in patch:
            _retain_keys(out, patch)
        for key, value in patch.items():
            if key.startswith(_DELETE_FROM):
                field = _directive_field(
                    key, _DELETE_FROM, "invalid patch format of primitive list"
                )
                if not isinstance(value, list):
                    raise PatchError("invalid patch format of primitive list", 400)
                current = out.get(field)
                if isinstance(current, list):
                    doomed = {_identity(v) for v in value}
                    out[field] = [v for v in current if _identity(v) not in doomed]
        ordered = set()
        for key, order in patch.items():
            if key.startswith(_ORDER):
                field = _directive_field(
                    key, _ORDER, "invalid patch format of setElementOrder list"
                )
                self._set_order(out, patch, field, order, (*path, field))
                ordered.add(field)
        for key, value in patch.items():
            if key.startswith("$") or key in ordered:
                continue
            if value is None:
                out.pop(key, None)
                continue
            current = out.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                merged = self.merge_map(current, value, (*path, key))
            elif isinstance(current, list) and isinstance(value, list):
                merged = self.merge_list(current, value, (*path, key))
            else:
                merged = clean(value)
            if isinstance(merged, _Deleted):
                out.pop(key, None)
            else:
                out[key] = merged
        return out

    # ------------------------------------------------------------- lists

    def merge_list(self, original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
        key = self.key(path)
        if key is None:
            return _clean_list(patch)
        if not original and not patch:
            return []
        if not _of_maps(original, patch):
            merged = _unique([*original, *patch])
            return _interleave(merged, patch, original, "")
        if not key:
            raise PatchError(f"cannot merge lists without merge key for {path[-1] if path else ''}")
        original, items = _special_items(original, patch, key)
        if items is None:
            return original
        merged = list(original)
        for item in items:
            if key not in item:
                raise PatchError(f"map: {go_repr(item)} does not contain declared merge key: {key}")
            wanted = _identity(item[key])
            at = next(
                (
                    i
                    for i, o in enumerate(merged)
                    if isinstance(o, dict) and key in o and _identity(o[key]) == wanted
                ),
                None,
            )
            if at is None:
                merged.append(clean(item))
            else:
                merged[at] = self.merge_map(merged[at], item, path)
        return _interleave(merged, items, original, key)

    def _set_order(
        self,
        out: dict[str, Any],
        patch: dict[str, Any],
        field: str,
        order: Any,
        path: tuple[str, ...],
    ) -> None:
        """Merge ``field`` (if patched) and put its items in the ``$setElementOrder`` order."""
        if not isinstance(order, list):
            raise PatchError("invalid patch format of setElementOrder list", 400)
        original, patched = out.get(field), patch.get(field)
        for value in (original, patched):
            if value is not None and not isinstance(value, list):
                raise PatchError(
                    f"expected a []interface {{}}, but received a {type(value).__name__}"
                )
        key = self.key(path) or ""
        if isinstance(patched, list):
            _check_order(patched, order, key)
        if isinstance(original, list) and isinstance(patched, list):
            merged = self.merge_list(original, patched, path)
        elif isinstance(patched, list):
            merged = _clean_list(patched)
        elif isinstance(original, list):
            merged = original
        else:
            return
        if key and not _of_maps(merged, order):
            out[field] = merged
            return
        out[field] = _interleave(merged, order, original or [], key)


def _directive_field(key: str, prefix: str, problem: str) -> str:
    field = key[len(prefix) :]
    if not field:
        raise PatchError(problem, 400)
    return field


def _retain_keys(out: dict[str, Any], patch: dict[str, Any]) -> None:
    """Clear the keys ``$retainKeys`` does not list (a union's other members)."""
    retain = patch[_RETAIN_KEYS]
    if not isinstance(retain, list):
        raise PatchError("invalid patch format of retainKeys", 400)
    allowed = {k for k in retain if isinstance(k, str)}
    for key, value in patch.items():
        if value is not None and not key.startswith("$") and key not in allowed:
            raise PatchError("invalid patch format of retainKeys", 400)
    for key in [k for k in out if k not in allowed]:
        del out[key]


def _special_items(
    original: list[Any], patch: list[Any], key: str
) -> tuple[list[Any], list[dict[str, Any]] | None]:
    """Apply the ``$patch`` items of a merged list: ``(original after deletions, items to merge)``.

    With a ``replace`` item the list becomes the patch's other items: ``(them, None)``.
    """
    items: list[dict[str, Any]] = []
    replace = False
    for item in patch:
        directive = item.get(_DIRECTIVE)
        if directive is None:
            items.append(item)
        elif directive == "delete":
            if key not in item:
                raise PatchError(f"map: {go_repr(item)} does not contain declared merge key: {key}")
            doomed = _identity(item[key])
            original = [
                o for o in original if not (isinstance(o, dict) and _identity(o.get(key)) == doomed)
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            items.append({k: v for k, v in item.items() if k != _DIRECTIVE})
        else:
            raise PatchError(f"unknown patch type: {directive} in map: {go_repr(item)}")
    if replace:
        return _clean_list(items), None
    return original, items


def _check_order(patched: list[Any], order: list[Any], key: str) -> None:
    """The patch list must follow the ``$setElementOrder`` list, as the server checks."""
    wanted = [i for i in patched if not (isinstance(i, dict) and _DIRECTIVE in i)]
    at = 0
    for entry in order:
        if at < len(wanted) and _ident_of(wanted[at], key) == _ident_of(entry, key):
            at += 1
    if at < len(wanted):
        raise PatchError(
            f"The order in patch list:\n{go_repr(patched)}\n doesn't match $setElementOrder list:\n"
            f"{go_repr(order)}\n"
        )


def _interleave(
    merged: list[Any], patch_order: list[Any], live_order: list[Any], key: str
) -> list[Any]:
    """Order a merged list: patched items in patch order, the others in live order, interleaved.

    A live-only item goes before a patched item only when both were live and it came first
    there; so items new to the list come before the remaining live-only ones.
    """
    rank: dict[Hashable, int] = {}
    for position, entry in enumerate(patch_order):
        rank.setdefault(_ident_of(entry, key), position)
    live_rank: dict[Hashable, int] = {}
    for position, entry in enumerate(live_order):
        live_rank.setdefault(_ident_of(entry, key), position)
    patched = sorted(
        (m for m in merged if _ident_of(m, key) in rank), key=lambda m: rank[_ident_of(m, key)]
    )
    rest = sorted(
        (m for m in merged if _ident_of(m, key) not in rank),
        key=lambda m: live_rank.get(_ident_of(m, key), len(live_rank)),
    )
    out: list[Any] = []
    i = j = 0
    while i < len(rest) or j < len(patched):
        if j >= len(patched):
            out.append(rest[i])
            i += 1
            continue
        if i < len(rest):
            left = live_rank.get(_ident_of(rest[i], key))
            right = live_rank.get(_ident_of(patched[j], key))
            if left is not None and right is not None and left < right:
                out.append(rest[i])
                i += 1
                continue
        out.append(patched[j])
        j += 1
    return out


def _ident_of(item: Any, key: str) -> Hashable:
    if key:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {go_repr(item)} does not contain declared merge key: {key}")
        return _identity(item[key])
    return _identity(item)


def _identity(value: Any) -> Hashable:
    """A hashable stand-in with JSON equality (``1 == 1.0``, ``true != 1``)."""
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, int | float | str):
        return value
    return ("j", go_repr(value))


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Hashable] = set()
    out = []
    for value in values:
        ident = _identity(value)
        if ident not in seen:
            seen.add(ident)
            out.append(value)
    return out


def _of_maps(*lists: list[Any]) -> bool:
    """Whether the items are maps; mixed item types and lists of lists are refused, as the
    server does."""
    kinds = {_kind(v) for items in lists for v in items}
    if "list" in kinds:
        raise PatchError("lists of lists are not supported")
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {go_repr(list(lists))}")
    return kinds == {"map"}


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def clean(value: Any) -> Any:
    """New content from a patch: directives and ``null`` members dropped."""
    if isinstance(value, dict):
        directive = value.get(_DIRECTIVE)
        if directive == "delete":
            return _DELETED
        if directive not in (None, "replace", "merge"):
            raise PatchError(f"unknown patch type: {directive} in map: {go_repr(value)}")
        out = {}
        for k, v in value.items():
            if v is None or k.startswith("$"):
                continue
            cleaned = clean(v)
            if not isinstance(cleaned, _Deleted):
                out[k] = cleaned
        return out
    if isinstance(value, list):
        return _clean_list(value)
    return value


def _clean_list(items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        if (
            isinstance(item, dict)
            and _DIRECTIVE in item
            and not any(not k.startswith("$") for k in item)
        ):
            continue  # a bare directive item ({"$patch": "replace"}) is not content
        cleaned = clean(item)
        if not isinstance(cleaned, _Deleted):
            out.append(cleaned)
    return out


def go_repr(value: Any) -> str:
    """A value as Go's ``%v`` prints decoded JSON, for error messages like the server's."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_repr(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_repr(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
