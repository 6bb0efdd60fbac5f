"""Every registry format, parsed: documented examples, names that cannot exist, delivery times,
and fuzzing (any JSON gives pushes or a PayloadError, and every push names a real image)."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kollie.pushes import SOURCES, PayloadError, parse, repository_problem, tag_problem
from tests.service.webhook_fixtures import (
    ACR_GRID_EVENTGRID,
    FIXTURES,
    GRID_VALIDATION,
    HARBOR_CLOUDEVENT,
    IGNORED,
    harbor_cloudevent_tagged,
)

HEADERS = {"X-GitHub-Event": "package"}


@pytest.mark.parametrize(("source", "body", "expected"), FIXTURES)
def test_parsers(source: str, body: Any, expected: list[tuple[Any, ...]]) -> None:
    parsed = parse(source, body, HEADERS)
    assert [(p.registry, p.repository, p.tag, p.digest) for p in parsed.pushes] == expected


@pytest.mark.parametrize(("source", "body"), IGNORED)
def test_non_pushes_are_ignored_with_a_reason(source: str, body: Any) -> None:
    parsed = parse(source, body, {})
    assert parsed.pushes == [] and parsed.ignored and all(i["reason"] for i in parsed.ignored)


def test_harbor_cloudevents_are_read_like_its_default_format() -> None:
    parsed = parse("harbor", HARBOR_CLOUDEVENT, {})
    assert parsed.pushes == []
    assert parsed.ignored[0]["reason"].startswith("not an image tag"), (
        "the documented example is pushed by digest: its 'tag' is the digest, no tag"
    )
    (push,) = parse("harbor", harbor_cloudevent_tagged("main-abc1234-1700000000"), {}).pushes
    assert (push.repository, push.tag) == ("harbor/alpine", "main-abc1234-1700000000")
    assert push.pushed_at == datetime.fromisoformat("2023-04-03T06:04:46Z").timestamp()


def test_event_grid_subscription_validation_is_answered_with_its_code() -> None:
    parsed = parse("acr", GRID_VALIDATION, {})
    assert parsed.reply == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    with pytest.raises(PayloadError):
        parse("acr", [{**GRID_VALIDATION[0], "data": {}}], {})


UNREAL: list[tuple[str, str, str]] = [
    ("non-ASCII repository", "registry.example.com/acme/wéb", "main-abc1234-1700000000"),
    ("upper case repository", "registry.example.com/Acme/Web", "v1"),
    ("repository with a space", "acme/web app", "v1"),
    ("repository ending in a separator", "acme/web-", "v1"),
    ("empty path component", "acme//web", "v1"),
    ("tag with a slash", "registry.example.com/acme/web", "feature/x-abc1234-1700000000"),
    ("tag starting with a dot", "registry.example.com/acme/web", ".hidden"),
    ("tag with a colon", "registry.example.com/acme/web", "sha256:abc"),
    ("non-ASCII tag", "registry.example.com/acme/web", "fëature-abc1234-1700000000"),
    ("tag of 129 characters", "registry.example.com/acme/web", "a" * 129),
    ("repository of 256 characters", "r.example.com/" + "a" * 242, "v1"),
    ("bad registry host", "reg_istry.example.com:99999999/acme/web", "v1"),
]


@pytest.mark.parametrize(("what", "repository", "tag"), UNREAL, ids=[u[0] for u in UNREAL])
def test_names_that_cannot_exist_in_a_registry_are_ignored_with_a_reason(
    what: str, repository: str, tag: str
) -> None:
    parsed = parse("generic", {"repository": repository, "tag": tag}, {})
    assert parsed.pushes == [], what
    (ignored,) = parsed.ignored
    assert ignored["reason"].startswith(("not a", "repository name longer")), ignored


def test_the_longest_real_names_are_pushes() -> None:
    tag = "A_" + "b" * 126
    repository = "r.example.com/" + "a" * 241
    (push,) = parse("generic", {"repository": repository, "tag": tag}, {}).pushes
    assert (push.registry, push.tag, len(push.repository)) == ("r.example.com", tag, 241)
    (push,) = parse("generic", {"repository": "[::1]:5000/a.b/c__d/e--f", "tag": "v1"}, {}).pushes
    assert (push.registry, push.repository) == ("[::1]:5000", "a.b/c__d/e--f")


def _pubsub(message: dict[str, Any], publish_time: str) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(message).encode()).decode()
    return {"message": {"data": data, "messageId": "1", "publishTime": publish_time}}


TAG = "main-abc1234-1700000000"
T = "2026-01-02T03:04:05Z"
UNIX = datetime.fromisoformat(T).timestamp()
# (source, body, headers): a push sent at T, for every format that says when.
TIMED: list[tuple[str, Any, dict[str, str]]] = [
    ("generic", {"repository": "acme/web", "tag": TAG, "timestamp": T}, {}),
    ("generic", {"repository": "acme/web", "tag": TAG, "timestamp": UNIX}, {}),
    (
        "dockerhub",
        {"push_data": {"tag": TAG, "pushed_at": UNIX}, "repository": {"repo_name": "acme/web"}},
        {},
    ),
    (
        "harbor",
        {
            "type": "PUSH_ARTIFACT",
            "occur_at": UNIX,
            "event_data": {
                "resources": [{"tag": TAG}],
                "repository": {"repo_full_name": "acme/web"},
            },
        },
        {},
    ),
    ("harbor", harbor_cloudevent_tagged(TAG, T), {}),
    (
        "acr",
        {"action": "push", "timestamp": T, "target": {"repository": "acme/web", "tag": TAG}},
        {},
    ),
    (
        "acr",
        [{**ACR_GRID_EVENTGRID[0], "data": {**ACR_GRID_EVENTGRID[0]["data"], "timestamp": T}}],
        {},
    ),
    ("gar", _pubsub({"action": "INSERT", "tag": f"europe-docker.pkg.dev/p/r/web:{TAG}"}, T), {}),
    (
        "gar",
        {"action": "INSERT", "tag": f"europe-docker.pkg.dev/p/r/web:{TAG}"},
        {"X-Goog-Pubsub-Publish-Time": T},
    ),
    (
        "ecr",
        {
            "source": "aws.ecr",
            "detail-type": "ECR Image Action",
            "time": T,
            "detail": {
                "action-type": "PUSH",
                "result": "SUCCESS",
                "repository-name": "web",
                "image-tag": TAG,
            },
        },
        {},
    ),
    (
        "distribution",
        {"events": [{"action": "push", "timestamp": T, "target": {"repository": "w", "tag": TAG}}]},
        {},
    ),
    (
        "nexus",
        {
            "action": "CREATED",
            "timestamp": "2026-01-02T03:04:05.000+0000",
            "component": {"format": "docker", "name": "acme/web", "version": TAG},
        },
        {},
    ),
    (
        "cdevents",
        {
            "context": {"type": "dev.cdevents.artifact.published.0.1.1", "timestamp": T},
            "subject": {"id": f"pkg:oci/web?repository_url=reg.example.com/web&tag={TAG}"},
        },
        {},
    ),
]


@pytest.mark.parametrize(("source", "body", "headers"), TIMED, ids=[t[0] for t in TIMED])
def test_the_delivery_time_is_read_where_the_format_carries_one(
    source: str, body: Any, headers: dict[str, str]
) -> None:
    (push,) = parse(source, body, headers).pushes
    assert push.pushed_at == UNIX


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), body=json_values)
def test_parsers_never_raise_anything_but_payload_error(source: str, body: Any) -> None:
    with contextlib.suppress(PayloadError):
        parse(source, body, HEADERS)


names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("/:.-_@"),
    max_size=40,
)


def _shapes(repository: str, tag: str, stamp: Any) -> list[tuple[str, Any]]:
    """One delivery per format with these names in the places each format reads them from."""
    target = {"repository": repository, "tag": tag, "mediaType": "x"}
    return [
        ("generic", {"repository": repository, "tag": tag, "timestamp": stamp}),
        ("dockerhub", {"push_data": {"tag": tag}, "repository": {"repo_name": repository}}),
        (
            "harbor",
            {
                "type": "PUSH_ARTIFACT",
                "occur_at": stamp,
                "event_data": {
                    "resources": [{"tag": tag, "resource_url": f"{repository}:{tag}"}],
                    "repository": {"repo_full_name": repository},
                },
            },
        ),
        ("quay", {"repository": repository, "updated_tags": [tag]}),
        ("acr", {"action": "push", "target": target, "timestamp": stamp}),
        ("distribution", {"events": [{"action": "push", "target": target}]}),
        ("artifactory", {"event_type": "pushed", "image_name": repository, "tag": tag}),
        (
            "nexus",
            {
                "action": "CREATED",
                "component": {"format": "docker", "name": repository, "version": tag},
            },
        ),
        ("gar", {"action": "INSERT", "tag": f"{repository}:{tag}"}),
    ]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(repository=names, tag=names, stamp=json_values)
def test_every_push_any_parser_returns_names_a_real_image(
    repository: str, tag: str, stamp: Any
) -> None:
    for source, body in _shapes(repository, tag, stamp):
        try:
            parsed = parse(source, body, HEADERS)
        except PayloadError:
            continue
        for push in parsed.pushes:
            assert repository_problem(push.registry, push.repository) is None, (source, push)
            assert tag_problem(push.tag) is None, (source, push)
            assert push.pushed_at is None or isinstance(push.pushed_at, float)
