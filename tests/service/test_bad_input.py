"""Bad requests get a specific 4xx JSON error and write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import Kollie


def _writes(kollie: Kollie) -> set[tuple[str, str, str]]:
    """Kollie's objects and their versions (leases and Flux status writes go on meanwhile)."""
    store = kollie.cluster.store
    return {
        (gr[1], o["metadata"]["name"], o["metadata"]["resourceVersion"])
        for gr in (
            ("", "configmaps"),
            ("kustomize.toolkit.fluxcd.io", "kustomizations"),
            ("image.toolkit.fluxcd.io", "imagepolicies"),
        )
        for o in store.iter(gr, "kollie")
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/v1/environments/Bad_Name", {"apps": {"api": {}}}, 422, "invalid"),
        ("/api/v1/environments/" + "a" * 41, {"apps": {"api": {}}}, 422, "invalid"),
        ("/api/v1/environments/kube-system", {"apps": {"api": {}}}, 422, "invalid"),
        ("/api/v1/environments/flux-system", {"apps": {"api": {}}}, 422, "invalid"),
        ("/api/v1/environments/default", {"apps": {"api": {}}}, 422, "invalid"),
        ("/api/v1/environments/kollie", {"apps": {"api": {}}}, 422, "invalid"),
        ("/api/v1/environments/ok", {"apps": {"nope": {}}}, 422, "unknown_app"),
        ("/api/v1/environments/ok", {"bundle": "nope"}, 422, "unknown_bundle"),
        ("/api/v1/environments/ok", {"apps": [{"name": "api"}, {"name": "api"}]}, 422, "invalid"),
        ("/api/v1/environments/ok", {}, 422, "invalid"),
        ("/api/v1/environments/ok", {"apps": {"api": {"prefix": "bad prefix!"}}}, 422, "invalid"),
        ("/api/v1/environments/ok", {"apps": {"api": {}}, "colour": "blue"}, 422, "invalid"),
        ("/api/v1/environments/ok", {"apps": "api"}, 422, "invalid"),
        (
            "/api/v1/environments/ok",
            {"apps": {"api": {}}, "uptime": {"hours": 10000}},
            422,
            "invalid",
        ),
    ],
)
async def test_invalid_put_changes_nothing(
    kollie: Kollie, path: str, body: Any, status: int, error: str
) -> None:
    before = _writes(kollie)
    got, answer = await kollie.call("PUT", path, json=body)
    assert (got, answer["error"]) == (status, error), answer
    assert answer["message"]
    assert _writes(kollie) == before


async def test_malformed_json_and_wrong_content_type(kollie: Kollie) -> None:
    before = _writes(kollie)
    status, body = await kollie.call(
        "PUT",
        "/api/v1/environments/ok",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert (status, body["error"]) == (400, "bad_request")
    status, body = await kollie.call(
        "PUT",
        "/api/v1/environments/ok",
        data=b"apps: {}",
        headers={"Content-Type": "application/yaml"},
    )
    assert (status, body["error"]) == (415, "unsupported_media_type")
    status, body = await kollie.call(
        "PUT",
        "/api/v1/environments/ok",
        data=b"{" + b" " * (1024 * 1024 + 1) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    assert _writes(kollie) == before


async def test_missing_environment_and_app(kollie: Kollie) -> None:
    for method, path, body in (
        ("GET", "/api/v1/environments/ghost", None),
        ("DELETE", "/api/v1/environments/ghost", None),
        ("POST", "/api/v1/environments/ghost/apps", {"name": "api"}),
        ("POST", "/api/v1/environments/ghost/extend", {"hours": 1}),
        ("DELETE", "/api/v1/environments/ghost/apps/api", None),
    ):
        status, answer = await kollie.call(method, path, json=body)
        assert (status, answer["error"]) == (404, "not_found"), (method, path, answer)
    status, _ = await kollie.call("PUT", "/api/v1/environments/real", json={"apps": {"api": {}}})
    assert status == 201
    status, answer = await kollie.call("DELETE", "/api/v1/environments/real/apps/web")
    assert (status, answer["error"]) == (404, "not_found")


async def test_authentication(kollie: Kollie) -> None:
    async with kollie.http.put(
        kollie.url("/api/v1/environments/x"), json={"apps": {"api": {}}}
    ) as r:
        assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    async with kollie.http.get(
        kollie.url("/api/v1/environments"),
        headers={"Authorization": "Bearer wrong-token-0000000000"},
    ) as r:
        assert r.status == 401 and "invalid API token" in (await r.json())["message"]
    async with kollie.http.get(
        kollie.url("/api/v1/environments"), headers={"X-Auth-Request-Email": "mallory@example.com"}
    ) as r:
        assert r.status == 401, "proxy headers are not trusted unless configured"
    assert kollie.cluster.store.get(("", "configmaps"), "kollie", "x") is None


async def test_extend_validation(kollie: Kollie) -> None:
    await kollie.call("PUT", "/api/v1/environments/ext", json={"apps": {"api": {}}})
    for body in (
        {},
        {"hours": 1, "until": "2030-01-01T00:00:00Z"},
        {"hours": "3"},
        {"hours": -1},
        {"until": "yesterday"},
        {"until": "2000-01-01T00:00:00Z"},
        {"weeks": 1},
        {"days": 30},
    ):
        status, answer = await kollie.call("POST", "/api/v1/environments/ext/extend", json=body)
        assert status == 422, (body, answer)


@pytest.mark.parametrize(
    "branch", ["--upload-pack=/tmp/evil.sh", "main\nother", "a\x00b", "@{-1}", "x.lock", "a//b"]
)
async def test_flux_branches_git_would_refuse_are_refused(kollie: Kollie, branch: str) -> None:
    status, body = await kollie.call("PUT", "/api/v1/environments/br", json={"apps": {"api": {}}})
    assert status == 201, body
    status, body = await kollie.call("GET", "/api/v1/environments/br?wait=ready&timeout=20")
    assert status == 200, body  # image follow has written the tag: nothing else changes now
    store = kollie.cluster.store

    def desired() -> tuple[Any, Any]:
        record = store.get(("", "configmaps"), "kollie", "br") or {}
        app = store.get(("kustomize.toolkit.fluxcd.io", "kustomizations"), "kollie", "br-api") or {}
        return record.get("data"), app.get("spec")

    before = desired()
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/br/flux-branch", json={"branch": branch}
    )
    assert (status, body["error"]) == (422, "invalid"), body
    assert repr(branch) in body["message"]
    assert not list(store.iter(("source.toolkit.fluxcd.io", "gitrepositories"), "kollie"))
    assert desired() == before
