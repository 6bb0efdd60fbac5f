"""Parsers of the self-hosted and hub registries' webhook formats: Docker Hub, Harbor (both of
its payload formats), GitHub packages, Quay, CNCF Distribution, JFrog Artifactory, Sonatype
Nexus, and Kollie's own generic format.

Each turns one delivery into pushes and ignored items, with the delivery's own timestamp where
the format carries one (for the stale-delivery check), and raises only `PayloadError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kollie.pushes.model import (
    Parsed,
    PayloadError,
    instant,
    mapping,
    obj,
    split_reference,
    text,
)

NOT_IMAGES = (
    "helm",
    "chart",
    "application/vnd.cncf.helm",
    "octet-stream",
    "layer",
    "config.v1+json",
)
"""Media type fragments of artifacts that are no image manifests (charts, blobs, configs)."""


def generic(body: Any, headers: Mapping[str, str]) -> Parsed:
    """`{"repository", "tag", "digest"?, "timestamp"?}`; the timestamp (RFC 3339 or unix
    seconds) is signed with the rest of the body."""
    b = obj(body, "body")
    repository, tag = text(b.get("repository")), text(b.get("tag"))
    if not repository or not tag:
        raise PayloadError('generic deliveries need "repository" and "tag"')
    registry, path, _, _ = split_reference(repository)
    return Parsed().push(registry, path, tag, text(b.get("digest")), at=instant(b.get("timestamp")))


def dockerhub(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = obj(body, "body")
    push = obj(b.get("push_data"), "push_data")
    repo = obj(b.get("repository"), "repository")
    name = text(repo.get("repo_name"))
    if not name:
        raise PayloadError("repository.repo_name is missing")
    at = instant(push.get("pushed_at"))
    return Parsed().push("docker.io", name, text(push.get("tag")), None, at=at)


def harbor(body: Any, headers: Mapping[str, str]) -> Parsed:
    """Harbor's "Default" payload format, or its "CloudEvents" one (a structured CloudEvent
    `harbor.artifact.pushed` whose `data` holds `resources` and `repository`)."""
    b = obj(body, "body")
    if "specversion" in b:
        kind = text(b.get("type")) or ""
        if kind != "harbor.artifact.pushed":
            return Parsed().ignore("not a push", type=kind)
        return _harbor_artifacts(obj(b.get("data"), "data"), instant(b.get("time")))
    kind = text(b.get("type")) or ""
    if kind != "PUSH_ARTIFACT":
        return Parsed().ignore("not a push", type=kind)
    return _harbor_artifacts(obj(b.get("event_data"), "event_data"), instant(b.get("occur_at")))


def _harbor_artifacts(data: Mapping[str, Any], at: float | None) -> Parsed:
    repo = obj(data.get("repository"), "repository")
    full = text(repo.get("repo_full_name")) or ""
    resources = data.get("resources") or []
    if not isinstance(resources, list):
        raise PayloadError("resources must be a list")
    out = Parsed()
    for resource in resources:
        r = obj(resource, "resource")
        registry, path, _, _ = split_reference(text(r.get("resource_url")) or full)
        out.push(registry, full or path, text(r.get("tag")), text(r.get("digest")), at=at)
    return out


def ghcr(body: Any, headers: Mapping[str, str]) -> Parsed:
    event = headers.get("X-GitHub-Event", "package")
    if event == "ping":
        return Parsed().ignore("ping")
    b = obj(body, "body")
    if event not in ("package", "registry_package"):
        return Parsed().ignore("not a package event", event=event)
    if b.get("action") not in ("published", "updated"):
        return Parsed().ignore("not a publish", action=b.get("action"))
    package = obj(b.get("package") or b.get("registry_package"), "package")
    kind = str(package.get("package_type", "")).lower()
    if kind not in ("container", "docker"):  # "docker" is the older GitHub Packages registry
        return Parsed().ignore("not a container package", package_type=kind)
    version = obj(package.get("package_version"), "package.package_version")
    metadata = mapping(version.get("container_metadata"))
    tag = obj(metadata.get("tag") or {}, "container_metadata.tag")
    owner = obj(package.get("owner") or {}, "package.owner").get("login") or package.get(
        "namespace"
    )
    name = text(package.get("name"))
    if not name:
        raise PayloadError("package.name is missing")
    repository = f"{owner}/{name}" if isinstance(owner, str) and owner else name
    digest = text(tag.get("digest")) or text(version.get("version"))
    return Parsed().push("ghcr.io", repository.lower(), text(tag.get("name")), digest)


def quay(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = obj(body, "body")
    repository = text(b.get("repository"))
    if not repository:
        raise PayloadError("repository is missing")
    registry, _, _, _ = split_reference(text(b.get("docker_url")) or "")
    tags = b.get("updated_tags")
    if isinstance(tags, Mapping):  # early Quay sent {"<tag>": "<image id>"}
        tags = list(tags)
    if not isinstance(tags, list):
        return Parsed().ignore("no updated tags", repository=repository)
    out = Parsed()
    for tag in tags:
        out.push(registry or "quay.io", repository, text(tag), None)
    return out


def distribution(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = obj(body, "body")
    events = b.get("events")
    if not isinstance(events, list):
        raise PayloadError("events must be a list")
    out = Parsed()
    for raw in events:
        e = obj(raw, "event")
        target = obj(e.get("target") or {}, "event.target")
        if e.get("action") != "push":
            out.ignore("not a push", action=e.get("action"), repository=target.get("repository"))
            continue
        media = str(target.get("mediaType", "")).lower()
        if any(s in media for s in NOT_IMAGES):
            out.ignore(
                "not an image manifest", mediaType=media, repository=target.get("repository")
            )
            continue
        request = mapping(e.get("request"))
        out.push(
            text(request.get("host")),
            text(target.get("repository")) or "",
            text(target.get("tag")),
            text(target.get("digest")),
            at=instant(e.get("timestamp")),
        )
    return out


def artifactory(body: Any, headers: Mapping[str, str]) -> Parsed:
    """JFrog sends `{"domain", "event_type", "data": {...}}`; its docs show the data object alone
    (`repo_key`, `event_type`, `image_name`, `tag`, `sha256`), so both shapes are read."""
    b = obj(body, "body")
    data = obj(b.get("data"), "data") if "data" in b else b
    if b.get("domain", "docker") != "docker":
        return Parsed().ignore("not a docker event", domain=b.get("domain"))
    event_type = b.get("event_type") or data.get("event_type")
    if event_type != "pushed":
        return Parsed().ignore("not a push", event_type=event_type)
    digest = text(data.get("sha256"))
    return Parsed().push(
        None,
        text(data.get("image_name")) or "",
        text(data.get("tag")),
        f"sha256:{digest}" if digest and not digest.startswith("sha256:") else digest,
    )


def nexus(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = obj(body, "body")
    if "component" not in b:
        return Parsed().ignore("not a component event")
    if b.get("action") not in ("CREATED", "UPDATED"):
        return Parsed().ignore("not a push", action=b.get("action"))
    component = obj(b.get("component"), "component")
    if component.get("format") != "docker":
        return Parsed().ignore("not a docker component", format=component.get("format"))
    return Parsed().push(
        None,
        text(component.get("name")) or "",
        text(component.get("version")),
        None,
        at=instant(b.get("timestamp")),
    )
