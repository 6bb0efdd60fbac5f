"""What a HelmRelease needs before Helm runs, fetched as helm-controller v1.4.5 fetches it
(internal/controller/helmrelease_controller.go, internal/reconcile/helmchart_template.go;
fluxcd/pkg/chartutil values.go): the HelmChart it keeps for `spec.chart`, its chart source and
whether that source is ready, and its values."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import yaml

from kubesim.errors import ApiError, not_found
from kubesim.flux import conditions as cond
from kubesim.flux.charts import Chart, merge_values
from kubesim.flux.controller import object_key
from kubesim.objects import ObjectApi, WriteOptions

GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
HELM_CHARTS = (SOURCE_GROUP, "helmcharts")
SOURCES = {"HelmChart": "helmcharts", "OCIRepository": "ocirepositories"}


class ValuesError(Exception):
    """A `valuesFrom` reference that cannot be resolved (Ready reason `ValuesError`)."""


def chart_template(
    api: ObjectApi, obj: Mapping[str, Any], status: dict[str, Any], manager: str
) -> None:
    """HelmChartTemplate.Reconcile: server-side apply the HelmChart `<ns>-<name>` (in the
    source's namespace) for `spec.chart`, and delete the one of a HelmRelease that moved to
    `chartRef` or another namespace; `status.helmChart` names it."""
    spec = obj.get("spec") or {}
    ns, name = object_key(obj)
    template = spec.get("chart")
    wanted = ""
    if template:
        chart_spec = template.get("spec") or {}
        chart_ns = str((chart_spec.get("sourceRef") or {}).get("namespace") or ns)
        wanted = f"{chart_ns}/{ns}-{name}"
    if status.get("helmChart") and status["helmChart"] != wanted:
        delete_chart(api, status)
    rt = api.catalog.get(HELM_CHARTS)
    if not template or rt is None:
        return
    chart_spec = template.get("spec") or {}
    source = chart_spec.get("sourceRef") or {}
    wanted_spec = {
        "chart": chart_spec.get("chart"),
        "version": chart_spec.get("version"),
        "sourceRef": {"kind": source.get("kind"), "name": source.get("name")},
        "interval": chart_spec.get("interval") or spec.get("interval"),
        "reconcileStrategy": chart_spec.get("reconcileStrategy"),
        "valuesFiles": chart_spec.get("valuesFiles"),
        "ignoreMissingValuesFiles": chart_spec.get("ignoreMissingValuesFiles"),
    }
    meta = template.get("metadata") or {}
    chart_ns, _, chart_name = wanted.partition("/")
    labels = {**(meta.get("labels") or {}), f"{GROUP}/name": name, f"{GROUP}/namespace": ns}
    body = {
        "apiVersion": f"{SOURCE_GROUP}/v1",
        "kind": "HelmChart",
        "metadata": {
            "name": chart_name,
            "namespace": chart_ns,
            "labels": labels,
            **({"annotations": meta["annotations"]} if meta.get("annotations") else {}),
        },
        "spec": {k: v for k, v in wanted_spec.items() if v not in (None, "", [])},
    }
    api.patch(
        rt,
        "v1",
        chart_ns,
        chart_name,
        "application/apply-patch+yaml",
        json.dumps(body).encode(),
        WriteOptions(manager=manager, force=True),
    )
    status["helmChart"] = wanted


def delete_chart(api: ObjectApi, status: dict[str, Any]) -> None:
    ns, _, name = str(status.get("helmChart", "")).partition("/")
    rt = api.catalog.get(HELM_CHARTS)
    if rt is not None and api.store.get(rt.gr, ns, name) is not None:
        try:
            api.delete(rt, ns, name)
        except ApiError as e:
            if e.code != 404:
                raise
    status.pop("helmChart", None)


def source_of(
    api: ObjectApi, obj: Mapping[str, Any], status: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """getSource: the `chartRef` object, or the HelmChart of `status.helmChart`; else (None,
    the client's error)."""
    ref = (obj.get("spec") or {}).get("chartRef")
    if ref:
        kind = str(ref.get("kind", ""))
        ns = str(ref.get("namespace") or obj["metadata"]["namespace"])
        name = str(ref.get("name", ""))
    else:
        kind = "HelmChart"
        ns, _, name = str(status.get("helmChart") or "/").partition("/")
    plural = SOURCES.get(kind)
    if plural is None:
        return None, f"unsupported source kind '{kind}'"
    found = api.store.get((SOURCE_GROUP, plural), ns, name)
    if found is None:
        return None, not_found(plural, SOURCE_GROUP, name).message
    return found, ""


def source_not_ready(source: Mapping[str, Any]) -> str:
    """isReady: generation observed, not stalled, with an artifact; else why not."""
    status = source.get("status") or {}
    ns, name = object_key(source)
    where = f"{source.get('kind')} '{ns}/{name}' is not ready: "
    if source["metadata"].get("generation") != status.get("observedGeneration"):
        ready = cond.get(status.get("conditions"), cond.READY)
        if ready and ready.get("status") == "False":
            return where + str(ready.get("message", ""))
        return where + "latest generation of object has not been reconciled"
    stalled = cond.get(status.get("conditions"), cond.STALLED)
    if stalled and stalled.get("status") == "True":
        return where + str(stalled.get("message", ""))
    if not status.get("artifact"):
        return where + "does not have an artifact"
    return ""


def with_digest(chart: Chart, revision: str) -> tuple[Chart, str]:
    """mutateChartWithSourceRevision for OCI sources: the chart version gets the first 12 hex
    digits of the artifact digest as build metadata; returns the chart and the digest."""
    digest = revision.rpartition("@")[2]
    hex_digest = digest.partition(":")[2]
    if len(hex_digest) < 12:
        return chart, ""
    version = f"{chart.version.partition('+')[0]}+{hex_digest[:12]}"
    return Chart(chart.name, version, chart.app_version, chart.templates, chart.values), digest


def values_of(api: ObjectApi, obj: Mapping[str, Any]) -> dict[str, Any]:
    """ChartValuesFromReferences: `valuesFrom` in order, then `spec.values` on top; raises
    ValuesError with the reference's message."""
    ns = obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    result: dict[str, Any] = {}
    for ref in spec.get("valuesFrom") or []:
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        key = str(ref.get("valuesKey") or "values.yaml")
        optional = bool(ref.get("optional"))
        where = (
            f"could not resolve{' optional' if optional else ''} {kind} chart values "
            f"reference '{ns}/{name}' with key '{key}'"
        )
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}.get(kind, "")
        found = api.store.get(("", plural), ns, name) if plural else None
        data = None if found is None else (found.get("data") or {}).get(key)
        if data is None:
            if optional:
                continue
            reason = not_found(plural, "", name).message if found is None else "key not found"
            raise ValuesError(f"{where}: {reason}")
        text = base64.b64decode(data).decode() if kind == "Secret" else str(data)
        if ref.get("targetPath"):
            result = _set_path(result, str(ref["targetPath"]), text)
            continue
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ValuesError(f"{where}: failed to read values data") from e
        if isinstance(loaded, dict):
            result = merge_values(result, loaded)
    return merge_values(result, spec.get("values") or {})


def _set_path(values: dict[str, Any], path: str, text: str) -> dict[str, Any]:
    """`targetPath`: set one dotted path to the referenced text."""
    keys = path.split(".")
    out = dict(values)
    node = out
    for key in keys[:-1]:
        node[key] = dict(node[key]) if isinstance(node.get(key), dict) else {}
        node = node[key]
    node[keys[-1]] = text
    return out
