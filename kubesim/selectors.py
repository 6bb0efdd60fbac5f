"""Label and field selectors with the grammar and error messages of kube-apiserver."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.errors import ApiError

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label, as the real server does.
        return not present or labels[self.key] not in self.values


def _invalid(selector: str, why: str) -> ApiError:
    return ApiError(400, f"unable to parse requirement: {why}" if selector else why)


_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|[^\s!=(),]+)")


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h` into requirements (AND-ed)."""
    tokens: list[str] = [str(t) for t in _TOKEN.findall(text) if t]
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise _invalid(text, f"found '', expected: identifier in selector {text!r}")
        tok = tokens[i]
        i += 1
        return tok

    while i < len(tokens):
        tok = take()
        if tok == "!":
            key = take()
            _check_key(key)
            reqs.append(Requirement(key, "!"))
        else:
            key = tok
            _check_key(key)
            nxt = tokens[i] if i < len(tokens) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                i += 1
                value = tokens[i] if i < len(tokens) and tokens[i] != "," else ""
                if value:
                    i += 1
                _check_value(value)
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", frozenset({value})))
            elif nxt in ("in", "notin"):
                i += 1
                if take() != "(":
                    raise _invalid(text, f"expected '(' after {nxt} in {text!r}")
                values: set[str] = set()
                while True:
                    v = take()
                    if v == ")":
                        break
                    if v == ",":
                        continue
                    _check_value(v)
                    values.add(v)
                reqs.append(Requirement(key, nxt, frozenset(values)))
            else:
                raise _invalid(text, f"found '{nxt}', expected: '=', '!=', '==', 'in', notin'")
        if i < len(tokens):
            if tokens[i] != ",":
                raise _invalid(text, f"found '{tokens[i]}', expected: ',' or 'end of string'")
            i += 1
    return tuple(reqs)


def _check_key(key: str) -> None:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise ApiError(
            400,
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{key}": name part '
            "must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character",
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise ApiError(
            400,
            f'unable to parse requirement: values[0]: Invalid value: "{value}": a valid label '
            "must be an empty "
            "string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an "
            "alphanumeric character",
        )


def labels_match(reqs: tuple[Requirement, ...], obj: Mapping[str, Any]) -> bool:
    if not reqs:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


FieldGetter = Callable[[Mapping[str, Any]], str | None]

_COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace", ""),
}


def _path_getter(*path: str) -> FieldGetter:
    def get(o: Mapping[str, Any]) -> str | None:
        cur: Any = o
        for p in path:
            if not isinstance(cur, Mapping):
                return ""
            cur = cur.get(p)
        return "" if cur is None else str(cur)

    return get


_KIND_FIELDS: dict[tuple[str, str], dict[str, FieldGetter]] = {
    ("", "secrets"): {"type": _path_getter("type")},
    ("", "namespaces"): {"status.phase": _path_getter("status", "phase")},
    ("", "events"): {
        f"involvedObject.{f}": _path_getter("involvedObject", f)
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    | {
        "reason": _path_getter("reason"),
        "source": _path_getter("source", "component"),
        "type": _path_getter("type"),
    },
}


@dataclass(frozen=True)
class FieldRequirement:
    getter: FieldGetter
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (self.getter(obj) == self.value) != self.negate


def parse_field_selector(
    text: str, gr: tuple[str, str], kind: str, api_version: str
) -> tuple[FieldRequirement, ...]:
    """Parse `metadata.name=x,status.phase!=y`; unsupported fields are a 400 like the real
    server."""
    supported = _COMMON_FIELDS | _KIND_FIELDS.get(gr, {})
    reqs: list[FieldRequirement] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([^=!]+)(==|!=|=)(.*)", part)
        if not m:
            raise ApiError(400, f"invalid selector: '{text}'; can't understand '{part}'")
        field_name, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        getter = supported.get(field_name)
        if getter is None:
            raise ApiError(
                400,
                f"field label not supported: {field_name}",
                reason="BadRequest",
            )
        reqs.append(FieldRequirement(getter, value, op == "!="))
    return tuple(reqs)


def fields_match(reqs: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in reqs)
