"""A simulated Helm chart host: HTTP chart repositories (an `index.yaml` per URL) and charts
pushed to the simulated registry as OCI artifacts (`oci://registry.example.com/charts/web`).

A chart is a name, a version, default values and its templates: YAML with the few Helm template
actions app charts use most (`{{ .Values.image.tag }}`, `{{ .Release.Name }}`,
`{{ .Release.Namespace }}`, `{{ .Chart.Name }}`, `{{ .Chart.Version }}`, `{{ .Chart.AppVersion }}`,
piped through `default "x"` or `quote`).  A missing value renders empty, as Helm renders it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
import yaml

from kubesim.flux.policies import InvalidPolicy, highest, parse_range, parse_version
from kubesim.flux.registry import Push, Registry

log = structlog.get_logger("kubesim.flux")

OCI_SCHEME = "oci://"
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_STRING = re.compile(r'^"((?:[^"\\]|\\.)*)"$')


class ChartError(Exception):
    """A chart reference the repository cannot satisfy, worded as source-controller words it."""


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    app_version: str = ""
    templates: str = ""
    """The chart's manifests: YAML text with Helm template actions (see the module docstring)."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """The chart's default values (its `values.yaml`)."""

    @property
    def digest(self) -> str:
        """`sha256:<hex>` of the packaged chart (stands for the `.tgz`)."""
        body = json.dumps(
            [self.name, self.version, self.app_version, self.templates, self.values],
            sort_keys=True,
        )
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "appVersion": self.app_version}


def normalise_url(url: str) -> str:
    """source-controller's `NormalizeURL` for HTTP repositories: no trailing slash."""
    return url.strip().rstrip("/")


def oci_image(url: str) -> str:
    """`oci://registry.example.com/charts/web` -> `registry.example.com/charts/web`."""
    if not url.startswith(OCI_SCHEME):
        raise ValueError(f"URL must be in format 'oci://<domain>/<org>/<repo>': {url}")
    return url[len(OCI_SCHEME) :].rstrip("/")


class ChartHost:
    """Chart repositories by URL, and charts by OCI digest; changes are announced by URL."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.repositories: dict[str, dict[str, dict[str, Chart]]] = {}
        """Repository URL -> chart name -> version -> chart."""
        self._oci: dict[str, Chart] = {}
        """Digest of a pushed OCI chart -> the chart."""
        self._subscribers: list[Callable[[str], None]] = []

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """`callback(url)` after a chart is added to an HTTP repository."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def add_chart(self, url: str, chart: Chart) -> None:
        """Publish `chart` in the HTTP repository at `url` (created if new)."""
        check_chart(chart)
        key = normalise_url(url)
        self.repositories.setdefault(key, {}).setdefault(chart.name, {})[chart.version] = chart
        for callback in list(self._subscribers):
            try:
                callback(key)
            except Exception:
                log.exception("charthost_subscriber_failed", url=key)

    def index(self, url: str) -> dict[str, dict[str, Chart]] | None:
        """The charts of the repository at `url`, or None when there is none."""
        found = self.repositories.get(normalise_url(url))
        return {name: dict(versions) for name, versions in found.items()} if found else None

    def push_oci(self, url: str, chart: Chart) -> Push:
        """Push `chart` as `<url>:<version>` to the registry (which a push webhook then sees)."""
        check_chart(chart)
        push = self.registry.push(oci_image(url), chart.version.replace("+", "_"))
        self._oci[push.digest] = chart
        return push

    def oci_chart(self, digest: str) -> Chart | None:
        return self._oci.get(digest)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "url": url,
                "charts": {
                    name: sorted(versions, key=_version_key, reverse=True)
                    for name, versions in sorted(charts.items())
                },
            }
            for url, charts in sorted(self.repositories.items())
        ]


def check_chart(chart: Chart) -> None:
    if not chart.name or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", chart.name):
        raise ValueError(f"chart name {chart.name!r}: lowercase letters, digits and '-'")
    if parse_version(chart.version) is None:
        raise ValueError(f"chart version {chart.version!r} is not a semantic version")
    try:
        list(yaml.safe_load_all(_ACTION.sub("x", chart.templates)))
    except yaml.YAMLError as e:
        raise ValueError(f"chart templates are not YAML: {e}") from e


def index_digest(charts: Mapping[str, Mapping[str, Chart]]) -> str:
    """The HelmRepository artifact revision: `sha256:` of the repository index."""
    entries = {
        name: sorted((c.version, c.app_version, c.digest) for c in versions.values())
        for name, versions in charts.items()
    }
    body = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def _version_key(version: str) -> Any:
    parsed = parse_version(version)
    return parsed.key() if parsed else (0, 0, 0, 0, ())


def select_chart(charts: Mapping[str, Mapping[str, Chart]], name: str, constraint: str) -> Chart:
    """`ChartRepository.GetChartVersion`: an exact version first, else the highest version the
    semver constraint allows (`*` or empty: the latest stable one); raises ChartError."""
    versions = charts.get(name)
    if versions is None:
        raise ChartError("no chart name found")
    if not versions:
        raise ChartError("no chart version found")
    if constraint in versions:
        return versions[constraint]
    try:
        allowed = parse_range(constraint if constraint not in ("", "*") else "*")
    except InvalidPolicy as e:
        raise ChartError(f"improper constraint: {constraint}") from e
    best: tuple[Any, Chart] | None = None
    for version, chart in versions.items():
        parsed = parse_version(version)
        if parsed is None or not allowed.allows(parsed):
            continue
        if best is None or parsed.key() > best[0]:
            best = (parsed.key(), chart)
    if best is None:
        raise ChartError(f"no '{name}' chart with version matching '{constraint}' found")
    return best[1]


def highest_tag(tags: list[str], constraint: str) -> str | None:
    """The tag an OCIRepository `ref.semver` picks (tags with `_` for `+`, as Helm pushes them)."""
    return highest(tags, constraint, as_version=lambda tag: tag.replace("_", "+"))


# ---------------------------------------------------------------- rendering
def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values: maps merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def render(
    chart: Chart, values: Mapping[str, Any], *, release: str, namespace: str, revision: int
) -> list[dict[str, Any]]:
    """The chart's objects for a release, each in the release namespace unless it names one."""
    scope = {
        "Values": merge_values(chart.values, values),
        "Release": {"Name": release, "Namespace": namespace, "Revision": revision},
        "Chart": {"Name": chart.name, "Version": chart.version, "AppVersion": chart.app_version},
    }
    text = _ACTION.sub(lambda m: _evaluate(m.group(1), scope), chart.templates)
    objects = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
    return objects


def _evaluate(action: str, scope: Mapping[str, Any]) -> str:
    stages = [s.strip() for s in action.split("|")]
    value = _lookup(stages[0], scope)
    for stage in stages[1:]:
        word, _, argument = stage.partition(" ")
        if word == "default" and value in (None, "", 0, False, [], {}):
            value = _literal(argument.strip(), scope)
        elif word == "quote":
            value = json.dumps("" if value is None else _text(value))
    return "" if value is None else _text(value)


def _lookup(path: str, scope: Mapping[str, Any]) -> Any:
    if _STRING.match(path) or not path.startswith("."):
        return _literal(path, scope)
    value: Any = scope
    for part in path.strip(".").split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _literal(text: str, scope: Mapping[str, Any]) -> Any:
    m = _STRING.match(text)
    if m:
        return json.loads(f'"{m.group(1)}"')
    if text.startswith("."):
        return _lookup(text, scope)
    return text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json.dumps(value)
    return str(value)
