"""ImagePolicy tag selection as image-reflector-controller v1 does it (internal/policy):
`filterTags` (a Go RE2 pattern, searched, and an `extract` template), then one of the
`numerical`, `alphabetical` or `semver` policies.  Errors carry the controller's messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class InvalidPolicy(Exception):
    """The policy cannot be evaluated at all (the controller marks the object Stalled)."""


class NoLatest(Exception):
    """No tag qualifies, or one cannot be compared (Ready=False, reason `Failure`)."""


_GO_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_TEMPLATE_REF = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def compile_go_regexp(pattern: str) -> re.Pattern[str]:
    """A Go RE2 pattern in Python: `(?<name>…)` becomes `(?P<name>…)`, classes are ASCII."""
    try:
        return re.compile(_GO_NAMED_GROUP.sub("(?P<", pattern), re.ASCII)
    except re.error as e:
        raise InvalidPolicy(
            f"failed to filter tags: invalid regular expression pattern '{pattern}': "
            f"error parsing regexp: {e}"
        ) from e


def expand(template: str, match: re.Match[str]) -> str:
    """Go's `Regexp.ExpandString`: `$name`, `${name}`, `$1`; unknown groups expand to ``."""

    def one(ref: re.Match[str]) -> str:
        if ref.group(0) == "$$":
            return "$"
        name = ref.group(1) or ref.group(2)
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:  # no such group: Go expands it to nothing
            value = None
        return value or ""

    return _TEMPLATE_REF.sub(one, template)


def filter_tags(tags: Iterable[str], pattern: str, extract: str) -> dict[str, str]:
    """Extracted value -> original tag, for the tags the pattern finds a match in.

    Like the controller's map, a later tag with the same extracted value replaces an earlier
    one; tags come from its database in descending order."""
    regexp = compile_go_regexp(pattern)
    out: dict[str, str] = {}
    for tag in tags:
        m = regexp.search(tag)
        if m is not None:
            out[expand(extract, m) if extract else tag] = tag
    return out


def latest(values: list[str], policy: Mapping[str, Any]) -> str:
    """The value the policy picks from `values` (already filtered)."""
    if policy.get("semver") is not None:
        range_text = str((policy["semver"] or {}).get("range", ""))
        constraint = parse_range(range_text)
        if not values:
            raise NoLatest("version list argument cannot be empty")
        best: tuple[Version, str] | None = None
        for value in values:
            v = parse_version(value)
            if v is not None and constraint.allows(v) and (best is None or v.key() > best[0].key()):
                best = (v, value)
        if best is None:
            raise NoLatest("unable to determine latest version from provided list")
        return best[1]
    if policy.get("alphabetical") is not None:
        order = _order(policy["alphabetical"])
        if not values:
            raise NoLatest("version list argument cannot be empty")
        return max(values) if order == "ASC" else min(values)
    if policy.get("numerical") is not None:
        order = _order(policy["numerical"])
        if not values:
            raise NoLatest("version list argument cannot be empty")
        numbers: list[tuple[float, str]] = []
        for value in values:
            number = _parse_float(value)
            if number is None:
                raise NoLatest(f"failed to parse invalid numeric value '{value}'")
            numbers.append((number, value))
        return (max(numbers) if order == "ASC" else min(numbers))[1]
    raise InvalidPolicy("invalid policy: given ImagePolicyChoice object is invalid")


def highest(
    tags: Iterable[str], range_text: str, *, as_version: Callable[[str], str] | None = None
) -> str | None:
    """The tag of the highest version `range_text` allows (None if none does, or the range is
    bad); `as_version(tag)` turns a tag into version text (e.g. OCI's `_` back into `+`)."""
    try:
        constraint = parse_range(range_text)
    except InvalidPolicy:
        return None
    best: tuple[SortKey, str] | None = None
    for tag in tags:
        v = parse_version(as_version(tag) if as_version else tag)
        if v is not None and constraint.allows(v) and (best is None or v.key() > best[0]):
            best = (v.key(), tag)
    return best[1] if best else None


def select(
    tags: Iterable[str], filter_spec: Mapping[str, Any] | None, policy: Mapping[str, Any]
) -> str:
    """The tag an ImagePolicy resolves to; raises InvalidPolicy or NoLatest."""
    check_policy(policy)
    tags = list(tags)
    if filter_spec is None:
        return latest(tags, policy)
    filtered = filter_tags(
        tags, str(filter_spec.get("pattern") or ""), str(filter_spec.get("extract") or "")
    )
    return filtered[latest(list(filtered), policy)]


def check_policy(policy: Mapping[str, Any]) -> None:
    """What `PolicerFromSpec` rejects before any tag is read."""
    if policy.get("semver") is not None:
        parse_range(str((policy["semver"] or {}).get("range", "")))
    elif policy.get("alphabetical") is None and policy.get("numerical") is None:
        raise InvalidPolicy("invalid policy: given ImagePolicyChoice object is invalid")
    for name in ("alphabetical", "numerical"):
        if policy.get(name) is not None:
            _order(policy[name])


def _order(spec: Any) -> str:
    order = str((spec or {}).get("order") or "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise InvalidPolicy(
            f"invalid policy: invalid order argument provided: '{order}', must be one of: ASC, DESC"
        )
    return order


