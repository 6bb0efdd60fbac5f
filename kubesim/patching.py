"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and, from :mod:`kubesim.strategic_merge`,
the strategic merge patch: the three patch types of the API, in one place for the handlers.

All functions are pure: inputs are never modified, results share the parts a patch leaves
alone with the target, and only containers on a changed path are copied.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kubesim.errors import REJECTED, PatchError
from kubesim.strategic_merge import strategic_merge_patch

__all__ = ["REJECTED", "PatchError", "json_merge_patch", "json_patch", "strategic_merge_patch"]


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = json_merge_patch(out.get(key), value)
        else:
            out[key] = value
    return out


# ----------------------------------------------------------------- RFC 6902

_INDEX = re.compile(r"0|[1-9][0-9]*")


def _pointer(path: Any) -> list[str]:
    """RFC 6901 reference tokens of a JSON pointer."""
    if not isinstance(path, str):
        raise _rejected(f"invalid JSON pointer: {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _rejected(f"JSON pointer must start with '/': {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _rejected(detail: str) -> PatchError:
    return PatchError(REJECTED, 422, detail)


def _index(token: str, size: int, path: str, *, insert: bool = False) -> int:
    if insert and token == "-":
        return size
    if not _INDEX.fullmatch(token):
        raise _rejected(f"invalid array index {token!r} in {path}")
    index = int(token)
    if index > size or (index == size and not insert):
        raise _rejected(
            f"Unable to access invalid index: {index}: invalid index referenced in {path}"
        )
    return index


def json_equal(a: Any, b: Any) -> bool:
    """RFC 6902 "test" equality: numbers by value, ``true`` is not ``1``, objects unordered."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


class _Document:
    """A document under patch: containers it copied may change in place, others are copied first."""

    def __init__(self, root: Any) -> None:
        self.root = root
        # Keeping the copies alive keeps their ids unique while they are recognised by id.
        self._copies: dict[int, Any] = {}

    def _own(self, value: Any) -> Any:
        if not isinstance(value, dict | list) or id(value) in self._copies:
            return value
        mine = dict(value) if isinstance(value, dict) else list(value)
        self._copies[id(mine)] = mine
        return mine

    def get(self, path: str) -> Any:
        node = self.root
        for token in _pointer(path):
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list):
                node = node[_index(token, len(node), path)]
            else:
                raise _rejected(f"doc is missing path: {path!r}: missing value")
        return node

    def parent(self, tokens: list[str], path: str) -> Any:
        """The container holding the last token, made writable along the way."""
        self.root = node = self._own(self.root)
        for token in tokens[:-1]:
            if isinstance(node, dict) and token in node:
                child = node[token] = self._own(node[token])
            elif isinstance(node, list):
                index = _index(token, len(node), path)
                child = node[index] = self._own(node[index])
            else:
                raise _rejected(f"doc is missing path: {path!r}: missing value")
            node = child
        if not isinstance(node, dict | list):
            raise _rejected(f"doc is missing path: {path!r}: missing value")
        return node

    def add(self, path: str, value: Any) -> None:
        tokens = _pointer(path)
        if not tokens:
            self.root = value
            return
        parent = self.parent(tokens, path)
        if isinstance(parent, dict):
            parent[tokens[-1]] = value
        else:
            parent.insert(_index(tokens[-1], len(parent), path, insert=True), value)

    def remove(self, path: str, op: str = "remove") -> Any:
        tokens = _pointer(path)
        if not tokens:
            raise _rejected(f"{op} operation does not apply: cannot remove the whole document")
        parent = self.parent(tokens, path)
        if isinstance(parent, dict):
            if tokens[-1] not in parent:
                raise _rejected(
                    f"{op} operation does not apply: doc is missing key: {path}: missing value"
                )
            return parent.pop(tokens[-1])
        return parent.pop(_index(tokens[-1], len(parent), path))

    def replace(self, path: str, value: Any) -> None:
        tokens = _pointer(path)
        if not tokens:
            self.root = value
            return
        parent = self.parent(tokens, path)
        if isinstance(parent, dict):
            if tokens[-1] not in parent:
                raise _rejected(
                    f"replace operation does not apply: doc is missing key: {path}: missing value"
                )
            parent[tokens[-1]] = value
        else:
            parent[_index(tokens[-1], len(parent), path)] = value


_MISSING = object()


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902: apply ``ops`` in order; any failing operation rejects the whole patch."""
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    if not all(isinstance(op, dict) for op in ops):
        raise PatchError(
            "json: cannot unmarshal array element into Go value of type jsonpatch.Operation", 400
        )
    doc = _Document(target)
    for op in ops:
        kind = op.get("op")
        path = op.get("path", _MISSING)
        if not isinstance(path, str):
            raise _rejected(
                f"{kind} operation missing path field"
                if path is _MISSING
                else f"invalid path {path!r}"
            )
        value = op.get("value", _MISSING)
        if kind in ("add", "replace", "test") and value is _MISSING:
            raise _rejected(f"{kind} operation missing value field")
        if kind == "add":
            doc.add(path, value)
        elif kind == "remove":
            doc.remove(path)
        elif kind == "replace":
            doc.get(path)
            doc.replace(path, value)
        elif kind in ("move", "copy"):
            source = op.get("from", _MISSING)
            if not isinstance(source, str):
                raise _rejected(f"{kind} operation missing from field")
            if kind == "move":
                if path.startswith(source + "/"):
                    raise _rejected(
                        f"move operation does not apply: {source} is a prefix of {path}"
                    )
                if path != source:
                    doc.add(path, doc.remove(source, "move"))
            else:
                doc.add(path, copy.deepcopy(doc.get(source)))
        elif kind == "test":
            if not json_equal(doc.get(path), value):
                raise _rejected(f"testing value {path} failed: test failed")
        else:
            raise _rejected(f"Unexpected kind: {kind}")
    return doc.root
