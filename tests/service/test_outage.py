"""The API server unreachable for 30 s, and views that cannot be trusted (a failed list, a
relist, a 410 storm): pages say so, writes answer 503 with Retry-After, the leader's loops
pause, nothing is written on an uncertain view, and everything recovers on its own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from kubesim import SimCluster
from tests.helpers import eventually
from tests.service.conftest import AUTH, Kollie, StartKollie

OUTAGE = 30.0
USER = {"X-Auth-Request-Email": "dev@example.com"}
SECRET = "webhook-secret-0123456789"
CM = ("", "configmaps")
KS = ("kustomize.toolkit.fluxcd.io", "kustomizations")


async def _ready(kollie: Kollie) -> tuple[int, dict[str, Any]]:
    async with kollie.http.get(kollie.url("/readyz")) as r:
        return r.status, await r.json()


async def _names(kollie: Kollie) -> set[str]:
    status, body = await kollie.call("GET", "/api/v1/environments")
    assert status == 200, body
    return {e["name"] for e in body["items"]}


async def _page(browser: aiohttp.ClientSession, kollie: Kollie, path: str) -> str:
    async with browser.get(kollie.url(path), headers=USER) as r:
        assert r.status == 200
        return await r.text()


def _record(name: str, owner: str) -> dict[str, Any]:
    """An environment record as another replica (or a person with kubectl) would write it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "kollie",
            "labels": {"app.kubernetes.io/managed-by": "kollie", "kollie.io/environment": name},
            "annotations": {
                "kollie.io/owner": owner,
                "kollie.io/created-at": "2026-01-01T00:00:00Z",
            },
        },
        "data": {"environment.json": "{}"},
    }


def _kustomization(env: str, app: str, prefix: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": f"{env}-{app}",
            "namespace": "kollie",
            "labels": {
                "app.kubernetes.io/managed-by": "kollie",
                "kollie.io/environment": env,
                "kollie.io/app": app,
            },
            "annotations": {"kollie.io/image-tag-prefix": prefix},
        },
        "spec": {
            "interval": "5m",
            "path": f"./apps/{app}",
            "prune": True,
            "suspend": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform", "namespace": "flux-system"},
        },
    }


async def _assert_write_refused_as_retryable(kollie: Kollie, method: str, path: str) -> None:
    body = {"apps": {"api": {}}} if method == "PUT" else {"hours": 2}
    async with kollie.http.request(method, kollie.url(path), json=body, headers=AUTH) as r:
        answer = await r.json()
        assert r.status == 503, answer
        assert int(r.headers["Retry-After"]) > 0
        assert answer["error"] == "cluster_unavailable" and "unavailable" in answer["message"]


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_thirty_seconds_without_the_api_server(start_kollie: StartKollie) -> None:
    first = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    second = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    cluster = first.cluster
    for name in ("kept", "gone-meanwhile"):
        status, body = await first.call(
            "PUT", f"/api/v1/environments/{name}", json={"apps": {"api": {}}}
        )
        assert status == 201, body
    for replica in (first, second):
        await eventually(
            lambda r=replica: _names(r), within=10, message="both replicas see both environments"
        )
    kept = cluster.store.get(CM, "kollie", "kept")
    assert kept is not None

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        assert "may be stale" not in await _page(browser, first, "/")
        html = await _page(browser, first, "/env/kept")
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
        assert token is not None
        loop = asyncio.get_running_loop()
        await cluster._unserve()
        outage_started = loop.time()
        try:
            for replica in (first, second):
                await eventually(
                    lambda r=replica: _not_ready(r),
                    within=15,
                    message="readyz reports the outage",
                )
            for replica in (first, second):
                assert "cluster data may be stale" in await _page(browser, replica, "/")
                assert await _names(replica) == {"kept", "gone-meanwhile"}, "reads still answer"
            await _assert_write_refused_as_retryable(first, "PUT", "/api/v1/environments/new")
            await _assert_write_refused_as_retryable(
                second, "POST", "/api/v1/environments/kept/extend"
            )
            async with second.http.delete(
                second.url("/api/v1/environments/kept"), headers=AUTH
            ) as r:
                assert r.status == 503 and "Retry-After" in r.headers
            async with browser.post(
                first.url("/env/kept/extend"),
                data={"csrf_token": token.group(1), "hours": "2"},
                headers=USER,
                allow_redirects=False,
            ) as r:
                page = await r.text()
                assert r.status == 503 and "Retry-After" in r.headers
                assert "Kubernetes API is unavailable" in page, "the form says why"

            async def nobody_leads() -> bool:
                return not any([(await _ready(k))[1]["leader"] for k in (first, second)])

            await eventually(nobody_leads, within=15, message="the leader's loops pause")

            # Meanwhile, others change the cluster: one environment deleted, one created.
            cluster.api.delete(cluster.catalog.get(CM), "kollie", "gone-meanwhile")  # type: ignore[arg-type]
            cluster.apply_object(_record("made-meanwhile", "ops@example.com"))

            while loop.time() - outage_started < OUTAGE:
                assert (await _ready(first))[0] == 503
                await _assert_write_refused_as_retryable(first, "PUT", "/api/v1/environments/x")
                await asyncio.sleep(2)
        finally:
            await cluster._serve()

        for replica in (first, second):
            await eventually(
                lambda r=replica: _is_ready(r), within=30, message="recovers on its own"
            )
            await eventually(
                lambda r=replica: _has_names(r, {"kept", "made-meanwhile"}),
                within=15,
                message="the changes made during the outage are seen",
            )
            assert "may be stale" not in await _page(browser, replica, "/")

        async def one_leader() -> bool:
            return [(await _ready(k))[1]["leader"] for k in (first, second)].count(True) == 1

        await eventually(one_leader, within=30, message="a leader again")

    after = cluster.store.get(CM, "kollie", "kept")
    assert after is not None and after["metadata"]["uid"] == kept["metadata"]["uid"]
    made = cluster.store.get(CM, "kollie", "made-meanwhile")
    assert made is not None
    assert made["metadata"]["annotations"]["kollie.io/owner"] == "ops@example.com"
    status, body = await second.call(
        "PUT", "/api/v1/environments/after", json={"apps": {"api": {}}}
    )
    assert status == 201, body