def _parse_float(text: str) -> float | None:
    """Go's `strconv.ParseFloat` for decimal text (no `_` separators, unlike Python)."""
    if "_" in text or not text.strip() or text != text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------- semver (Masterminds v3 subset)
_VERSION = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_COMPARATOR = re.compile(
    r"^(>=|<=|!=|=>|=<|>|<|=|\^|~>|~)?\s*v?([0-9xX*]+(?:\.[0-9xX*]+){0,2})(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_OPERATOR_ONLY = re.compile(r">=|<=|!=|=>|=<|>|<|=|\^|~>|~")

SortKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""

    def key(self) -> SortKey:
        """Semver precedence: a release sorts after its prereleases; numeric ids before text."""
        ids = (
            tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.pre.split("."))
            if self.pre
            else ()
        )
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, ids)


def parse_version(text: str) -> Version | None:
    """fluxcd/pkg/version.ParseVersion (lenient: `v1`, `1.2`, `1.2.3-rc.1+build`)."""
    m = _VERSION.match(text)
    if not m:
        return None
    return Version(int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), m.group(4) or "")


@dataclass(frozen=True)
class Comparison:
    op: str
    """One of = != > >= < <=."""
    bound: Version

    def test(self, v: Version) -> bool:
        a, b = v.key(), self.bound.key()
        return {"=": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[
            self.op
        ]


@dataclass(frozen=True)
class Excluded:
    """`!=1.2` (a partial version): outside [lower, upper)."""

    lower: Version
    upper: Version
    op: str = "!="

    @property
    def bound(self) -> Version:
        return self.lower

    def test(self, v: Version) -> bool:
        return not self.lower.key() <= v.key() < self.upper.key()


Check = Comparison | Excluded


@dataclass(frozen=True)
class Constraint:
    """An OR of AND-groups of comparisons."""

    groups: tuple[tuple[Check, ...], ...]

    def allows(self, v: Version) -> bool:
        for group in self.groups:
            # Prereleases are excluded unless the group itself names a prerelease.
            if v.pre and not any(c.bound.pre for c in group):
                continue
            if all(c.test(v) for c in group):
                return True
        return False


def parse_range(text: str) -> Constraint:
    """Masterminds/semver constraints: `>=1.0.0 <2.0.0`, `>=1, <2`, `^1.2`, `~1.2`, `1.x`, `*`,
    `1.2 - 1.4.5`, `a || b`; raises InvalidPolicy like the controller's `improper constraint`."""
    groups: list[tuple[Check, ...]] = []
    for alternative in text.split("||"):
        alternative = alternative.strip()
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alternative)
        if hyphen:
            groups.append(
                (
                    *_comparator(">=" + hyphen.group(1), text),
                    *_comparator("<=" + hyphen.group(2), text),
                )
            )
            continue
        merged: list[str] = []
        for part in (p for p in re.split(r"\s*,\s*|\s+", alternative) if p):
            if merged and _OPERATOR_ONLY.fullmatch(merged[-1]):
                merged[-1] += part  # "> 1.2": an operator written apart from its version
            else:
                merged.append(part)
        group: list[Check] = []
        for part in merged or ["*"]:
            group.extend(_comparator(part, text))
        groups.append(tuple(group))
    return Constraint(tuple(groups))


def _comparator(part: str, whole: str) -> list[Check]:
    m = _COMPARATOR.match(part.strip())
    if not m:
        raise InvalidPolicy(f"invalid policy: improper constraint: {whole}")
    op = {None: "=", "=>": ">=", "=<": "<=", "~>": "~"}.get(m.group(1), m.group(1))
    pieces = m.group(2).split(".")
    wild = next((i for i, p in enumerate(pieces) if p in ("x", "X", "*")), None)
    nums = [int(p) for p in pieces[: wild if wild is not None else len(pieces)]]
    partial = wild is not None or len(nums) < 3
    base = _version(nums, m.group(3) or "")
    if op == "^":
        if base.major or len(nums) == 1:
            return [Comparison(">=", base), Comparison("<", Version(base.major + 1, 0, 0))]
        if base.minor or len(nums) == 2:
            return [Comparison(">=", base), Comparison("<", Version(0, base.minor + 1, 0))]
        return [Comparison(">=", base), Comparison("<", Version(0, 0, base.patch + 1))]
    if op == "~":
        if len(nums) == 1:
            return [Comparison(">=", base), Comparison("<", Version(base.major + 1, 0, 0))]
        return [Comparison(">=", base), Comparison("<", Version(base.major, base.minor + 1, 0))]
    if not partial:
        return [Comparison(op, base)]
    if not nums:  # "*", "x": anything (still no prereleases)
        return [] if op in ("=", ">=", "<=") else [Comparison("<", Version(0, 0, 0))]
    upper = _bump(nums)
    partial_ranges: dict[str, list[Check]] = {
        "=": [Comparison(">=", base), Comparison("<", upper)],
        "!=": [Excluded(base, upper)],
        ">": [Comparison(">=", upper)],
        ">=": [Comparison(">=", base)],
        "<": [Comparison("<", base)],
        "<=": [Comparison("<", upper)],
    }
    return partial_ranges[op]


def _version(nums: list[int], pre: str = "") -> Version:
    padded = [*nums, 0, 0, 0]
    return Version(padded[0], padded[1], padded[2], pre)


def _bump(nums: list[int]) -> Version:
    return _version([*nums[:-1], nums[-1] + 1])
