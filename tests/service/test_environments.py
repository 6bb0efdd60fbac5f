"""End to end through the API: environments come up, follow images, and go away cleanly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from kubesim import schema
from tests.helpers import eventually
from tests.service.conftest import Kollie

SHARED_CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "flux-crds"
KS = ("kustomize.toolkit.fluxcd.io", "kustomizations")
IP = ("image.toolkit.fluxcd.io", "imagepolicies")
CM = ("", "configmaps")


def crd_schema(kind: str, directory: Path = SHARED_CRDS) -> dict[str, Any]:
    """The v1 schema of the CRD of `kind` among the CRD files in `directory`."""
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc["spec"]["names"]["kind"] == kind:
            version = next(v for v in doc["spec"]["versions"] if v["name"] == "v1")
            return dict(version["schema"]["openAPIV3Schema"])
    raise LookupError(kind)


async def test_create_follow_and_delete(kollie: Kollie) -> None:
    status, body = await kollie.call(
        "PUT",
        "/api/v1/environments/pr-42",
        json={"bundle": "storefront", "apps": {"web": {"prefix": "feature-checkout"}}},
    )
    assert status == 201, body
    assert {a["name"] for a in body["apps"]} == {"web", "api", "worker"}
    store = kollie.cluster.store

    record = store.get(CM, "kollie", "pr-42")
    assert record is not None
    assert record["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "kollie",
        "kollie.io/environment": "pr-42",
    }
    assert record["metadata"]["annotations"]["kollie.io/owner"] == "token:ci"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        record["metadata"]["annotations"]["kollie.io/created-at"],
    )

    ks = store.get(KS, "kollie", "pr-42-web")
    policy = store.get(IP, "kollie", "pr-42-web")
    assert ks is not None and policy is not None
    for obj, kind in ((ks, "Kustomization"), (policy, "ImagePolicy")):
        meta = obj["metadata"]
        assert meta["labels"] == {
            "app.kubernetes.io/managed-by": "kollie",
            "kollie.io/environment": "pr-42",
            "kollie.io/app": "web",
        }
        assert meta["annotations"]["kollie.io/image-tag-prefix"] == "feature-checkout"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "pr-42",
                "uid": record["metadata"]["uid"],
                "blockOwnerDeletion": True,
                "controller": False,
            }
        ]
        if SHARED_CRDS.exists():
            body_only = {k: v for k, v in obj.items() if k != "status"}
            result = schema.validate(crd_schema(kind), body_only)
            assert result.errors == [] and result.unknown_fields == [], (kind, result)
    assert ks["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": "platform",
        "namespace": "flux-system",
    }
    assert ks["spec"]["prune"] is True and ks["spec"]["path"] == "./apps/web"
    assert ks["spec"]["dependsOn"] == [{"name": "pr-42-api"}]
    subs = ks["spec"]["postBuild"]["substitute"]
    assert subs["environment"] == "pr-42" and subs["zone_name"] == "test.example.com"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ-\d{4}-\d\d-\d\dT19:00:00Z", subs["downscaler_uptime"]
    )
    assert policy["spec"]["filterTags"] == {
        "pattern": "^feature-checkout-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)$",
        "extract": "$ts",
    }
    assert policy["spec"]["policy"] == {"numerical": {"order": "asc"}}

    status, body = await kollie.call("GET", "/api/v1/environments/pr-42?wait=ready&timeout=20")
    assert status == 200, body
    web = next(a for a in body["apps"] if a["name"] == "web")
    assert web["ready"] is True and web["imageTag"].startswith("feature-checkout-")
    assert web["imageDigest"].startswith("sha256:") and web["urls"] == [
        "http://web.pr-42.test.example.com/"
    ]
    ks = store.get(KS, "kollie", "pr-42-web")
    assert ks is not None and ks["spec"]["postBuild"]["substitute"]["image_tag"] == web["imageTag"]

    # A newer branch image, once Flux rescans, moves image_tag.
    flux = kollie.cluster.flux
    newer = "feature-checkout-abcdef1-9999999999"
    flux.registry.push("registry.example.com/acme/web", newer)
    kollie.cluster.apply_object(
        {
            **store.get(("image.toolkit.fluxcd.io", "imagerepositories"), "flux-system", "web"),
            "metadata": {
                "name": "web",
                "namespace": "flux-system",
                "annotations": {"reconcile.fluxcd.io/requestedAt": "now"},
            },
        }
    )

    def followed() -> bool:
        obj = store.get(KS, "kollie", "pr-42-web") or {}
        return (
            obj.get("spec", {}).get("postBuild", {}).get("substitute", {}).get("image_tag") == newer
        )

    await eventually(followed, within=10, message="image_tag follows the new image")

    status, body = await kollie.call("DELETE", "/api/v1/environments/pr-42")
    assert status == 202, body

    def gone() -> bool:
        return not any(
            o["metadata"].get("labels", {}).get("kollie.io/environment") == "pr-42"
            for gr in (KS, IP, CM)
            for o in store.iter(gr, "kollie")
        )

    await eventually(gone, within=10, message="garbage collection removed every object")
    status, body = await kollie.call("GET", "/api/v1/environments/pr-42")
    assert status == 404 or body.get("deleting"), body


async def test_add_change_remove_app_and_extend(kollie: Kollie) -> None:
    status, _ = await kollie.call("PUT", "/api/v1/environments/small", json={"apps": {"api": {}}})
    assert status == 201
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/small", json={"apps": {"api": {}}}
    )
    assert status == 200, "PUT is idempotent"
    status, body = await kollie.call(
        "POST",
        "/api/v1/environments/small/apps",
        json={"name": "search", "prefix": "feature-search-v2"},
    )
    assert status == 200 and {a["name"] for a in body["apps"]} == {"api", "search"}, body
    status, body = await kollie.call(
        "POST", "/api/v1/environments/small/apps", json={"name": "search"}
    )
    assert status == 200
    assert next(a for a in body["apps"] if a["name"] == "search")["prefix"] == "main"
    status, body = await kollie.call("DELETE", "/api/v1/environments/small/apps/search")
    assert status == 200, body
    await eventually(
        lambda: kollie.cluster.store.get(KS, "kollie", "small-search") is None,
        within=5,
        message=f"small-search deleted: {kollie.cluster.store.get(KS, 'kollie', 'small-search')}",
    )
    until_before = body["uptime"]["until"]
    status, body = await kollie.call("POST", "/api/v1/environments/small/extend", json={"hours": 3})
    assert status == 200, body
    assert body["uptime"]["until"] > until_before
    three_hours_later = body["uptime"]["until"]
    status, body = await kollie.call("POST", "/api/v1/environments/small/extend", json={"days": 1})
    assert status == 200 and body["uptime"]["until"] > three_hours_later, body
    ks = kollie.cluster.store.get(KS, "kollie", "small-api")
    assert ks is not None and ks["spec"]["postBuild"]["substitute"]["downscaler_uptime"].endswith(
        body["uptime"]["until"]
    )


async def test_follow_a_flux_repository_branch(kollie: Kollie) -> None:
    flux = kollie.cluster.flux
    flux.git.push("https://git.example.com/acme/platform", "feature-infra")
    status, _ = await kollie.call("PUT", "/api/v1/environments/infra", json={"apps": {"api": {}}})
    assert status == 201
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/infra/flux-branch", json={"branch": "feature-infra"}
    )
    assert status == 200 and body["fluxBranch"] == "feature-infra", body
    store = kollie.cluster.store
    copy = store.get(("source.toolkit.fluxcd.io", "gitrepositories"), "kollie", "platform-infra")
    template = store.get(("source.toolkit.fluxcd.io", "gitrepositories"), "flux-system", "platform")
    assert copy is not None and template is not None
    assert copy["spec"] == {**template["spec"], "ref": {"branch": "feature-infra"}}
    ks = store.get(KS, "kollie", "infra-api")
    assert ks is not None and ks["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": "platform-infra",
        "namespace": "kollie",
    }
    status, body = await kollie.call("GET", "/api/v1/environments/infra?wait=ready&timeout=15")
    assert status == 200 and body["apps"][0]["revision"].startswith("feature-infra@sha1:"), body
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/infra/flux-branch", json={"branch": None}
    )
    assert status == 200 and body["fluxBranch"] is None
    await eventually(
        lambda: (
            store.get(("source.toolkit.fluxcd.io", "gitrepositories"), "kollie", "platform-infra")
            is None
        ),
        within=5,
        message="the copy is removed",
    )
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/infra/flux-branch", json={"branch": "bad..name"}
    )
    assert status == 422


async def test_audit_trail(kollie: Kollie) -> None:
    await kollie.call("PUT", "/api/v1/environments/audited", json={"apps": {"api": {}}})
    await kollie.call("POST", "/api/v1/environments/audited/apps", json={"name": "search"})
    await kollie.call("DELETE", "/api/v1/environments/audited/apps/search")
    await kollie.call("POST", "/api/v1/environments/audited/extend", json={"hours": 2})

    async def reasons() -> list[str] | None:
        status, body = await kollie.call("GET", "/api/v1/environments/audited/history")
        assert status == 200
        got = [e["reason"] for e in body["items"]]
        return (
            got
            if {"EnvironmentCreated", "AppAdded", "AppRemoved", "UptimeChanged", "ImageFollowed"}
            <= set(got)
            else None
        )

    await eventually(reasons, within=10, message="the audit trail shows every change")
    _, body = await kollie.call("GET", "/api/v1/environments/audited/history")
    created = next(e for e in body["items"] if e["reason"] == "EnvironmentCreated")
    assert (
        created["actor"] == "token:ci"
        and created["via"] == "api"
        and "api=main" in created["message"]
    )
    events = [
        e
        for e in kollie.cluster.store.iter(("", "events"), "kollie")
        if e["involvedObject"]["name"] == "audited"
    ]
    assert events and all(e["involvedObject"]["kind"] == "ConfigMap" for e in events)
