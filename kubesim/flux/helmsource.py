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

import hashlib
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
from kubesim.flux.controller import Controller, Result, Settings, object_key
from kubesim.flux.registry import InvalidReference, Registry, canonical_name, refused_error
from kubesim.flux.source import (
    ARTIFACT_IN_STORAGE,
    FETCH_FAILED,
    GROUP,
    STORAGE_HOST,
    Artifact,
    ArtifactStorage,
)
from kubesim.objects import ObjectApi

HELM_REPOSITORIES = (GROUP, "helmrepositories")


class SourceController(Controller):
    """What the Helm and OCI source controllers share: artifact storage and failure writes."""

    group = GROUP
    manager = "source-controller"

    def __init__(self, api: ObjectApi, settings: Settings, *, storage: ArtifactStorage) -> None:
        super().__init__(api, settings)
        self.storage = storage

    def begin(self, obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Deletion, finalizer and suspension: (object, None) to go on, or (object, status)
        when the reconcile is over."""
        if obj["metadata"].get("deletionTimestamp"):
            ns, name = object_key(obj)
            self.storage.remove_for(self.kind, ns, name)
            self.release(obj)
            return obj, {}
        obj = self.ensure_finalizer(obj)
        if (obj.get("spec") or {}).get("suspend"):
            self.suspended(obj)
            return obj, {}
        return obj, None

    def failed(
        self,
        obj: dict[str, Any],
        c: cond.Conditions,
        reason: str,
        message: str,
        *,
        stalled: bool = False,
        condition: str = FETCH_FAILED,
    ) -> Result:
        status = dict(obj.get("status") or {})
        c.mark_true(condition, reason, message)
        c.mark_false(cond.READY, reason, message)
        if stalled:
            c.mark_true(cond.STALLED, reason, message)
            c.delete(cond.RECONCILING)
            status["observedGeneration"] = obj["metadata"].get("generation")
        else:
            c.delete(cond.STALLED)
            c.retrying()
        status["conditions"] = c.items()
        self.write_status(obj, self.handled(obj, status))
        return Result() if stalled else Result(failed=True)

    def stored(
        self,
        obj: dict[str, Any],
        c: cond.Conditions,
        artifact: dict[str, Any],
        reason: str,
        message: str,
        **extra: Any,
    ) -> Result:
        status = dict(obj.get("status") or {})
        for failure in (FETCH_FAILED, "BuildFailed", "ArtifactOutdated", cond.STALLED):
            c.delete(failure)
        c.delete(cond.RECONCILING)
        c.mark_true(ARTIFACT_IN_STORAGE, reason, message)
        c.mark_true(cond.READY, reason, message)
        status.update(
            artifact=artifact,
            conditions=c.items(),
            observedGeneration=obj["metadata"].get("generation"),
            **extra,
        )
        self.write_status(obj, self.handled(obj, status))
        interval = cond.parse_duration((obj.get("spec") or {}).get("interval"), 600.0)
        return Result(after=interval)

    def artifact(
        self, obj: Mapping[str, Any], revision: str, filename: str, content: Artifact
    ) -> dict[str, Any]:
        """Store `content` and describe it as `status.artifact` (the current one if unchanged)."""
        ns, name = object_key(obj)
        current = (obj.get("status") or {}).get("artifact") or {}
        path = f"{self.kind.lower()}/{ns}/{name}/{filename}"
        url = f"{STORAGE_HOST}/{path}"
        self.storage.put(url, content)
        if current.get("revision") == revision and current.get("path") == path:
            return dict(current)
        data = f"{revision}\n{path}".encode()
        return {
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "lastUpdateTime": cond.rfc3339(self.now()),
            "path": path,
            "revision": revision,
            "size": len(data),
            "url": url,
        }

    def symlink(self, obj: Mapping[str, Any], name: str) -> str:
        ns, obj_name = object_key(obj)
        return f"{STORAGE_HOST}/{self.kind.lower()}/{ns}/{obj_name}/{name}"


class HelmRepositoryController(SourceController):
    plural = "helmrepositories"
    kind = "HelmRepository"

    def __init__(
        self, api: ObjectApi, settings: Settings, *, storage: ArtifactStorage, charts: ChartHost
    ) -> None:
        super().__init__(api, settings, storage=storage)
        self.charts = charts

    def reconcile(self, obj: dict[str, Any]) -> Result:
        obj, done = self.begin(obj)
        if done is not None:
            return Result()
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
            return self.failed(obj, c, cond.FAILED, message)
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
        obj, done = self.begin(obj)
        if done is not None:
            return Result()
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
            return self.failed(obj, c, "SourceUnavailable", message)
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
            return self.failed(obj, c, "InvalidChartReference", message, stalled=True)
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
        obj, done = self.begin(obj)
        if done is not None:
            return Result()
        spec = obj.get("spec") or {}
        c = cond.Conditions(obj, self.now())
        c.progressing("reconciliation in progress")
        url = str(spec.get("url", ""))
        try:
            image = canonical_name(oci_image(url))
        except (ValueError, InvalidReference) as e:
            message = f"URL validation failed for '{url}': {e}"
            return self.failed(obj, c, "URLInvalid", message, stalled=True)
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
                return self.failed(obj, c, "ReadOperationFailed", message)
            tag = chosen
        if self.registry.refuses(image):
            error = refused_error(image, "GET", f"manifests/{tag}")
            message = f"failed to determine artifact digest: {error}"
            return self.failed(obj, c, "OCIPullFailed", message)
        push = tags.get(tag)
        if push is None:
            message = (
                f"failed to determine artifact digest: GET https://{host}/v2/{path}/manifests/"
                f"{tag}: MANIFEST_UNKNOWN: manifest unknown; map[Tag:{tag}]"
            )
            return self.failed(obj, c, "OCIPullFailed", message)
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