async def _not_ready(kollie: Kollie) -> bool:
    return (await _ready(kollie))[0] == 503


async def _is_ready(kollie: Kollie) -> bool:
    return (await _ready(kollie))[0] == 200


async def _has_names(kollie: Kollie, names: set[str]) -> bool:
    return await _names(kollie) == names


def _fail_lists(cluster: SimCluster, pattern: str) -> None:
    """Every GET (list and watch) of the matching resources fails, as an overloaded or
    half-broken API server does; writes still go through."""
    cluster.faults.update(
        {"error_rate": 1.0, "error_code": 500, "methods": "GET", "path_pattern": pattern}
    )


def _push(tag: str, image: str = "registry.example.com/acme/api") -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"repository": image, "tag": tag}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Signature": f"sha256={signature}"}


async def test_image_follow_writes_nothing_while_a_list_fails(start_kollie: StartKollie) -> None:
    kollie = await start_kollie()
    cluster = kollie.cluster
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/follow", json={"apps": {"api": {"prefix": "main"}}}
    )
    assert status == 201, body
    status, body = await kollie.call("GET", "/api/v1/environments/follow?wait=ready&timeout=15")
    assert status == 200, body
    before = cluster.store.get(KS, "kollie", "follow-api")
    assert before is not None
    background = kollie.background
    follower = background.follower
    await eventually(lambda: background.is_leader, within=10, message="the replica leads")

    # A 410 storm in which the Kustomizations cannot be listed again, while the ImagePolicies
    # can: the cache then holds a new tag next to a Kustomization it cannot see.
    _fail_lists(cluster, "kustomizations")
    cluster.expire_history()
    newer = "main-0123abc-2000000000"
    cluster.flux.registry.push("registry.example.com/acme/api", newer)
    requested = {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}}
    async with kollie.http.patch(
        f"{cluster.url}/apis/image.toolkit.fluxcd.io/v1/namespaces/flux-system/imagerepositories/api",
        data=json.dumps(requested),
        headers={"Content-Type": "application/merge-patch+json"},
    ) as r:
        assert r.status == 200, await r.text()
    cache = kollie.services.cache
    await eventually(
        lambda: any(a.policy and a.policy.latest_tag == newer for a in cache.apps("follow")),
        within=15,
        message="the relisted ImagePolicy shows the new tag",
    )
    deferred = follower.deferred
    await eventually(
        lambda: follower.deferred > deferred, within=10, message="image follow looks and waits"
    )
    during = cluster.store.get(KS, "kollie", "follow-api")
    assert during is not None
    assert during["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], (
        "nothing written while the Kustomizations could not be listed"
    )

    cluster.faults.reset()
    await eventually(
        lambda: (
            (cluster.store.get(KS, "kollie", "follow-api") or {})["spec"]["postBuild"][
                "substitute"
            ].get("image_tag")
            == newer
        ),
        within=15,
        message="the new tag is followed once the view is whole",
    )


