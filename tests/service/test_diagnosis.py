"""The diagnosis end to end: each failure made by the emulator's simulated Flux (its /sim/
switches where it has one), read by Kollie through its watches, and answered over HTTP."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import yaml
from markupsafe import escape

from kollie.cli import DEMO_CATALOG
from kubesim import SimCluster
from kubesim.demo import GIT_URL, REGISTRY
from tests.helpers import eventually
from tests.service.conftest import AUTH, Kollie, StartKollie
from web.openapi import DOCUMENT

PAGE_USER = {"X-Auth-Request-Email": "dev@example.com"}
IMAGES = ("image.toolkit.fluxcd.io", "imagerepositories")
POLICIES = ("image.toolkit.fluxcd.io", "imagepolicies")
RELEASES = ("helm.toolkit.fluxcd.io", "helmreleases")
GITREPOS = ("source.toolkit.fluxcd.io", "gitrepositories")
DESIGN = {
    "diagnosis": {"summary", "cause", "steps", "commands"},
    "cause": {"kind", "namespace", "name", "reason", "message"},
    "step": {"kind", "namespace", "name", "ok", "summary"},
}
"""The diagnosis's field names as shared/DESIGN.md §5 states them."""


def _json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes a type that allows null."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and "type" in schema:
        out["type"] = [schema["type"], "null"]
    return out


def assert_designed(found: dict[str, Any]) -> None:
    """A diagnosis has exactly DESIGN §5's fields and fits the OpenAPI document's schema."""
    assert set(found) == DESIGN["diagnosis"], found
    assert set(found["cause"]) == DESIGN["cause"], found["cause"]
    assert found["steps"], "the chain as far as it was followed"
    for step in found["steps"]:
        assert set(step) == DESIGN["step"], step
    schema = DOCUMENT["components"]["schemas"]["Diagnosis"]
    jsonschema.validate(found, _json_schema(schema))


def test_the_openapi_document_states_the_designed_shape() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert "diagnosis" in schemas["AppStatus"]["properties"]
    diagnosis = schemas["Diagnosis"]
    assert set(diagnosis["required"]) == set(diagnosis["properties"]) == DESIGN["diagnosis"]
    cause = diagnosis["properties"]["cause"]
    assert set(cause["required"]) == set(cause["properties"]) == DESIGN["cause"]
    step = diagnosis["properties"]["steps"]["items"]
    assert set(step["required"]) == set(step["properties"]) == DESIGN["step"]


async def sim(cluster: SimCluster, method: str, path: str, body: Any) -> Any:
    """One of the emulator's /sim/ switches."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, cluster.url + path, json=body) as response,
    ):
        assert response.status < 300, await response.text()
        return await response.json()


def rescan(cluster: SimCluster, name: str, *, interval: str | None = None) -> None:
    """What `flux reconcile image repository` does: ask for a scan now (and scan every
    `interval` from now on)."""
    repo = copy.deepcopy(cluster.store.get(IMAGES, "flux-system", name))
    assert repo is not None
    annotations = {"reconcile.fluxcd.io/requestedAt": datetime.now(UTC).isoformat()}
    repo["metadata"].setdefault("annotations", {}).update(annotations)
    if interval is not None:
        repo["spec"]["interval"] = interval
    cluster.apply_object(repo)


def ready_condition(obj: dict[str, Any] | None, kind: str = "Ready") -> dict[str, Any]:
    assert obj is not None
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


async def app_of(kollie: Kollie, env: str, app: str) -> dict[str, Any]:
    status, body = await kollie.call("GET", f"/api/v1/environments/{env}")
    assert status == 200, body
    found: dict[str, Any] = next(a for a in body["apps"] if a["name"] == app)
    return found


async def diagnosed(
    kollie: Kollie,
    env: str,
    app: str,
    kind: str,
    *,
    reason: str | None = None,
    within: float = 15.0,
) -> dict[str, Any]:
    """The app's diagnosis once its cause is of `kind` (and `reason`)."""

    async def check() -> dict[str, Any] | None:
        found = (await app_of(kollie, env, app))["diagnosis"]
        if not found or found["cause"]["kind"] != kind:
            return None
        return found if reason in (None, found["cause"]["reason"]) else None

    result: dict[str, Any] = await eventually(
        check, within=within, message=f"{env}/{app} diagnosed at its {kind}"
    )
    assert_designed(result)
    return result


