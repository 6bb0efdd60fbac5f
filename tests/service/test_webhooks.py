"""Registry webhooks through the real endpoint: verification, acting before answering,
duplicates, the simulated registry, Event Grid's handshake, and hostile deliveries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kollie.pushes import SOURCES
from tests.helpers import eventually
from tests.service.conftest import Kollie, StartKollie
from tests.service.webhook_fixtures import (
    DIGEST,
    FIXTURES,
    GRID_VALIDATION,
    IMAGE,
    SECRET,
    TAG,
    deliver,
    sign,
    signed,
)

IMAGE_REPOSITORIES = ("image.toolkit.fluxcd.io", "imagerepositories")
CONFIG_MAPS = ("", "configmaps")
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io", "kustomizations")


def requested_at(kollie: Kollie, name: str = "web") -> str | None:
    repo = kollie.cluster.store.get(IMAGE_REPOSITORIES, "flux-system", name) or {}
    annotations = (repo.get("metadata") or {}).get("annotations") or {}
    value = annotations.get("reconcile.fluxcd.io/requestedAt")
    return str(value) if value else None


async def test_endpoint_verifies_every_source(start_kollie: StartKollie) -> None:
    # The documented examples are years old: no age limit for this test.
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET, KOLLIE_WEBHOOK_MAX_AGE="0")
    before = kollie.cluster.store.count(CONFIG_MAPS)
    for source, body, expected in FIXTURES:
        raw = json.dumps(body).encode()
        status, answer = await deliver(kollie, source, raw, {"X-GitHub-Event": "package"})
        assert status == 401, (source, answer)
        status, answer = await deliver(kollie, source, raw, sign(source, raw))
        assert status == 202, (source, answer)
        assert len(answer["pushes"]) == len(expected)
    status, answer = await deliver(kollie, "generic", b"{not json", sign("generic", b"{not json"))
    assert status == 400
    status, answer = await deliver(kollie, "nosuch", b"{}", {})
    assert status == 404
    big = b"{" + b" " * (1024 * 1024) + b"}"
    status, answer = await deliver(kollie, "generic", big, sign("generic", big))
    assert status == 413
    assert kollie.cluster.store.count(CONFIG_MAPS) == before, "no unknown image: nothing written"


async def test_no_secret_means_disabled(kollie: Kollie) -> None:
    status, answer = await deliver(kollie, "generic", b'{"repository": "x", "tag": "y"}', {})
    assert status == 503 and answer["error"] == "webhooks_disabled"


async def test_a_push_is_answered_once_its_effect_is_in_the_cluster(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    kollie.cluster.flux.registry.push(IMAGE, TAG)
    raw, headers = signed("generic", {"repository": IMAGE, "tag": TAG, "digest": DIGEST})
    assert requested_at(kollie) is None
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert status == 202, answer
    # No waiting: when the answer arrives, the rescan request and the environment are written.
    assert requested_at(kollie) is not None
    assert kollie.cluster.store.get(CONFIG_MAPS, "kollie", "feature-new-thing") is not None
    for app in ("web", "api", "worker"):
        assert kollie.cluster.store.get(KUSTOMIZATIONS, "kollie", f"feature-new-thing-{app}")
    (push,) = answer["pushes"]
    assert push["status"] == "done" and push["created"] == "feature-new-thing"
    assert push["rescanned"] == ["flux-system/web"]


async def test_duplicate_deliveries_do_the_work_once(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    flux = kollie.cluster.flux
    flux.registry.push(IMAGE, TAG)
    raw, headers = signed("generic", {"repository": IMAGE, "tag": TAG, "digest": DIGEST})
    results = await asyncio.gather(*(deliver(kollie, "generic", raw, headers) for _ in range(5)))
    assert all(status == 202 for status, _ in results)
    statuses = sorted(a["pushes"][0]["status"] for _, a in results)
    assert statuses == ["done"] + ["duplicate"] * 4
    events = [
        e
        for e in kollie.cluster.store.iter(("", "events"), "kollie")
        if e.get("reason") == "EnvironmentCreated"
    ]
    assert len(events) == 1, "one creation, audited once"
    first = requested_at(kollie)
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert answer["pushes"][0]["status"] == "duplicate"
    assert requested_at(kollie) == first, "a redelivery of done work writes nothing"
    status, env = await kollie.call(
        "GET", "/api/v1/environments/feature-new-thing?wait=ready&timeout=20"
    )
    assert status == 200 and next(a for a in env["apps"] if a["name"] == "web")["imageTag"] == TAG
    # Another app pushed on the prefix joins it (the demo catalog's rule has addPushedApps).
    api_tag = "feature-new-thing-def5678-1900000001"
    flux.registry.push("registry.example.com/acme/api", api_tag)
    raw, headers = signed(
        "generic", {"repository": "registry.example.com/acme/api", "tag": api_tag}
    )
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert status == 202 and answer["pushes"][0]["joined"] == ["feature-new-thing"]
    _, env = await kollie.call("GET", "/api/v1/environments/feature-new-thing")
    assert next(a for a in env["apps"] if a["name"] == "api")["prefix"] == "feature-new-thing"
    _, listed = await kollie.call("GET", "/api/v1/environments")
    assert [e["name"] for e in listed["items"]] == ["feature-new-thing"]


async def test_a_cluster_that_cannot_take_the_work_gets_a_retryable_answer(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    faults = kollie.cluster.faults
    raw, headers = signed("generic", {"repository": IMAGE, "tag": TAG})
    faults.update({"error_rate": 1.0, "methods": "PATCH", "path_pattern": "imagerepositories"})
    async with kollie.http.post(
        kollie.url("/webhooks/registry/generic"), data=raw, headers=headers
    ) as r:
        answer = await r.json()
        assert r.status == 503 and r.headers["Retry-After"], answer
        assert answer["error"] == "not_done" and answer["pushes"][0]["status"] == "failed"
    assert kollie.cluster.store.get(CONFIG_MAPS, "kollie", "feature-new-thing") is None
    # Slower than the sender waits: 503 while the work goes on; the redelivery finds it done.
    faults.reset()
    faults.update({"latency": 3.0, "methods": "PATCH", "path_pattern": "imagerepositories"})
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert status == 503 and answer["pushes"][0]["status"] == "pending"
    faults.reset()
    await eventually(
        lambda: kollie.cluster.store.get(CONFIG_MAPS, "kollie", "feature-new-thing"),
        within=10,
        message="the work that outlived its delivery",
    )
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert status == 202 and answer["pushes"][0]["status"] == "duplicate"


async def test_simulated_registry_delivers_every_format(start_kollie: StartKollie) -> None:
    from kubesim.registry_webhooks import FORMATS, Target

    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    sender = kollie.cluster.webhooks
    for i, source in enumerate(sorted(FORMATS)):
        sender.targets = [Target(kollie.url(f"/webhooks/registry/{source}"), source, SECRET)]
        kollie.cluster.flux.registry.push(IMAGE, f"main-abc{i:04d}-{1800000000 + i}")
        await eventually(
            lambda s=source: any(f == s for f, _ in sender.delivered), within=5, message=source
        )
    assert sender.delivered == [(s, 202) for s in sorted(FORMATS)]


async def test_event_grid_validates_its_subscription(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    raw = json.dumps(GRID_VALIDATION).encode()
    async with kollie.http.post(
        kollie.url(f"/webhooks/registry/acr?token={SECRET}"), data=raw
    ) as r:
        answer = await r.json()
        assert (
            r.status == 200
            and answer["validationResponse"] == GRID_VALIDATION[0]["data"]["validationCode"]
        )
    async with kollie.http.post(kollie.url("/webhooks/registry/acr?token=wrong"), data=raw) as r:
        assert r.status == 401 and "validationResponse" not in await r.json()
    # The CloudEvents schema's handshake: an OPTIONS request naming the sender's origin.
    origin = {"WebHook-Request-Origin": "eventgrid.azure.net"}
    async with kollie.http.options(
        kollie.url(f"/webhooks/registry/acr?token={SECRET}"), headers=origin
    ) as r:
        assert r.status == 200 and r.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    async with kollie.http.options(
        kollie.url("/webhooks/registry/acr?token=wrong"), headers=origin
    ) as r:
        assert r.status == 401 and "WebHook-Allowed-Origin" not in r.headers


async def test_deliveries_naming_what_cannot_exist_write_nothing(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    before = kollie.cluster.store.count(CONFIG_MAPS)
    for repository, tag in [
        ("registry.example.com/acme/wéb", "feature-x-abc1234-1900000000"),
        (IMAGE, "feature/x-abc1234-1900000000"),
        ("registry.example.com/ACME/web", "feature-x-abc1234-1900000000"),
    ]:
        raw, headers = signed("generic", {"repository": repository, "tag": tag})
        status, answer = await deliver(kollie, "generic", raw, headers)
        assert status == 202 and answer["pushes"] == [], answer
        assert answer["ignored"][0]["reason"].startswith("not a"), answer
    assert requested_at(kollie) is None
    assert kollie.cluster.store.count(CONFIG_MAPS) == before


async def test_endpoint_survives_arbitrary_bodies_and_headers(start_kollie: StartKollie) -> None:
    """Seeded random deliveries (valid signatures included): never a 5xx, nothing written."""
    import random

    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    rng = random.Random(20261124)
    before = kollie.cluster.store.count(("", "configmaps"))

    def value(depth: int = 0) -> Any:
        kind = rng.randrange(7 if depth < 3 else 4)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False, 0, -1, 2**70, 1.5])
        if kind in (2, 3):
            return rng.choice(
                [
                    "",
                    "push",
                    "PUSH_ARTIFACT",
                    "x" * 50,
                    "registry.example.com/acme/web",
                    "\u2603",
                    "a:b@c",
                ]
            )
        if kind == 4:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        keys = [
            "type",
            "action",
            "events",
            "target",
            "repository",
            "tag",
            "message",
            "data",
            "detail",
            "package",
            "push_data",
            "event_data",
            "component",
            "context",
            "subject",
            "Type",
            "Message",
        ]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(5))}

    for i in range(300):
        source = rng.choice(SOURCES)
        raw = (
            json.dumps(value()).encode() if i % 10 else bytes(rng.randrange(256) for _ in range(40))
        )
        headers = (
            sign(source, raw)
            if i % 3
            else {rng.choice(["Authorization", "X-Signature"]): "garbage"}
        )
        headers["X-GitHub-Event"] = rng.choice(["package", "ping", "push"])
        status, _ = await deliver(kollie, source, raw, headers)
        assert status < 500, (source, raw[:200], status)
    # Every delivery was answered after its work: nothing is still to come.
    assert kollie.cluster.store.count(("", "configmaps")) == before
