"""Deleting an environment records when, in the cluster, for every replica to see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kollie import tombstones
from tests.helpers import eventually
from tests.service.conftest import StartKollie

CONFIG_MAPS = ("", "configmaps")


async def test_a_deletion_is_recorded_before_the_environment_goes(
    start_kollie: StartKollie,
) -> None:
    first = await start_kollie()
    second = await start_kollie()
    status, _ = await first.call("PUT", "/api/v1/environments/pr-1", json={"apps": {"web": {}}})
    assert status == 201
    before = datetime.now(UTC).replace(microsecond=0)
    status, _ = await first.call("DELETE", "/api/v1/environments/pr-1")
    assert status == 202
    stored = first.cluster.store.get(CONFIG_MAPS, "kollie", tombstones.NAME)
    assert stored is not None, "the tombstone is written by the deleting request itself"
    recorded = datetime.fromisoformat(stored["data"]["pr-1"])
    assert before <= recorded <= datetime.now(UTC)
    # It is no environment, and every replica reads it from the cluster.
    for replica in (first, second):
        await eventually(
            lambda r=replica: not r.services.cache.environment_names(), message="pr-1 gone"
        )
        status, listed = await replica.call("GET", "/api/v1/environments")
        assert listed["items"] == []
        known = await tombstones.read(replica.services.operations.client, "kollie")
        assert known["pr-1"] == recorded.timestamp()


async def test_the_tombstones_stay_bounded_dropping_the_oldest(start_kollie: StartKollie) -> None:
    kollie = await start_kollie()
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    kollie.cluster.apply_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": tombstones.NAME,
                "namespace": "kollie",
                "labels": {"app.kubernetes.io/managed-by": "kollie"},
            },
            "data": {
                f"old-{i}": (long_ago + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
                for i in range(tombstones.LIMIT)
            },
        }
    )
    status, _ = await kollie.call("PUT", "/api/v1/environments/pr-2", json={"apps": {"web": {}}})
    assert status == 201
    status, _ = await kollie.call("DELETE", "/api/v1/environments/pr-2")
    assert status == 202
    stored = kollie.cluster.store.get(CONFIG_MAPS, "kollie", tombstones.NAME)
    assert stored is not None
    data = stored["data"]
    assert len(data) == tombstones.LIMIT and "pr-2" in data and "old-0" not in data
    assert "old-1" in data
