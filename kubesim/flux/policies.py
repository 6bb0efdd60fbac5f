"""ImagePolicy tag selection: filterTags (pattern + extract), numerical, semver, alphabetical."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class PolicyError(Exception):
    """A policy that cannot be evaluated (bad regex, bad semver range, no policy)."""


def _extract(pattern: re.Pattern[str], template: str, tag: str) -> str | None:
    m = pattern.search(tag)
    if m is None:
        return None
    if not template:
        return tag

    def group(g: re.Match[str]) -> str:
        name = g.group(1) or g.group(2)
        try:
            return (m.group(int(name)) if name.isdigit() else m.group(name)) or ""
        except IndexError:
            return ""

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", group, template)


def select(tags: list[str], filter_tags: Mapping[str, Any], policy: Mapping[str, Any]) -> str | None:
    """The tag the policy picks, or None when no tag qualifies."""
    try:
        pattern = re.compile(str(filter_tags.get("pattern") or ".*"))
    except re.error as e:
        raise PolicyError(f"invalid regular expression pattern '{filter_tags.get('pattern')}': {e}") from e
    template = str(filter_tags.get("extract") or "")
    candidates: list[tuple[str, str]] = []
    for tag in tags:
        value = _extract(pattern, template, tag)
        if value is not None:
            candidates.append((value, tag))
    if "numerical" in policy:
        order = (policy["numerical"] or {}).get("order", "asc")
        numeric = []
        for value, tag in candidates:
            try:
                numeric.append((float(value), tag))
            except ValueError:
                continue
        if not numeric:
            return None
        return (max(numeric) if order == "asc" else min(numeric))[1]
    if "alphabetical" in policy:
        order = (policy["alphabetical"] or {}).get("order", "asc")
        if not candidates:
            return None
        return (max(candidates) if order == "asc" else min(candidates))[1]
    if "semver" in policy:
        return _semver(candidates, str((policy["semver"] or {}).get("range", "")))
    raise PolicyError("no policy specified: one of numerical, semver or alphabetical is required")


_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def _parse(text: str) -> Version | None:
    m = _VERSION.match(text.strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), m.group(4) or ""


def _key(v: Version) -> tuple[int, int, int, int, str]:
    return (v[0], v[1], v[2], 0 if v[3] else 1, v[3])


Version = tuple[int, int, int, str]


def _version(nums: list[int], pre: str = "") -> Version:
    padded = [*nums, 0, 0, 0]
    return (padded[0], padded[1], padded[2], pre)


def _constraint(part: str) -> list[tuple[str, Version]]:
    part = part.strip()
    if part in ("*", "x", ""):
        return []
    m = re.match(r"^(>=|<=|>|<|=|\^|~)?\s*v?([\dxX*]+(?:\.[\dxX*]+)?(?:\.[\dxX*]+)?(?:-[0-9A-Za-z.-]+)?)$", part)
    if not m:
        raise PolicyError(f"invalid semver range '{part}'")
    op, text = m.group(1) or "=", m.group(2)
    pieces = text.split("-", 1)[0].split(".")
    wild = next((i for i, p in enumerate(pieces) if p in ("x", "X", "*")), None)
    nums = [int(p) for p in pieces[: wild if wild is not None else len(pieces)]]
    pre = text.split("-", 1)[1] if "-" in text else ""
    base = _version(nums, pre)
    if wild is not None or (op == "=" and len(pieces) < 3):
        count = wild if wild is not None else len(pieces)
        if count == 0:
            return []
        upper = nums[:count]
        upper[-1] += 1
        return [(">=", base), ("<", _version(upper))]
    if op == "^":
        major, minor, patch = base[0], base[1], base[2]
        if major:
            return [(">=", base), ("<", (major + 1, 0, 0, ""))]
        if minor:
            return [(">=", base), ("<", (0, minor + 1, 0, ""))]
        return [(">=", base), ("<", (0, 0, patch + 1, ""))]
    if op == "~":
        return [(">=", base), ("<", (base[0], base[1] + 1, 0, ""))]
    return [(op, base)]


def _semver(candidates: list[tuple[str, str]], range_text: str) -> str | None:
    alternatives = range_text.split("||")
    allowed = []
    for alt in alternatives:
        parts = re.split(r"\s*,\s*|\s+(?=[<>=^~])", alt.strip()) if alt.strip() else [""]
        allowed.append([c for p in parts for c in _constraint(p)])
    ranges_with_pre = "-" in range_text
    best: tuple[tuple[int, int, int, int, str], str] | None = None
    for value, tag in candidates:
        v = _parse(value)
        if v is None or (v[3] and not ranges_with_pre):
            continue
        if not any(all(_ok(v, op, bound) for op, bound in cons) for cons in allowed):
            continue
        if best is None or _key(v) > best[0]:
            best = (_key(v), tag)
    return best[1] if best else None


def _ok(v: Version, op: str, bound: Version) -> bool:
    a, b = _key(v), _key(bound)
    return {"=": a == b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
