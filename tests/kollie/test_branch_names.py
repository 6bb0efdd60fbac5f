"""Flux branch names (`GitRepository.spec.ref.branch`) follow git's own ref-format rules, checked
against git itself."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kollie.naming import branch_problem

GIT = shutil.which("git")

REFUSED = [
    "--upload-pack=touch /tmp/pwned",
    "-x",
    "main\nother",
    "a\x00b",
    "a\tb",
    "a\x7fb",
    "@{-1}",
    "main@{upstream}",
    "x.lock",
    "a/b.lock/c",
    "a/.hidden",
    ".hidden",
    "a//b",
    "/a",
    "a/",
    "a.",
    "@",
    "a..b",
    "a b",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
    "HEAD",
    "",
    "a" * 251,
]
ACCEPTED = ["main", "feature/JIRA-12_foo", "release-1.2", "fix/über-bug", "a@b", "v1.0/rc.1", "@a"]


@pytest.mark.parametrize("name", REFUSED, ids=repr)
def test_refused(name: str) -> None:
    problem = branch_problem(name)
    assert problem is not None and repr(name) in problem


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted(name: str) -> None:
    assert branch_problem(name) is None


def _git_accepts(name: str) -> bool:
    """`git check-ref-format` on the branch's full ref (no `@{-N}` expansion, no repository)."""
    assert GIT is not None, "git is needed to check branch names against git itself"
    result = subprocess.run(
        [GIT, "check-ref-format", f"refs/heads/{name}"], capture_output=True, check=False
    )
    return result.returncode == 0


PIECES = [*"ab-_/.@{}~^:?*[]\\ \t\n\x7f\x01é", "lock", "HEAD"]
"""Characters and words git's rules are about, so random names hit every rule."""


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=10))
@example(["@", "{", "-", "1", "}"])
@example(["a", ".", "lock"])
@example(["-", "a"])
def test_same_verdict_as_git(parts: list[str]) -> None:
    """Kollie refuses exactly what git refuses as a ref, and also what `git branch` refuses as a
    branch name: a leading '-' (it would read as an option), `HEAD`, and `@` (git's shorthand
    for HEAD)."""
    name = "".join(parts)
    expected = _git_accepts(name) and not name.startswith("-") and name not in ("", "HEAD", "@")
    assert (branch_problem(name) is None) == expected, name