async def create(kollie: Kollie, env: str, apps: dict[str, Any]) -> None:
    status, body = await kollie.call("PUT", f"/api/v1/environments/{env}", json={"apps": apps})
    assert status == 201, body


async def test_a_branch_image_pushed_without_its_timestamp(kollie: Kollie) -> None:
    # The demo registry holds `fix-login-<sha>` for admin (kubesim.demo.BROKEN_TAGS).
    await create(kollie, "login-fix", {"admin": {"prefix": "fix-login"}})
    found = await diagnosed(kollie, "login-fix", "admin", "ImagePolicy")
    policy = kollie.cluster.store.get(POLICIES, "kollie", "login-fix-admin")
    flux = ready_condition(policy)
    assert found["cause"] == {
        "kind": "ImagePolicy",
        "namespace": "kollie",
        "name": "login-fix-admin",
        "reason": flux["reason"],
        "message": flux["message"],
    }
    assert found["summary"].startswith("CI pushed `fix-login-")
    assert f"to {REGISTRY}/admin, but Kollie follows only tags of the form " in found["summary"]
    assert "it has no `-<timestamp>` after the commit" in found["summary"]
    assert found["steps"][0] == {
        "kind": "ImageRepository",
        "namespace": "flux-system",
        "name": "admin",
        "ok": True,
        "summary": f"scanned {REGISTRY}/admin: 4 tags",
    }
    assert "flux get image policy login-fix-admin -n kollie" in found["commands"]


async def test_a_branch_nobody_pushed_an_image_of(kollie: Kollie) -> None:
    await create(kollie, "nothing", {"web": {"prefix": "feature-nothing"}})
    found = await diagnosed(kollie, "nothing", "web", "ImagePolicy")
    assert found["summary"].startswith(
        f"No tag of {REGISTRY}/web starts with `feature-nothing-`: CI has not pushed an image"
    )
    assert "(newest tags: `feature-checkout-" in found["summary"]


async def test_registry_credentials_refused_then_accepted(kollie: Kollie) -> None:
    cluster = kollie.cluster
    image = f"{REGISTRY}/web"
    await sim(cluster, "PUT", "/sim/registry/credentials", {"image": image, "refused": True})
    # A refused scan that was asked for is retried as a no-op until the interval since the last
    # good scan has passed (image-reflector-controller's shouldScan): then it keeps failing.
    rescan(cluster, "web", interval="1s")
    await create(kollie, "late", {"web": {"prefix": "feature-late"}})
    found = await diagnosed(kollie, "late", "web", "ImageRepository")
    repo = ready_condition(cluster.store.get(IMAGES, "flux-system", "web"))
    assert found["cause"]["reason"] == repo["reason"] == "ReadOperationFailed"
    assert found["cause"]["message"] == repo["message"]
    assert found["summary"].startswith(f"The registry refuses Flux's credentials for {image}")
    assert "flux reconcile image repository web -n flux-system" in found["commands"]

    await sim(cluster, "PUT", "/sim/registry/credentials", {"image": image, "refused": False})
    cluster.flux.registry.push(image, "feature-late-abc1234-1900000000")
    rescan(cluster, "web")

    async def recovered() -> bool:
        app = await app_of(kollie, "late", "web")
        return app["state"] == "Ready" and app["diagnosis"] is None

    await eventually(recovered, within=15, message="web Ready once the registry accepts Flux")


async def test_the_flux_branch_the_environment_follows_was_deleted(kollie: Kollie) -> None:
    cluster = kollie.cluster
    await sim(cluster, "POST", "/sim/git/push", {"url": GIT_URL, "branch": "feature-flux"})
    branch = {"url": GIT_URL, "branch": "feature-flux", "deleted": True}
    await sim(cluster, "PUT", "/sim/git/branches", branch)
    await create(kollie, "flux-pr", {"api": {}})
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/flux-pr/flux-branch", json={"branch": "feature-flux"}
    )
    assert status == 200, body
    found = await diagnosed(kollie, "flux-pr", "api", "GitRepository")
    source = ready_condition(cluster.store.get(GITREPOS, "kollie", "platform-flux-pr"))
    assert found["cause"] == {
        "kind": "GitRepository",
        "namespace": "kollie",
        "name": "platform-flux-pr",
        "reason": source["reason"],
        "message": source["message"],
    }
    assert "couldn't find remote ref" in source["message"]
    assert found["summary"].startswith(
        "This environment follows the Flux repository branch `feature-flux`, which does not "
        "exist (any more)"
    )


