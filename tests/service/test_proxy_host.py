"""Identity headers count only on requests sent to the dashboard's own host (outside security
review: the ingress controller that forwards oauth2-proxy's headers, the one source the chart's
NetworkPolicy admits, also serves every other Ingress in the cluster. Branch code in a test
environment can add an Ingress for its own host whose backend is Kollie's pods, without the login
in front, and send `X-Auth-Request-Email: <an admin>` through it: it deleted anyone's
environment)."""

from __future__ import annotations

import re

import pytest

from tests.service.conftest import Kollie, StartKollie

PUBLIC = "https://kollie.example.com"
ADMIN = {"X-Auth-Request-Email": "admin@example.com"}
CM = ("", "configmaps")


async def _kollie(start_kollie: StartKollie) -> Kollie:
    kollie = await start_kollie(
        KOLLIE_TRUST_PROXY_HEADERS="true",
        KOLLIE_PUBLIC_URL=PUBLIC,
        KOLLIE_OWNER_ONLY="true",
        KOLLIE_ADMINS="admin@example.com",
    )
    status, body = await kollie.call("PUT", "/api/v1/environments/ci-env", json={"apps": ["api"]})
    assert status == 201, body
    return kollie


async def _delete_as_admin(kollie: Kollie, host: str) -> tuple[int, int]:
    """(status of the page, status of its delete form) for a request sent to `host`."""
    headers = {**ADMIN, "Host": host, "Origin": PUBLIC}
    async with kollie.http.get(kollie.url("/env/ci-env"), headers=headers) as r:
        page, page_status = await r.text(), r.status
        cookies = "; ".join(f"{k}={m.value}" for k, m in r.cookies.items())
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    form = {"csrf_token": found.group(1) if found else "", "confirm": "ci-env"}
    async with kollie.http.post(
        kollie.url("/env/ci-env/delete"),
        data=form,
        headers={**headers, "Cookie": cookies},
        allow_redirects=False,
    ) as r:
        return page_status, r.status


@pytest.mark.parametrize(
    "host", ["branch.test.example.com", "kollie.example.com.test.example.com", "10.0.0.7:8080"]
)
async def test_identity_headers_sent_to_another_host_are_nobodys(
    start_kollie: StartKollie, host: str
) -> None:
    kollie = await _kollie(start_kollie)
    assert await _delete_as_admin(kollie, host) == (401, 401)
    record = kollie.cluster.store.get(CM, "kollie", "ci-env")
    assert record is not None and "deletionTimestamp" not in record["metadata"]


@pytest.mark.parametrize("host", ["kollie.example.com", "Kollie.Example.com:443"])
async def test_identity_headers_sent_to_the_dashboard_count(
    start_kollie: StartKollie, host: str
) -> None:
    kollie = await _kollie(start_kollie)
    page, form = await _delete_as_admin(kollie, host)
    assert (page, form) == (200, 303), "the admin deletes through the dashboard's own host"
