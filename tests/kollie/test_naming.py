from __future__ import annotations

import re

import pytest

from kollie.naming import (
    InvalidName,
    check_app,
    check_environment,
    check_prefix,
    environment_from_prefix,
    parse_tag,
    prefix_from_branch,
    tag_pattern,
)


@pytest.mark.parametrize(
    ("branch", "prefix"),
    [
        ("main", "main"),
        ("feature/JIRA-12_foo", "feature-JIRA-12_foo"),
        ("feature//x  y", "feature-x-y"),
        ("fix/über-bug", "fix-ber-bug"),
        ("-leading", "leading"),
    ],
)
def test_prefix_from_branch(branch: str, prefix: str) -> None:
    assert prefix_from_branch(branch) == prefix


def test_names() -> None:
    assert check_environment("a" * 40) == "a" * 40
    with pytest.raises(InvalidName, match="41 characters"):
        check_environment("a" * 41)
    with pytest.raises(InvalidName, match="lower case"):
        check_environment("Feature_X")
    with pytest.raises(InvalidName):
        check_app("a" * 21)
    with pytest.raises(InvalidName):
        check_prefix("-x")
    with pytest.raises(InvalidName):
        check_prefix("has space")


def test_tags_parse_from_the_right() -> None:
    tag = parse_tag("feature-x-y-abc1234-1700000000")
    assert tag is not None and (tag.prefix, tag.sha, tag.timestamp) == (
        "feature-x-y",
        "abc1234",
        1700000000,
    )
    assert parse_tag("latest") is None
    assert parse_tag("main-XYZ1234-1") is None


def test_tag_pattern_matches_only_its_prefix() -> None:
    pattern = re.compile(tag_pattern("feature-x"))
    assert pattern.match("feature-x-abc1234-1700000000")
    assert not pattern.match("feature-x-y-abc1234-1700000000")
    dotted = re.compile(tag_pattern("v1.2"))
    assert dotted.match("v1.2-abc1234-1") and not dotted.match("v1x2-abc1234-1")
    assert tag_pattern("a.b") == r"^a\.b-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)$"


def test_environment_from_prefix() -> None:
    assert environment_from_prefix("Feature_JIRA-12.x") == "feature-jira-12-x"
    assert len(environment_from_prefix("f" * 100)) == 40
    assert environment_from_prefix("---") == "env"
