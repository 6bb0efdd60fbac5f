"""Render the chart with real Helm (the Helm v4 SDK behind `helm-python-sdk`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

CHART = Path(__file__).parents[2] / "chart"
RELEASE, NAMESPACE = "kollie", "kollie"

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def chart() -> Any:
    return helm.Chart.load(CHART)


def render_chart(
    chart: Any,
    values: dict[str, Any] | None = None,
    *,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
) -> tuple[list[dict[str, Any]], str]:
    """(manifests in template order, NOTES.txt) as `helm template` would produce them."""
    chart.validate_schema(chart.merge_values(values))
    rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
    notes = ""
    docs: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            notes = rendered[path]
            continue
        docs.extend(d for d in yaml.safe_load_all(rendered[path]) if d)
    return docs, notes


@pytest.fixture
def render(chart: Any) -> Render:
    def _render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return render_chart(chart, values, **kwargs)[0]

    return _render


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    )
    return found[0]