async def test_a_chart_that_fails_to_install(start_kollie: StartKollie) -> None:
    kollie = await start_kollie(KOLLIE_DIAGNOSIS_HELM_RELEASES="true")
    failure = {"chart": "search", "action": "install", "failing": True}
    await sim(kollie.cluster, "PUT", "/sim/helm/failures", failure)
    await create(kollie, "search-pr", {"search": {}})
    found = await diagnosed(kollie, "search-pr", "search", "HelmRelease", within=30)
    release = kollie.cluster.store.get(RELEASES, "search-pr", "search")
    released = ready_condition(release, "Released")
    assert found["cause"] == {
        "kind": "HelmRelease",
        "namespace": "search-pr",
        "name": "search",
        "reason": "InstallFailed",
        "message": released["message"],
    }
    assert found["summary"].startswith("Helm could not install release search-pr/search: ")
    app = await app_of(kollie, "search-pr", "search")
    assert app["state"] == "Failed" and app["ready"] is False
    assert [s["kind"] for s in found["steps"]][-2:] == ["Kustomization", "HelmRelease"]
    assert found["steps"][-2]["ok"] is True, "Flux applied it; helm-controller failed it"

    async def gave_up() -> bool:
        summary = (await app_of(kollie, "search-pr", "search"))["diagnosis"]["summary"]
        return "It gave up: Failed to install after 3 attempt(s)." in summary

    await eventually(gave_up, within=30, message="the retries used up")


async def test_a_health_check_names_the_release_and_stops_there_without_reading_them(
    kollie: Kollie,
) -> None:
    # payments waits for what it applies (`wait: true` in the demo catalog); Kollie is not
    # allowed to read HelmReleases here (KOLLIE_DIAGNOSIS_HELM_RELEASES is off by default).
    failure = {"chart": "payments", "action": "install", "failing": True}
    await sim(kollie.cluster, "PUT", "/sim/helm/failures", failure)
    await create(kollie, "pay-pr", {"payments": {}})
    found = await diagnosed(
        kollie, "pay-pr", "payments", "Kustomization", reason="HealthCheckFailed", within=60
    )
    assert "HelmRelease pay-pr/payments is Failed" in found["summary"]
    assert "so the diagnosis stops at the Kustomization" in found["summary"]
    assert found["steps"][-1]["kind"] == "Kustomization"


async def test_a_substitution_the_manifests_need_is_missing(
    start_kollie: StartKollie, cluster: SimCluster, tmp_path: Path
) -> None:
    url = "https://git.example.com/acme/broken"
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: "
        "${environment}\ndata:\n  region: ${region}\n"
    )
    cluster.flux.git.add_repository(url, branches=["main"], paths={"./apps/broken": manifest})
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "broken", "namespace": "flux-system"},
            "spec": {"url": url, "interval": "5m", "ref": {"branch": "main"}},
        }
    )
    catalog = yaml.safe_load(DEMO_CATALOG.read_text())
    catalog["apps"].append(
        {
            "name": "broken",
            "gitRepository": {"name": "broken", "namespace": "flux-system"},
            "path": "./apps/broken",
            "imageRepository": {"name": "api", "namespace": "flux-system"},
        }
    )
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    kollie = await start_kollie(KOLLIE_CATALOG=str(path))
    await create(kollie, "subst", {"broken": {}})
    found = await diagnosed(kollie, "subst", "broken", "Kustomization", reason="BuildFailed")
    assert 'variable not set (strict mode): "region"' in found["cause"]["message"]
    assert found["summary"].startswith(
        "The app's manifests use `${region}`, which no substitution sets"
    )
    assert [s["ok"] for s in found["steps"]] == [True, True, True, False]


