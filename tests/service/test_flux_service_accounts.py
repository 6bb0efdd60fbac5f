"""The catalog's `serviceAccountName` (per app, with a catalog default) reaches each app's
Kustomization, so kustomize-controller applies the app with that account's permissions only."""

from __future__ import annotations

from pathlib import Path

import yaml

from kollie.cli import DEMO_CATALOG
from kubesim import PACKAGED_CRDS, schema
from tests.service.conftest import StartKollie
from tests.service.test_environments import KS, SHARED_CRDS, crd_schema


async def test_kustomizations_name_the_catalogs_service_accounts(
    start_kollie: StartKollie, tmp_path: Path
) -> None:
    catalog = yaml.safe_load(DEMO_CATALOG.read_text())
    catalog["serviceAccountName"] = "kollie-apps"
    for app in catalog["apps"]:
        if app["name"] == "api":
            app["serviceAccountName"] = "api-deployer"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    kollie = await start_kollie(KOLLIE_CATALOG=str(path))
    status, body = await kollie.call(
        "PUT", "/api/v1/environments/pr-8", json={"apps": {"web": {}, "api": {}}}
    )
    assert status == 201, body
    store = kollie.cluster.store
    web, api = (store.get(KS, "kollie", f"pr-8-{app}") for app in ("web", "api"))
    assert web is not None and api is not None
    # The emulator prunes fields its Flux CRD schema does not know: these were accepted.
    assert web["spec"]["serviceAccountName"] == "kollie-apps"
    assert api["spec"]["serviceAccountName"] == "api-deployer"
    body = {k: v for k, v in api.items() if k != "status"}
    schemas = [crd_schema("Kustomization", PACKAGED_CRDS)]
    if SHARED_CRDS.exists():  # the CRDs the shared contracts name, where this checkout has them
        schemas.append(crd_schema("Kustomization"))
    for crd in schemas:
        result = schema.validate(crd, body)
        assert result.errors == [] and result.unknown_fields == [], result


async def test_without_one_the_controllers_default_applies(start_kollie: StartKollie) -> None:
    kollie = await start_kollie()
    status, body = await kollie.call("PUT", "/api/v1/environments/pr-9", json={"apps": {"api": {}}})
    assert status == 201, body
    kustomization = kollie.cluster.store.get(KS, "kollie", "pr-9-api")
    assert kustomization is not None and "serviceAccountName" not in kustomization["spec"]