async def test_a_push_never_acts_on_an_environment_list_it_cannot_trust(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    cluster = kollie.cluster
    await eventually(lambda: kollie.services.cache.certain(), within=10, message="a whole view")
    # The environment records cannot be listed again after a 410; meanwhile someone creates
    # the environment a push will name: Kollie's stale view does not have it.
    _fail_lists(cluster, "configmaps")
    cluster.expire_history()
    await eventually(
        lambda: not kollie.services.cache.certain(), within=10, message="an uncertain view"
    )
    # Another replica creates the environment the push will name, following its prefix.
    cluster.apply_object(_record("feature-dup", "someone@example.com"))
    cluster.apply_object(_kustomization("feature-dup", "web", "feature-dup"))

    # The push is not acknowledged while the view is uncertain: the sender is told to retry.
    body, headers = _push("feature-dup-0123abc-1900000000")
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"), data=body, headers=headers
    ) as r:
        answer = await r.json()
        assert r.status == 503 and r.headers["Retry-After"], answer
        assert answer["pushes"][0]["status"] in ("pending", "failed"), answer
    with capture_logs() as logs:
        await eventually(
            lambda: any(e.get("event") == "push_failed" for e in logs),
            within=15,
            message="the push gives up waiting for a whole view",
        )
    record = cluster.store.get(CM, "kollie", "feature-dup")
    assert record is not None
    assert record["metadata"]["annotations"]["kollie.io/owner"] == "someone@example.com", (
        "an environment missing from a stale view is not created over"
    )
    assert cluster.store.get(KS, "kollie", "feature-dup-api") is None

    cluster.faults.reset()
    await eventually(lambda: kollie.services.cache.certain(), within=30, message="a whole view")
    # The sender delivers again: now it acts.
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"), data=body, headers=headers
    ) as r:
        assert r.status == 202, await r.text()
    assert cluster.store.get(KS, "kollie", "feature-dup-api") is not None
    record = cluster.store.get(CM, "kollie", "feature-dup")
    assert record is not None
    assert record["metadata"]["annotations"]["kollie.io/owner"] == "someone@example.com"
    assert cluster.store.get(CM, "kollie", "feature-dup-2") is None, "no second environment"


async def test_an_api_write_waits_for_a_view_it_can_trust(start_kollie: StartKollie) -> None:
    kollie = await start_kollie()
    cluster = kollie.cluster
    await eventually(lambda: kollie.services.cache.certain(), within=10, message="a whole view")
    _fail_lists(cluster, "configmaps")
    cluster.expire_history()
    await eventually(
        lambda: not kollie.services.cache.certain(), within=10, message="an uncertain view"
    )
    # Someone else creates the environment; this replica's view cannot show it yet.
    cluster.apply_object(_record("shared", "someone@example.com"))
    async with kollie.http.put(
        kollie.url("/api/v1/environments/shared"), json={"apps": {"api": {}}}, headers=AUTH
    ) as r:
        answer = await r.json()
        assert r.status == 503 and "Retry-After" in r.headers, answer
        assert "catching up" in answer["message"]
    record = cluster.store.get(CM, "kollie", "shared")
    assert record is not None
    assert record["metadata"]["annotations"]["kollie.io/owner"] == "someone@example.com"

    cluster.faults.reset()
    await eventually(lambda: kollie.services.cache.certain(), within=15, message="whole again")
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/shared", json={"apps": {"api": {}}}
    )
    assert status == 200, "an update of the environment that exists, not a creation"
    assert body["owner"] == "someone@example.com"
