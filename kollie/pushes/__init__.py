"""Registry webhook payloads → image pushes (DESIGN §5).

Each parser turns one delivery of one registry's format into the pushes it reports and the
items it ignores (pings, deletes, pulls, blob uploads, Helm charts, signatures, names that
cannot exist in a registry). Parsers are pure and total: any JSON value gives a result or a
`PayloadError`, never another exception. Formats follow each vendor's webhook documentation;
tests keep one fixture per documented example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kollie.pushes import clouds, registries
from kollie.pushes.model import (
    Parsed,
    PayloadError,
    Push,
    repository_problem,
    split_reference,
    tag_problem,
)

__all__ = [
    "PARSERS",
    "SOURCES",
    "Parsed",
    "PayloadError",
    "Push",
    "parse",
    "repository_problem",
    "split_reference",
    "tag_problem",
]

PARSERS: dict[str, Callable[[Any, Mapping[str, str]], Parsed]] = {
    "dockerhub": registries.dockerhub,
    "harbor": registries.harbor,
    "ghcr": registries.ghcr,
    "quay": registries.quay,
    "acr": clouds.acr,
    "gar": clouds.gar,
    "ecr": clouds.ecr,
    "distribution": registries.distribution,
    "artifactory": registries.artifactory,
    "nexus": registries.nexus,
    "cdevents": clouds.cdevents,
    "generic": registries.generic,
}
SOURCES = tuple(PARSERS)


def parse(source: str, body: Any, headers: Mapping[str, str]) -> Parsed:
    """Parse one delivery; PayloadError for malformed ones, never any other exception."""
    parser = PARSERS[source]
    try:
        return parser(body, headers)
    except PayloadError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PayloadError(f"malformed {source} delivery: {e}") from e
