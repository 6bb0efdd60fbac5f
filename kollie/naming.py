"""Names, branch prefixes and image tags.

Image tags are `<prefix>-<gitsha>-<unixts>`; a prefix may itself contain `-`, so tags are parsed
from the right. Branch names become prefixes the way docker/metadata-action makes branch tags:
every run of characters outside `[a-zA-Z0-9._-]` becomes `-`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ENVIRONMENT = 40
MAX_APP = 20
MAX_PREFIX = 128 - 1 - 40 - 1 - 20
"""A Docker tag is at most 128 characters; leave room for `-<sha1>-<timestamp>`."""

# Matched with `fullmatch`: `$` also matches before a final newline, so `re.match(r"^...$")`
# would take "pr-1\n" for a valid name and write the newline into the cluster's objects.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_PREFIX = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*", re.ASCII)
_TAG = re.compile(r"(?P<prefix>.+)-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)", re.ASCII)


class InvalidName(ValueError):
    """A name, prefix or tag that breaks Kollie's rules; the message says which rule."""


def subdomain_problem(value: str, *, what: str) -> str | None:
    """Why `value` is not a valid DNS-1123 subdomain (the names of most Kubernetes objects, such as
    ServiceAccounts), or None."""
    if not value:
        return f"{what} must not be empty"
    if len(value) > 253:
        return f"{what} {value!r} is {len(value)} characters long; at most 253 are allowed"
    if not all(_LABEL.fullmatch(part) for part in value.split(".")):
        return (
            f"{what} {value!r} must consist of lower case letters, digits, '-' and '.', "
            "and start and end with a letter or digit"
        )
    return None


def label_problem(value: str, *, what: str, max_length: int) -> str | None:
    """Why `value` is not a valid DNS-1123 label of at most `max_length` characters, or None."""
    if not value:
        return f"{what} must not be empty"
    if len(value) > max_length:
        return f"{what} {value!r} is {len(value)} characters long; at most {max_length} are allowed"
    if not _LABEL.fullmatch(value):
        return (
            f"{what} {value!r} must consist of lower case letters, digits and '-', "
            "and start and end with a letter or digit"
        )
    return None


# Apps usually deploy into a namespace named after their environment (`${environment}`): these
# names would put an environment's manifests, and its downscaler schedule, into the cluster's own.
RESERVED_ENVIRONMENTS = frozenset({"default", "flux-system"})
RESERVED_ENVIRONMENT_PREFIXES = ("kube-",)


def check_environment(name: str) -> str:
    problem = label_problem(name, what="environment name", max_length=MAX_ENVIRONMENT)
    if problem:
        raise InvalidName(problem)
    if name in RESERVED_ENVIRONMENTS or name.startswith(RESERVED_ENVIRONMENT_PREFIXES):
        raise InvalidName(
            f"environment name {name!r} is reserved: apps deploy into a namespace of that name"
        )
    return name


def check_app(name: str) -> str:
    problem = label_problem(name, what="app name", max_length=MAX_APP)
    if problem:
        raise InvalidName(problem)
    return name


def prefix_from_branch(branch: str) -> str:
    """The image tag prefix CI builds for a branch (docker/metadata-action's branch tag)."""
    prefix = re.sub(r"[^a-zA-Z0-9._-]+", "-", branch.strip())
    prefix = prefix.lstrip(".-")
    return prefix[:MAX_PREFIX]


def check_prefix(prefix: str) -> str:
    if not prefix:
        raise InvalidName("prefix must not be empty")
    if len(prefix) > MAX_PREFIX:
        raise InvalidName(f"prefix {prefix!r} is longer than {MAX_PREFIX} characters")
    if not _PREFIX.fullmatch(prefix):
        raise InvalidName(
            f"prefix {prefix!r} may contain only letters, digits, '.', '_' and '-', "
            "and must not start with '.' or '-'"
        )
    return prefix


@dataclass(frozen=True)
class ImageTag:
    prefix: str
    sha: str
    timestamp: int


def parse_tag(tag: str) -> ImageTag | None:
    """Split `<prefix>-<gitsha>-<unixts>`; None for any other tag."""
    m = _TAG.fullmatch(tag)
    if not m:
        return None
    return ImageTag(m.group("prefix"), m.group("sha"), int(m.group("ts")))


def tag_has_prefix(tag: str, prefix: str) -> bool:
    parsed = parse_tag(tag)
    return parsed is not None and parsed.prefix == prefix


MAX_BRANCH = 250
_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f") | {chr(c) for c in range(32)}


def _ref_format_problem(branch: str) -> str | None:
    """The rule of `git check-ref-format` (on `refs/heads/<branch>`) that `branch` breaks."""
    bad = sorted({c for c in branch if c in _REF_FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"must not contain control characters, spaces or any of ~^:?*[\\ (found {shown})"
    if ".." in branch or "@{" in branch:
        return "must not contain '..' or '@{'"
    if branch.startswith("/") or branch.endswith("/") or "//" in branch:
        return "must not start or end with '/' or contain '//'"
    if branch.endswith("."):
        return "must not end with '.'"
    for part in branch.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "has a '/'-separated part that starts with '.' or ends with '.lock'"
    return None


def branch_problem(branch: str) -> str | None:
    """Why `branch` cannot be a git branch name, or None.

    The rules are git's (`git check-ref-format --branch`): those of any ref, plus no leading '-'
    (git would read the name as an option, e.g. `--upload-pack=...`), and not `@` or `HEAD`.
    Flux passes the name to git, so anything git would refuse is refused here first.
    """
    if not branch:
        problem: str | None = "must not be empty"
    elif len(branch) > MAX_BRANCH:
        problem = f"is {len(branch)} characters long; at most {MAX_BRANCH} are allowed"
    elif branch.startswith("-"):
        problem = "must not start with '-'"
    elif branch in ("@", "HEAD"):
        problem = "must not be '@' or 'HEAD'"
    else:
        problem = _ref_format_problem(branch)
    return f"{branch!r} is not a valid git branch name: it {problem}" if problem else None


def go_regex_escape(text: str) -> str:
    """Escape for Go's RE2 and Python's re alike (both accept a backslash before punctuation)."""
    return "".join("\\" + c if c in r"\.+*?()|[]{}^$" else c for c in text)


def tag_pattern(prefix: str) -> str:
    """The ImagePolicy filter for the newest image of a prefix."""
    return f"^{go_regex_escape(prefix)}-(?P<sha>[0-9a-f]{{7,40}})-(?P<ts>[0-9]+)$"


def environment_from_prefix(prefix: str) -> str:
    """A valid environment name derived from a prefix (auto-created environments)."""
    name = re.sub(r"[^a-z0-9-]+", "-", prefix.lower())
    name = re.sub(r"-+", "-", name).strip("-")[:MAX_ENVIRONMENT].strip("-")
    return name or "env"


def kube_name(environment: str, app: str) -> str:
    """Name of an app's Kustomization and ImagePolicy."""
    return f"{environment}-{app}"