async def _with_app(
    start_kollie: StartKollie, tmp_path: Path, app: dict[str, Any], **env: str
) -> Kollie:
    """Kollie with the demo catalog and one more app, `broken`, as `app` describes it."""
    catalog = yaml.safe_load(DEMO_CATALOG.read_text())
    catalog["apps"].append({"name": "broken", "path": "./apps/api", **app})
    path = tmp_path / "catalog-broken.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return await start_kollie(KOLLIE_CATALOG=str(path), **env)


PLATFORM = {"name": "platform", "namespace": "flux-system"}


async def test_the_image_repository_the_catalog_names_does_not_exist(
    start_kollie: StartKollie, tmp_path: Path
) -> None:
    ghost = {"name": "ghost", "namespace": "flux-system"}
    kollie = await _with_app(
        start_kollie, tmp_path, {"gitRepository": PLATFORM, "imageRepository": ghost}
    )
    await create(kollie, "haunted", {"broken": {}})
    found = await diagnosed(kollie, "haunted", "broken", "ImageRepository", reason="NotFound")
    assert found["summary"] == (
        "The ImageRepository flux-system/ghost that the catalog names for broken does not "
        "exist, so Flux looks for no image of it."
    )
    assert found["steps"][0] == {
        "kind": "ImageRepository",
        "namespace": "flux-system",
        "name": "ghost",
        "ok": False,
        "summary": "does not exist",
    }
    assert "kubectl get imagerepositories -n flux-system" in found["commands"]


async def test_an_image_repository_that_does_not_let_kollies_namespace_use_it(
    start_kollie: StartKollie, cluster: SimCluster, tmp_path: Path
) -> None:
    cluster.apply_object(
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "guarded", "namespace": "flux-system"},
            "spec": {
                "image": f"{REGISTRY}/api",
                "interval": "5m",
                "accessFrom": {"namespaceSelectors": [{"matchLabels": {"team": "payments"}}]},
            },
        }
    )
    guarded = {"name": "guarded", "namespace": "flux-system"}
    kollie = await _with_app(
        start_kollie, tmp_path, {"gitRepository": PLATFORM, "imageRepository": guarded}
    )
    await create(kollie, "locked", {"broken": {}})
    found = await diagnosed(kollie, "locked", "broken", "ImagePolicy", reason="AccessDenied")
    policy = ready_condition(cluster.store.get(POLICIES, "kollie", "locked-broken"))
    assert found["cause"]["message"] == policy["message"]
    assert "access denied" in policy["message"]
    assert found["summary"] == (
        "The ImageRepository flux-system/guarded does not let ImagePolicies in namespace "
        "'kollie' use it: its spec.accessFrom must select that namespace."
    )
    assert "kubectl get imagerepository guarded -n flux-system -o yaml" in found["commands"]


async def test_the_git_credentials_secret_is_missing(
    start_kollie: StartKollie, cluster: SimCluster, tmp_path: Path
) -> None:
    url = "https://git.example.com/acme/private"
    cluster.flux.git.add_repository(url, branches=["main"], paths={"./apps/api": []})
    cluster.apply_object(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "private", "namespace": "flux-system"},
            "spec": {
                "url": url,
                "interval": "5m",
                "ref": {"branch": "main"},
                "secretRef": {"name": "git-credentials"},
            },
        }
    )
    private = {"name": "private", "namespace": "flux-system"}
    api = {"name": "api", "namespace": "flux-system"}
    kollie = await _with_app(
        start_kollie, tmp_path, {"gitRepository": private, "imageRepository": api}
    )
    await create(kollie, "secretless", {"broken": {}})
    found = await diagnosed(
        kollie, "secretless", "broken", "GitRepository", reason="AuthenticationFailed"
    )
    source = ready_condition(cluster.store.get(GITREPOS, "flux-system", "private"))
    assert found["cause"]["message"] == source["message"]
    assert source["message"].endswith('secrets "git-credentials" not found')
    assert found["summary"] == (
        "Flux cannot read the git credentials of GitRepository flux-system/private: the Secret "
        "its spec.secretRef names does not exist."
    )
    assert [s["kind"] for s in found["steps"]] == [
        "ImageRepository",
        "ImagePolicy",
        "GitRepository",
    ]
    assert "flux reconcile source git private -n flux-system" in found["commands"]


