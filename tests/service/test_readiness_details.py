"""/readyz tells anyone who can reach the pod only whether it is ready; the API server's and the
catalog's error texts are for authenticated callers (`?verbose`) and the logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kollie.cli import DEMO_CATALOG
from tests.helpers import eventually
from tests.service.conftest import AUTH, Kollie, StartKollie

USER = {"X-Auth-Request-Email": "dev@example.com"}


async def _readyz(kollie: Kollie, query: str = "", **headers: str) -> tuple[int, Any]:
    async with kollie.http.get(kollie.url("/readyz" + query), headers=headers) as r:
        return r.status, await r.json()


async def test_error_texts_only_for_authenticated_callers(
    start_kollie: StartKollie, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(DEMO_CATALOG.read_text())
    kollie = await start_kollie(KOLLIE_CATALOG=str(catalog), KOLLIE_TRUST_PROXY_HEADERS="true")
    status, body = await _readyz(kollie)
    assert (status, body) == (200, {"status": "ready", "leader": body["leader"]})

    catalog.write_text(yaml.safe_dump({"apps": [{"name": "Secret_Team_App"}]}))

    async def catalog_error() -> str | None:
        _, body = await _readyz(kollie, "?verbose", **AUTH)
        return str(body["catalogError"]) if body["catalogError"] else None

    error = await eventually(catalog_error, within=15, message="the catalog is reloaded")
    assert "Secret_Team_App" in error
    kollie.cluster.faults.update({"error_rate": 1.0, "error_code": 500})
    kollie.cluster.drop_watches()

    async def informer_error() -> dict[str, Any] | None:
        status, body = await _readyz(kollie, "?verbose", **AUTH)
        failing = [i for i in body["informers"].values() if i["lastError"]]
        return body if status == 503 and failing else None

    await eventually(informer_error, within=15, message="a watch fails with the API's error")
    status, body = await _readyz(kollie)
    assert status == 503 and body == {"status": "not ready", "leader": body["leader"]}
    assert "Secret_Team_App" not in str(body)
    status, body = await _readyz(kollie, "?verbose")
    assert status == 401 and body["error"] == "unauthorized"
    status, body = await _readyz(kollie, "?verbose", **USER)
    assert status == 503 and "Secret_Team_App" in body["catalogError"], "a dashboard user"
    kollie.cluster.faults.update({"error_rate": 0.0})
