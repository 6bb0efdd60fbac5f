"""The cache converges after dropped watches, forced 410 and an API server restart; two replicas
elect one leader and fail over."""

from __future__ import annotations

from tests.helpers import eventually
from tests.service.conftest import Kollie, StartKollie


async def _converged(kollie: Kollie, names: set[str]) -> None:
    await eventually(
        lambda: set(kollie.services.cache.environment_names()) == names,
        within=15,
        message=f"cache has exactly {sorted(names)}",
    )


async def test_cache_converges_after_faults(kollie: Kollie) -> None:
    cluster = kollie.cluster
    await kollie.call("PUT", "/api/v1/environments/one", json={"apps": {"api": {}}})
    await _converged(kollie, {"one"})
    cluster.drop_watches()
    await kollie.call("PUT", "/api/v1/environments/two", json={"apps": {"api": {}}})
    await _converged(kollie, {"one", "two"})

    informers = kollie.background.informers
    lists_before = sum(i.stats.lists for i in informers)
    cluster.expire_history()
    await kollie.call("PUT", "/api/v1/environments/three", json={"apps": {"api": {}}})
    await _converged(kollie, {"one", "two", "three"})

    await cluster.restart(downtime=0.5)
    # Written behind Kollie's back while it reconnects: it must still see it.
    cluster.api.delete(cluster.catalog.get(("", "configmaps")), "kollie", "one")  # type: ignore[arg-type]
    await _converged(kollie, {"two", "three"})
    assert sum(i.stats.lists for i in informers) > lists_before, "410 forced a relist"


async def test_leader_election_and_failover(start_kollie: StartKollie) -> None:
    first = await start_kollie()
    second = await start_kollie()
    bg1, bg2 = first.background, second.background
    assert bg1 is not None and bg2 is not None
    await eventually(lambda: bg1.is_leader or bg2.is_leader, within=10, message="a leader")
    other = bg2 if bg1.is_leader else bg1
    tried = other.elector.attempts
    await eventually(
        lambda: other.is_leader or other.elector.attempts >= tried + 2,
        within=10,
        message="the other replica to try for the Lease twice more",
    )
    assert bg1.is_leader != bg2.is_leader, "exactly one leader"
    leader, follower = (first, second) if bg1.is_leader else (second, first)
    await leader.server.close()
    fb = follower.background
    assert fb is not None
    await eventually(lambda: fb.is_leader, within=10, message="the other replica takes over")
    status, body = await follower.call(
        "PUT", "/api/v1/environments/after", json={"apps": {"api": {}}}
    )
    assert status == 201
    status, body = await follower.call("GET", "/api/v1/environments/after?wait=ready&timeout=15")
    assert status == 200 and body["apps"][0]["imageTag"], "the new leader follows images"