async def _environment_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The `environment` events of an SSE stream, decoded."""
    event = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "environment":
            yield json.loads(line.removeprefix("data: "))


async def test_falling_asleep_reaches_the_live_page_when_it_happens(
    start_kollie: StartKollie,
) -> None:
    # A new environment is up until 19:00 UTC; Kollie's clock is three seconds before that.
    moment = [datetime(2026, 12, 7, 18, 59, 57, tzinfo=UTC)]
    kollie = await start_kollie(clock=lambda: moment[0], KOLLIE_DIAGNOSIS_HELM_RELEASES="true")
    failure = {"chart": "search", "action": "install", "failing": True}
    await sim(kollie.cluster, "PUT", "/sim/helm/failures", failure)
    await create(kollie, "night", {"search": {}})

    async def gave_up() -> bool:
        found = (await app_of(kollie, "night", "search"))["diagnosis"]
        return found["cause"]["kind"] == "HelmRelease" and "It gave up" in found["summary"]

    # Settled: from here on, only the time changes.
    await eventually(gave_up, within=30, message="helm-controller gave up")
    async with kollie.http.get(kollie.url("/events?env=night"), headers=AUTH) as stream:
        assert stream.status == 200
        moment[0] = datetime(2026, 12, 7, 19, 0, 5, tzinfo=UTC)
        async with asyncio.timeout(15):
            async for env in _environment_events(stream):
                found = env["apps"][0]["diagnosis"]
                if found["cause"]["kind"] == "Environment":
                    break
    assert_designed(found)
    assert found["cause"]["reason"] == "Asleep"
    assert found["summary"] == (
        "The environment is asleep: its uptime window ended at 19:00 UTC on Mon 07 Dec, so its "
        "workloads are scaled to zero. Extending it wakes it up."
    )
    assert [s["kind"] for s in found["steps"]][-2:] == ["HelmRelease", "Environment"]


async def test_the_environment_page_and_the_dashboard_row_say_why(
    start_kollie: StartKollie,
) -> None:
    kollie = await start_kollie(KOLLIE_TRUST_PROXY_HEADERS="true")
    await create(kollie, "login-fix", {"admin": {"prefix": "fix-login"}, "api": {}})
    found = await diagnosed(kollie, "login-fix", "admin", "ImagePolicy")

    async def api_ready() -> bool:
        return (await app_of(kollie, "login-fix", "api"))["state"] == "Ready"

    await eventually(api_ready, message="api Ready")

    async def page(path: str) -> str:
        async with kollie.http.get(kollie.url(path), headers=PAGE_USER) as response:
            assert response.status == 200
            return await response.text()

    html = await page("/env/login-fix")
    admin = html[html.index('data-app="admin"') :]
    admin = admin[: admin.index("</article>")]
    assert '<h4 class="why-title">Why is admin not ready?</h4>' in admin
    tag = found["summary"].split("`")[1]
    assert f'<p class="why-summary">CI pushed <code>{escape(tag)}</code> to ' in admin
    assert (
        '<li class="why-step why-ok"><span class="why-mark" aria-hidden="true">✔</span> '
        '<span class="visually-hidden">fine: </span><strong>ImageRepository</strong> '
        "<code>flux-system/admin</code>"
    ) in admin
    assert '<li class="why-step why-broken">' in admin
    assert f"{found['cause']['reason']}: {found['cause']['message']}" in admin
    assert 'class="why-cause"' not in admin, "Flux's words once: the broken step quotes them"
    assert escape("flux get image policy login-fix-admin -n kollie") in admin
    api = html[html.index('data-app="api"') :]
    api = api[: api.index("</article>")]
    assert '<div class="why" data-why></div>' in api, "a Ready app has no panel (and no space)"

    row = await page("/")
    row = row[row.index('<tr data-env="login-fix"') :]
    row = row[: row.index("</tr>")]
    assert (
        '<span class="why-link"><span class="visually-hidden">broken link: </span>'
        "admin ✖ ImagePolicy</span>"
    ) in row
