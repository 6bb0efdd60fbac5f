"""A tiny, safe evaluator for the subset of CEL that CRD validation rules commonly use:
`self.a.b`, `has(self.a)`, `!`, `&&`, `||`, `==`, `!=`, `in [..]`, `size(x)`, literals.
A rule outside the subset evaluates to None (skipped), never to an exception."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(\|\||&&|==|!=|<=|>=|[!()\[\],.<>])|('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(\d+)|([A-Za-z_][A-Za-z0-9_]*))"
)
_MISSING = object()


class _Unsupported(Exception):
    pass


def _tokens(rule: str) -> list[str]:
    out, pos = [], 0
    while pos < len(rule):
        if rule[pos:].strip() == "":
            break
        m = _TOKEN.match(rule, pos)
        if not m or m.end() == pos:
            raise _Unsupported(rule[pos:])
        out.append(m.group(0).strip())
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[str], self_value: Any) -> None:
        self.t = tokens
        self.i = 0
        self.self_value = self_value

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Unsupported(f"expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise _Unsupported(f"trailing {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = bool(value) or bool(right)
        return value

    def and_(self) -> Any:
        value = self.cmp()
        while self.peek() == "&&":
            self.take()
            right = self.cmp()
            value = bool(value) and bool(right)
        return value

    def cmp(self) -> Any:
        left = self.unary()
        op = self.peek()
        if op in ("==", "!=", "<", ">", "<=", ">=", "in"):
            self.take()
            right = self.unary()
            if op == "in":
                return isinstance(right, list) and left in right
            if left is _MISSING or right is _MISSING:
                raise _Unsupported("comparison with a missing field")
            return {
                "==": lambda: left == right,
                "!=": lambda: left != right,
                "<": lambda: left < right,
                ">": lambda: left > right,
                "<=": lambda: left <= right,
                ">=": lambda: left >= right,
            }[op]()
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not bool(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while self.peek() == ".":
            self.take()
            name = self.take()
            value = value.get(name, _MISSING) if isinstance(value, dict) else _MISSING
        return value

    def primary(self) -> Any:
        tok = self.take()
        if tok == "(":
            value = self.or_()
            self.take(")")
            return value
        if tok == "[":
            items = []
            while self.peek() != "]":
                items.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take("]")
            return items
        if tok[0] in "'\"":
            return tok[1:-1].encode().decode("unicode_escape")
        if tok.isdigit():
            return int(tok)
        if tok in ("true", "false"):
            return tok == "true"
        if tok == "null":
            return None
        if tok == "self":
            return self.self_value
        if tok == "has":
            self.take("(")
            value = self.postfix()
            self.take(")")
            return value is not _MISSING
        if tok == "size":
            self.take("(")
            value = self.or_()
            self.take(")")
            if value is _MISSING:
                raise _Unsupported("size of a missing field")
            return len(value)
        raise _Unsupported(tok)


def evaluate(rule: str, self_value: Any) -> bool | None:
    """True/False for a rule in the subset, None for one we cannot evaluate."""
    try:
        result = _Parser(_tokens(rule), self_value).parse()
    except (_Unsupported, TypeError, ValueError, IndexError):
        return None
    return bool(result) if isinstance(result, bool) else None
