"""Replayed deliveries: stale ones are ignored where the format says when it was sent, and no
delivery brings back an environment deleted after its image was built, on any replica."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.helpers import eventually
from tests.service.conftest import StartKollie
from tests.service.webhook_fixtures import (
    SECRET,
    deliver,
    harbor_cloudevent_tagged,
    sign,
    signed,
)

IMAGE = "registry.example.com/acme/web"
CONFIG_MAPS = ("", "configmaps")


def _stamp(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).isoformat()


async def test_stale_and_future_deliveries_are_ignored_with_the_reason(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    tag = "feature-old-abc1234-1900000000"
    for timestamp, reason in [
        (_stamp(-2 * 3600), "stale delivery"),
        (_stamp(+3600), "timestamp in the future"),
    ]:
        raw, headers = signed("generic", {"repository": IMAGE, "tag": tag, "timestamp": timestamp})
        status, answer = await deliver(kollie, "generic", raw, headers)
        assert status == 202 and answer["pushes"] == [], answer
        assert answer["ignored"][0]["reason"].startswith(reason), answer
    old = harbor_cloudevent_tagged(tag, _stamp(-2 * 3600).replace("+00:00", "Z"))
    raw, _ = signed("harbor", old)
    status, answer = await deliver(kollie, "harbor", raw, sign("harbor", raw))
    assert status == 202 and answer["ignored"][0]["reason"].startswith("stale delivery")
    assert kollie.cluster.store.get(CONFIG_MAPS, "kollie", "feature-old") is None
    # Within the limit the same delivery is acted on.
    raw, headers = signed("generic", {"repository": IMAGE, "tag": tag, "timestamp": _stamp(-60)})
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert status == 202 and answer["pushes"][0]["created"] == "feature-old"


async def test_the_age_limit_is_a_setting(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET, KOLLIE_WEBHOOK_MAX_AGE="3h")
    raw, headers = signed(
        "generic",
        {"repository": IMAGE, "tag": "feature-late-abc1234-1900000000", "timestamp": _stamp(-7200)},
    )
    status, answer = await deliver(kollie, "generic", raw, headers)
    assert status == 202 and answer["pushes"][0]["created"] == "feature-late"


async def test_a_replay_never_recreates_an_environment_deleted_after_its_image_was_built(
    start_kollie: StartKollie,
) -> None:
    first = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    second = await start_kollie(KOLLIE_WEBHOOK_SECRET=SECRET)
    built = int(time.time()) - 60
    tag = f"feature-gone-abc1234-{built}"
    raw, headers = signed("generic", {"repository": IMAGE, "tag": tag})
    status, answer = await deliver(first, "generic", raw, headers)
    assert answer["pushes"][0]["created"] == "feature-gone"
    status, _ = await first.call("DELETE", "/api/v1/environments/feature-gone")
    assert status == 202
    # The same delivery, replayed to the other replica (no memory of it there) once the
    # environment is gone everywhere.
    for replica in (first, second):
        await eventually(
            lambda r=replica: r.services.cache.environment("feature-gone") is None,
            message="the environment gone from both replicas' views",
        )
    status, answer = await deliver(second, "generic", raw, headers)
    assert status == 202, answer
    (push,) = answer["pushes"]
    assert push["created"] is None
    assert push["skipped"][0]["environment"] == "feature-gone"
    assert "after this image was built" in push["skipped"][0]["reason"]
    assert first.cluster.store.get(CONFIG_MAPS, "kollie", "feature-gone") is None
    # A build after the deletion brings the environment back: that is a new push.
    newer = f"feature-gone-def5678-{int(time.time()) + 5}"
    raw, headers = signed("generic", {"repository": IMAGE, "tag": newer})
    status, answer = await deliver(second, "generic", raw, headers)
    assert answer["pushes"][0]["created"] == "feature-gone"
