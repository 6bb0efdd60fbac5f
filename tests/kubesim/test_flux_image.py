"""The simulated image-reflector-controller in a running emulated cluster: ImageRepository scans
and ImagePolicy selection, with the status the real controller writes."""

from __future__ import annotations

from typing import Any

from kubesim import SimCluster
from kubesim.flux import FluxSimulation
from tests.helpers import eventually

IMAGE = "registry.example.com/acme/web"
REPOS = ("image.toolkit.fluxcd.io", "imagerepositories")
POLICIES = ("image.toolkit.fluxcd.io", "imagepolicies")


def flux(cluster: SimCluster) -> FluxSimulation:
    sim = cluster.controllers[0]
    assert isinstance(sim, FluxSimulation)
    return sim


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def repository(name: str = "web", namespace: str = "flux-system", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": IMAGE, "interval": "5m", **spec},
    }


def policy(name: str, prefix: str, namespace: str = "flux-system", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "imageRepositoryRef": {"name": "web", "namespace": "flux-system"},
            "filterTags": {
                "pattern": f"^{prefix}-(?P<sha>[0-9a-f]{{7,40}})-(?P<ts>[0-9]+)$",
                "extract": "$ts",
            },
            "policy": {"numerical": {"order": "asc"}},
            **spec,
        },
    }


async def settled(
    cluster: SimCluster,
    gr: tuple[str, str],
    name: str,
    namespace: str = "flux-system",
    *,
    ready: str | None = None,
) -> dict[str, Any]:
    """The object once its Ready condition speaks about its current generation (and, if given,
    has that status)."""

    def check() -> dict[str, Any] | None:
        obj = cluster.store.get(gr, namespace, name)
        c = condition(obj)
        if (
            not obj
            or c.get("status") in (None, "Unknown")
            or c.get("observedGeneration") != obj["metadata"]["generation"]
        ):
            return None
        return obj if ready is None or c["status"] == ready else None

    found: dict[str, Any] = await eventually(check, message=f"{gr[1]} {namespace}/{name} settled")
    return found


async def test_policy_picks_the_newest_tag_of_its_prefix(cluster: SimCluster) -> None:
    for tag in (
        "feature-x-abc1234-1700000000",
        "feature-x-abc1235-999999999",
        "feature-x-def5678-10000000000",
        "feature-x-y-fff0000-20000000000",
        "main-0000000-30000000000",
        "feature-x-latest",
        "feature-x-abc1234-1700000000.sig",
    ):
        flux(cluster).registry.push(IMAGE, tag)
    cluster.apply_object(repository())
    cluster.apply_object(policy("pr", "feature-x"))
    repo = await settled(cluster, REPOS, "web", ready="True")
    scan = repo["status"]["lastScanResult"]
    assert scan["tagCount"] == 6, "the default exclusion list drops .sig tags"
    assert scan["latestTags"][:3] == [
        "main-0000000-30000000000",
        "feature-x-y-fff0000-20000000000",
        "feature-x-latest",
    ]
    assert (
        condition(repo)["message"]
        == f"successful scan: found 6 tags with checksum {scan['revision']}"
    )
    assert repo["status"]["canonicalImageName"] == IMAGE
    assert repo["status"]["observedExclusionList"] == ["^.*\\.sig$"]
    assert repo["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]

    obj = await settled(cluster, POLICIES, "pr", ready="True")
    assert obj["status"]["latestRef"] == {"name": IMAGE, "tag": "feature-x-def5678-10000000000"}
    c = condition(obj)
    assert (c["reason"], c["message"]) == (
        "Succeeded",
        f"Latest image tag for {IMAGE} resolved to feature-x-def5678-10000000000",
    )
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert "Reconciling" not in {x["type"] for x in obj["status"]["conditions"]}


async def test_no_matching_tag_fails_clearly_and_recovers(cluster: SimCluster) -> None:
    flux(cluster).registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(repository())
    cluster.apply_object(policy("none", "nobody"))
    obj = await settled(cluster, POLICIES, "none", ready="False")
    c = condition(obj)
    assert (c["reason"], c["message"]) == ("Failure", "version list argument cannot be empty")
    assert condition(obj, "Reconciling")["reason"] == "ProgressingWithRetry"
    assert obj["status"]["observedGeneration"] == -1, (
        "a failed reconcile does not advance observedGeneration"
    )
    assert "latestRef" not in obj["status"]

    cluster.apply_object(policy("none", "main"))
    obj = await settled(cluster, POLICIES, "none", ready="True")
    assert (
        obj["status"]["latestRef"]["tag"] == "main-abc1234-1"
        and obj["status"]["observedGeneration"] == 2
    )


async def test_cross_namespace_reference_needs_access_from(cluster: SimCluster) -> None:
    flux(cluster).registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "kollie", "labels": {"team": "qa"}},
        }
    )
    cluster.apply_object(repository())
    cluster.apply_object(policy("denied", "main", namespace="kollie"))
    c = condition(await settled(cluster, POLICIES, "denied", "kollie", ready="False"))
    assert (c["reason"], c["message"]) == (
        "AccessDenied",
        "failed to get the referred ImageRepository: access denied: 'flux-system/web' can't be "
        "accessed due to missing ACL labels on 'accessFrom'",
    )

    cluster.apply_object(
        repository(accessFrom={"namespaceSelectors": [{"matchLabels": {"team": "dev"}}]})
    )
    cluster.apply_object(
        {
            **policy("denied", "main", namespace="kollie"),
            "metadata": {
                "name": "denied",
                "namespace": "kollie",
                "annotations": {"reconcile.fluxcd.io/requestedAt": "again"},
            },
        }
    )

    def mismatch() -> bool:
        c = condition(cluster.store.get(POLICIES, "kollie", "denied"))
        return str(c.get("message", "")).endswith(
            "can't be accessed due to ACL labels mismatch on namespace 'kollie'"
        )

    await eventually(mismatch, message="ACL mismatch reported")

    cluster.apply_object(
        repository(accessFrom={"namespaceSelectors": [{"matchLabels": {"team": "qa"}}]})
    )
    # The controller does not watch ACLs: it notices on its error backoff retry.
    obj = await settled(cluster, POLICIES, "denied", "kollie", ready="True")
    assert obj["status"]["latestRef"]["tag"] == "main-abc1234-1"


