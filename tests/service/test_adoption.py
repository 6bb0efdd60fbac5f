"""An environment never takes over an object Kollie did not make for it (outside security
review: any API token holder created the environment `kollie-catalog`, which server-side apply
wrote into the chart's catalog ConfigMap of that name, and deleting the environment deleted the
catalog; an environment's Kustomization or GitRepository copy took over the operator's objects
of the same name in the same way)."""

from __future__ import annotations

from typing import Any

from tests.service.conftest import Kollie

CM = ("", "configmaps")
KS = ("kustomize.toolkit.fluxcd.io", "kustomizations")
GIT = ("source.toolkit.fluxcd.io", "gitrepositories")


def _state(kollie: Kollie, gr: tuple[str, str], name: str) -> Any:
    """What an object is, apart from the status simulated Flux writes."""
    obj = kollie.cluster.store.get(gr, "kollie", name)
    assert obj is not None, name
    meta = obj["metadata"]
    return (obj.get("spec"), obj.get("data"), meta.get("labels"), meta.get("ownerReferences"))


def _operators(kollie: Kollie, obj: dict[str, Any], gr: tuple[str, str]) -> Any:
    """Put an object of the operator's (no Kollie labels) into Kollie's namespace."""
    obj["metadata"]["namespace"] = "kollie"
    kollie.cluster.apply_object(obj)
    return _state(kollie, gr, obj["metadata"]["name"])


async def test_an_environment_named_after_a_configmap_in_kollies_namespace_is_refused(
    kollie: Kollie,
) -> None:
    catalog = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kollie-catalog"},
        "data": {"catalog.yaml": "apps: {}"},
    }
    before = _operators(kollie, catalog, CM)
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/kollie-catalog", json={"apps": ["web"]}
    )
    assert (status, body["error"]) == (409, "name_taken"), body
    assert "ConfigMap kollie-catalog" in body["message"]
    status, body = await kollie.call("DELETE", "/api/v1/environments/kollie-catalog")
    assert status == 404, body
    assert _state(kollie, CM, "kollie-catalog") == before, "the catalog is untouched"


async def test_an_app_is_never_written_into_a_kustomization_of_someone_else(
    kollie: Kollie,
) -> None:
    theirs = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "team-web"},
        "spec": {
            "interval": "10m",
            "path": "./clusters/team",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform", "namespace": "flux-system"},
        },
    }
    before = _operators(kollie, theirs, KS)
    status, body = await kollie.call("PUT", "/api/v1/environments/team", json={"apps": ["web"]})
    assert (status, body["error"]) == (409, "name_taken"), body
    assert kollie.cluster.store.get(CM, "kollie", "team") is None, "nothing written"
    status, body = await kollie.call("PUT", "/api/v1/environments/team", json={"apps": ["api"]})
    assert status == 201, body
    status, body = await kollie.call("POST", "/api/v1/environments/team/apps", json={"name": "web"})
    assert (status, body["error"]) == (409, "name_taken"), body
    assert _state(kollie, KS, "team-web") == before


async def test_a_branch_copy_never_replaces_a_gitrepository_of_someone_else(
    kollie: Kollie,
) -> None:
    theirs = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "platform-hotfix"},
        "spec": {
            "interval": "1m",
            "url": "https://git.example.com/platform",
            "ref": {"branch": "main"},
        },
    }
    before = _operators(kollie, theirs, GIT)
    status, body = await kollie.call("PUT", "/api/v1/environments/hotfix", json={"apps": ["web"]})
    assert status == 201, body
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/hotfix/flux-branch", json={"branch": "evil"}
    )
    assert (status, body["error"]) == (409, "name_taken"), body
    assert _state(kollie, GIT, "platform-hotfix") == before
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/hotfix/flux-branch", json={"branch": None}
    )
    assert status == 200, body
    assert _state(kollie, GIT, "platform-hotfix") == before, "nor deletes it going back"
