"""The simulated source-controller for Helm: HelmRepository indexes, the HelmCharts built from
them, and OCIRepository artifacts (a chart pushed with `helm push`), from the simulated chart
host and registry.

Conditions, reasons and messages as source-controller v1.7.4 writes them
(internal/controller/helmrepository_controller.go, helmchart_controller.go,
ocirepository_controller.go; internal/helm/chart/errors.go):

- HelmRepository: `Succeeded`, `stored artifact: revision 'sha256:<hex>'`; no index at the
  URL: `Failed`, `failed to fetch Helm repository index: failed to cache index to temporary
  file: failed to fetch <url>/index.yaml : 404 Not Found`;
- HelmChart: `ChartPullSucceeded`, `pulled '<chart>' chart with version '<version>'`; no such
  chart or version (Stalled): `InvalidChartReference`, `invalid chart reference: failed to get
  chart version for remote reference: no '<chart>' chart with version matching '<range>'
  found`; source missing: `SourceUnavailable`, `failed to get source:
  helmrepositories.source.toolkit.fluxcd.io "<name>" not found`; source without artifact:
  `NoSourceArtifact`, `no artifact available for HelmRepository source '<name>'`;
- OCIRepository: `Succeeded`, `stored artifact for digest '<tag>@sha256:<hex>'`; tag missing:
  `OCIPullFailed`, `failed to determine artifact digest: GET
  https://<host>/v2/<path>/manifests/<tag>: MANIFEST_UNKNOWN: manifest unknown;
  map[Tag:<tag>]`; no semver match: `ReadOperationFailed`, `failed to determine the artifact
  tag for '<url>': no match found for semver: <range>`.

Failures write the named condition (`FetchFailed`, and `Stalled` for a persistent one) with the
same reason, leave `Reconciling` True with `ProgressingWithRetry` (except when stalled) and do not
advance `observedGeneration` unless stalled. HelmCharts from a GitRepository or Bucket are not
simulated (they keep no status).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesim.errors import not_found
from kubesim.flux import conditions as cond
from kubesim.flux.charts import (
    ChartError,
    ChartHost,
    highest_tag,
    index_digest,
    normalise_url,
    oci_image,
    select_chart,
)
from kubesim.flux.controller import Result, Settings, object_key
from kubesim.flux.registry import InvalidReference, Registry, canonical_name, refused_error
from kubesim.flux.source import (
    FETCH_FAILED,
    GROUP,
    Artifact,
    ArtifactStorage,
    SourceController,
)
from kubesim.objects import ObjectApi

HELM_REPOSITORIES = (GROUP, "helmrepositories")


class HelmRepositoryController(SourceController):
    plural = "helmrepositories"
    kind = "HelmRepository"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, storage: ArtifactStorage, charts: ChartHost
    ) -> None:
        super().__init__(api, settings, storage=storage)
        self.charts = charts

    def reconcile(self, obj: dict[str, Any]) -> Result:
        started = self.begin(obj)
        if started is None:
            return Result()
        obj = started
        spec = obj.get("spec") or {}
        c = cond.Conditions(obj, self.now())
        c.progressing("reconciliation in progress")
        url = normalise_url(str(spec.get("url", "")))
        if spec.get("type") == "oci":
            # source-controller no longer reconciles OCI HelmRepositories: they only carry
            # the registry address for the HelmCharts that use them.
            self.write_status(obj, self.handled(obj, dict(obj.get("status") or {})))
            return Result()
        index = self.charts.index(url)
        if index is None:
            message = (
                "failed to fetch Helm repository index: failed to cache index to temporary "
                f"file: failed to fetch {url}/index.yaml : 404 Not Found"
            )
            return self.fetch_failed(obj, c, cond.FAILED, message)
        revision = index_digest(index)
        hex_digest = revision.split(":", 1)[1]
        artifact = self.artifact(
            obj, revision, f"index-{hex_digest}.yaml", Artifact(revision, {}, charts=index)
        )
        message = f"stored artifact: revision '{revision}'"
        return self.stored(
            obj, c, artifact, cond.SUCCEEDED, message, url=self.symlink(obj, "index.yaml")
        )

    def on_chart_push(self, url: str) -> None:
        """A chart published to a repository: its HelmRepositories look again now."""
        self.trigger_where(
            lambda o: normalise_url(str((o.get("spec") or {}).get("url", ""))) == url
        )


class HelmChartController(SourceController):
    plural = "helmcharts"
    kind = "HelmChart"

    def reconcile(self, obj: dict[str, Any]) -> Result:
        started = self.begin(obj)
        if started is None:
            return Result()
        obj = started
        spec = obj.get("spec") or {}
        ref = spec.get("sourceRef") or {}
        if ref.get("kind") != "HelmRepository":
            return Result()
        c = cond.Conditions(obj, self.now())
        c.progressing("reconciliation in progress")
        ns, _ = object_key(obj)
        repo_name = str(ref.get("name", ""))
        repo = self.api.store.get(HELM_REPOSITORIES, ns, repo_name)
        if repo is None:
            message = (
                f"failed to get source: {not_found('helmrepositories', GROUP, repo_name).message}"
            )
            return self.fetch_failed(obj, c, "SourceUnavailable", message)
        repo_artifact = (repo.get("status") or {}).get("artifact") or {}
        content = self.storage.get(str(repo_artifact.get("url", "")))
        if content is None or content.charts is None:
            message = f"no artifact available for HelmRepository source '{repo_name}'"
            c.mark_true(FETCH_FAILED, "NoSourceArtifact", message)
            c.mark_false(cond.READY, "NoSourceArtifact", message)
            status = dict(obj.get("status") or {})
            status["conditions"] = c.items()
            self.write_status(obj, self.handled(obj, status))
            return Result(after=self.settings.dependency_requeue)
        chart_name = str(spec.get("chart", ""))
        constraint = str(spec.get("version") or "*")
        try:
            chart = select_chart(content.charts, chart_name, constraint)
        except ChartError as e:
            message = (
                f"invalid chart reference: failed to get chart version for remote reference: {e}"
            )
            return self.stalled(obj, c, "InvalidChartReference", message)
        artifact = self.artifact(
            obj,
            chart.version,
            f"{chart.name}-{chart.version}.tgz",
            Artifact(chart.version, {}, chart=chart),
        )
        message = f"pulled '{chart.name}' chart with version '{chart.version}'"
        return self.stored(
            obj,
            c,
            artifact,
            "ChartPullSucceeded",
            message,
            observedChartName=chart.name,
            observedSourceArtifactRevision=repo_artifact.get("revision"),
            url=self.symlink(obj, "latest.tar.gz"),
        )

    def using_repository(self, repo: Mapping[str, Any]) -> Any:
        ns, name = object_key(repo)
        return lambda o: (
            o["metadata"].get("namespace") == ns
            and ((o.get("spec") or {}).get("sourceRef") or {}).get("name") == name
            and ((o.get("spec") or {}).get("sourceRef") or {}).get("kind") == "HelmRepository"
        )


class OCIRepositoryController(SourceController):
    plural = "ocirepositories"
    kind = "OCIRepository"

    def __init__(
        self,
        api: ObjectApi,
        settings: Settings,
        *,
        storage: ArtifactStorage,
        registry: Registry,
        charts: ChartHost,
    ) -> None:
        super().__init__(api, settings, storage=storage)
        self.registry = registry
        self.charts = charts

    def reconcile(self, obj: dict[str, Any]) -> Result:
        started = self.begin(obj)
        if started is None:
            return Result()
        obj = started
        spec = obj.get("spec") or {}
        c = cond.Conditions(obj, self.now())
        c.progressing("reconciliation in progress")
        url = str(spec.get("url", ""))
        try:
            image = canonical_name(oci_image(url))
        except (ValueError, InvalidReference) as e:
            message = f"URL validation failed for '{url}': {e}"
            return self.stalled(obj, c, "URLInvalid", message)
        ref = spec.get("ref") or {}
        host, _, path = image.partition("/")
        tags = self.registry.tags(image) or {}
        if ref.get("digest"):
            return Result()  # pinned digests are not simulated
        tag = str(ref.get("tag") or "latest")
        if ref.get("semver"):
            chosen = highest_tag(list(tags), str(ref["semver"]))
            if chosen is None:
                message = (
                    f"failed to determine the artifact tag for '{url}': "
                    f"no match found for semver: {ref['semver']}"
                )
                return self.fetch_failed(obj, c, "ReadOperationFailed", message)
            tag = chosen
        if self.registry.refuses(image):
            error = refused_error(image, "GET", f"manifests/{tag}")
            message = f"failed to determine artifact digest: {error}"
            return self.fetch_failed(obj, c, "OCIPullFailed", message)
        push = tags.get(tag)
        if push is None:
            message = (
                f"failed to determine artifact digest: GET https://{host}/v2/{path}/manifests/"
                f"{tag}: MANIFEST_UNKNOWN: manifest unknown; map[Tag:{tag}]"
            )
            return self.fetch_failed(obj, c, "OCIPullFailed", message)
        revision = f"{tag}@{push.digest}"
        hex_digest = push.digest.split(":", 1)[1]
        chart = self.charts.oci_chart(push.digest)
        artifact = self.artifact(
            obj, revision, f"{hex_digest}.tar.gz", Artifact(revision, {}, chart=chart)
        )
        message = f"stored artifact for digest '{revision}'"
        return self.stored(
            obj, c, artifact, cond.SUCCEEDED, message, url=self.symlink(obj, "latest.tar.gz")
        )

    def on_push(self, image: str) -> None:
        """A push to the registry: OCIRepositories of that image look again now (as a Receiver
        would make them)."""

        def follows(o: Mapping[str, Any]) -> bool:
            try:
                url = str((o.get("spec") or {}).get("url", ""))
                return canonical_name(oci_image(url)) == image
            except (ValueError, InvalidReference):
                return False

        self.trigger_where(follows)
