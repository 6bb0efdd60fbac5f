"""The example Flux objects in docs/examples/flux: valid against the Flux CRDs, the chart and
Kollie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import yaml

from kollie.catalog import parse_catalog
from kollie.uptime import initial
from kubesim import PACKAGED_CRDS, SimCluster
from kubesim.flux.substitution import substitute
from tests.chart.conftest import render_chart
from tests.conftest import SHARED_CRDS

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples" / "flux"
PLURALS = {"ImageRepository": "imagerepositories", "OCIRepository": "ocirepositories"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


async def test_flux_objects_validate_strictly_against_the_crds() -> None:
    crds = (
        sorted(SHARED_CRDS.glob("*.yaml"))
        if SHARED_CRDS.exists()
        else sorted(PACKAGED_CRDS.glob("*.yaml"))
    )
    objects = [
        d
        for f in ("imagerepository.yaml", "kollie-release.yaml")
        for d in _docs(EXAMPLES / f)
        if d["kind"] in PLURALS
    ]
    assert {o["kind"] for o in objects} == set(PLURALS)
    async with (
        SimCluster(crd_files=crds, flux=False, namespaces=["flux-system"]) as cluster,
        aiohttp.ClientSession(base_url=cluster.url) as http,
    ):
        for obj in objects:
            group, version = obj["apiVersion"].split("/")
            namespace, plural = obj["metadata"]["namespace"], PLURALS[obj["kind"]]
            path = f"/apis/{group}/{version}/namespaces/{namespace}/{plural}"
            async with http.post(path, json=obj, params={"fieldValidation": "Strict"}) as r:
                assert r.status == 201, (obj["kind"], await r.text())
                assert "Warning" not in r.headers


def test_image_repository_grants_the_kollie_namespace() -> None:
    (repo,) = _docs(EXAMPLES / "imagerepository.yaml")
    selectors = repo["spec"]["accessFrom"]["namespaceSelectors"]
    assert {"kubernetes.io/metadata.name": "kollie"} in [s["matchLabels"] for s in selectors]


def test_helm_release_values_are_accepted_by_the_chart(chart: Any) -> None:
    release = next(d for d in _docs(EXAMPLES / "kollie-release.yaml") if d["kind"] == "HelmRelease")
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["spec"]["chartRef"] == {"kind": "OCIRepository", "name": "kollie"}
    values = release["spec"]["values"]
    docs, _ = render_chart(chart, values, namespace=release["spec"]["targetNamespace"])
    catalog = parse_catalog(values["catalog"])
    assert set(catalog.apps) == {"web"}
    assert any(d["kind"] == "Ingress" for d in docs)


def test_app_base_builds_into_valid_objects_with_kollies_substitutions() -> None:
    from datetime import UTC, datetime

    kustomization = yaml.safe_load((EXAMPLES / "app-base" / "kustomization.yaml").read_text())
    uptime = initial(datetime(2026, 11, 24, 9, 0, tzinfo=UTC)).downscaler_value()
    variables = {
        "environment": "pr-42",
        "image_tag": "feature-x-abc1234-1900000000",
        "downscaler_uptime": uptime,
    }
    objects = []
    for name in kustomization["resources"]:
        text = substitute((EXAMPLES / "app-base" / name).read_text(), variables, strict=True)
        objects.extend(d for d in yaml.safe_load_all(text) if d)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "pr-42"
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["annotations"]["downscaler/uptime"] == uptime
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        ":feature-x-abc1234-1900000000"
    )
    ingress = next(o for o in objects if o["kind"] == "Ingress")
    assert ingress["metadata"]["labels"] == {
        "kollie.io/environment": "pr-42",
        "kollie.io/app": "web",
    }