async def test_missing_repository_and_empty_database(cluster: SimCluster) -> None:
    cluster.apply_object(policy("orphan", "main"))
    c = condition(await settled(cluster, POLICIES, "orphan", ready="False"))
    assert (c["reason"], c["message"]) == (
        "DependencyNotReady",
        "failed to get the referred ImageRepository: referenced ImageRepository does not exist: "
        'imagerepositories.image.toolkit.fluxcd.io "web" not found',
    )
    cluster.apply_object(repository())
    repo = await settled(cluster, REPOS, "web", ready="False")
    c = condition(repo)
    assert c["reason"] == "ReadOperationFailed"
    assert c["message"] == (
        "scan failed: GET https://registry.example.com/v2/acme/web/tags/list?n=1000: NAME_UNKNOWN: "
        "repository name not known to registry; map[name:acme/web]"
    )
    c = condition(await settled(cluster, POLICIES, "orphan", ready="False"))
    assert (c["reason"], c["message"]) == (
        "DependencyNotReady",
        "retrying in 30s error: no tags in database",
    )


async def test_digest_reflection(cluster: SimCluster) -> None:
    registry = flux(cluster).registry
    first = registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(repository())
    cluster.apply_object(policy("never", "main"))
    cluster.apply_object(policy("once", "main", digestReflectionPolicy="IfNotPresent"))
    cluster.apply_object(policy("always", "main", digestReflectionPolicy="Always", interval="1m"))
    assert (
        "digest"
        not in (await settled(cluster, POLICIES, "never", ready="True"))["status"]["latestRef"]
    )
    once = await settled(cluster, POLICIES, "once", ready="True")
    assert once["status"]["latestRef"]["digest"] == first.digest
    assert condition(once)["message"].endswith(
        f"resolved to main-abc1234-1 with digest {first.digest}"
    )
    assert (await settled(cluster, POLICIES, "always", ready="True"))["status"]["latestRef"][
        "digest"
    ] == first.digest

    # The same tag pushed again: IfNotPresent keeps the digest it has, Always follows.
    moved = registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(
        {
            **policy("always", "main", digestReflectionPolicy="Always", interval="1m"),
            "metadata": {
                "name": "always",
                "namespace": "flux-system",
                "annotations": {"reconcile.fluxcd.io/requestedAt": "1"},
            },
        }
    )

    def refreshed() -> bool:
        obj = cluster.store.get(POLICIES, "flux-system", "always") or {}
        return bool(obj.get("status", {}).get("latestRef", {}).get("digest") == moved.digest)

    await eventually(refreshed, message="Always reflects the new digest")
    always = cluster.store.get(POLICIES, "flux-system", "always") or {}
    assert always["status"]["observedPreviousRef"] == {
        "name": IMAGE,
        "tag": "main-abc1234-1",
        "digest": first.digest,
    }

    # A tag gone from the registry since the last scan cannot be resolved to a digest.
    registry.delete_tag(IMAGE, "main-abc1234-1")
    cluster.apply_object(
        {
            **policy("always", "main", digestReflectionPolicy="Always", interval="1m"),
            "metadata": {
                "name": "always",
                "namespace": "flux-system",
                "annotations": {"reconcile.fluxcd.io/requestedAt": "2"},
            },
        }
    )

    def unresolved() -> dict[str, Any]:
        return condition(cluster.store.get(POLICIES, "flux-system", "always"))

    await eventually(lambda: unresolved().get("status") == "False", message="digest lookup fails")
    assert unresolved()["reason"] == "Failed"
    assert (
        "HEAD https://registry.example.com/v2/acme/web/manifests/main-abc1234-1: unexpected "
        "status code 404" in unresolved()["message"]
    )
    cluster.apply_object(
        {
            **policy("once", "main", digestReflectionPolicy="IfNotPresent"),
            "metadata": {
                "name": "once",
                "namespace": "flux-system",
                "annotations": {"reconcile.fluxcd.io/requestedAt": "1"},
            },
        }
    )
    await eventually(
        lambda: (
            (cluster.store.get(POLICIES, "flux-system", "once") or {})
            .get("status", {})
            .get("lastHandledReconcileAt")
            == "1"
        ),
        message="request handled",
    )
    assert (
        cluster.store.get(POLICIES, "flux-system", "once")["status"]["latestRef"]["digest"]
        == first.digest
    )  # type: ignore[index]


async def test_requested_at_rescans_and_the_policy_follows(cluster: SimCluster) -> None:
    registry = flux(cluster).registry
    registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(repository())
    cluster.apply_object(policy("main", "main"))
    await settled(cluster, POLICIES, "main", ready="True")
    registry.push(IMAGE, "main-abc1235-2")
    await eventually(lambda: True)  # let any (wrongly) triggered work run
    repo = cluster.store.get(REPOS, "flux-system", "web")
    assert repo is not None and repo["status"]["lastScanResult"]["tagCount"] == 1, (
        "a push is only seen at a scan"
    )

    cluster.apply_object(
        {
            **repository(),
            "metadata": {
                "name": "web",
                "namespace": "flux-system",
                "annotations": {"reconcile.fluxcd.io/requestedAt": "t1"},
            },
        }
    )

    def followed() -> dict[str, Any] | None:
        obj = cluster.store.get(POLICIES, "flux-system", "main") or {}
        return (
            obj
            if obj.get("status", {}).get("latestRef", {}).get("tag") == "main-abc1235-2"
            else None
        )

    obj = await eventually(followed, message="policy follows the new tag")
    repo = cluster.store.get(REPOS, "flux-system", "web")
    assert repo is not None and repo["status"]["lastHandledReconcileAt"] == "t1"
    assert repo["status"]["lastScanResult"]["tagCount"] == 2
    assert obj["status"]["observedPreviousRef"] == {"name": IMAGE, "tag": "main-abc1234-1"}
    assert condition(obj)["message"] == (
        f"Latest image tag for {IMAGE} resolved to main-abc1235-2 "
        f"(previously {IMAGE}:main-abc1234-1)"
    )


async def test_suspend_and_deletion(cluster: SimCluster) -> None:
    flux(cluster).registry.push(IMAGE, "main-abc1234-1")
    cluster.apply_object(repository())
    cluster.apply_object(policy("p", "main", suspend=True))
    await settled(cluster, REPOS, "web", ready="True")
    await eventually(
        lambda: (
            (cluster.store.get(POLICIES, "flux-system", "p") or {})
            .get("metadata", {})
            .get("finalizers")
        ),
        message="finalizer added",
    )
    assert cluster.store.get(POLICIES, "flux-system", "p")["status"] == {"observedGeneration": -1}  # type: ignore[index]
    for gr, name in ((POLICIES, "p"), (REPOS, "web")):
        rt = cluster.catalog.get(gr)
        assert rt is not None
        _, gone = cluster.api.delete(rt, "flux-system", name)
        assert not gone, "the finalizer holds the object until the controller lets go"

        def finalized(gr: tuple[str, str] = gr, name: str = name) -> bool:
            return cluster.store.get(gr, "flux-system", name) is None

        await eventually(finalized, message=f"{name} finalized")
