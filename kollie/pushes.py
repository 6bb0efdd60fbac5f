"""Registry webhook payloads → image pushes (DESIGN §5).

Each parser turns one delivery of one registry's format into the pushes it reports and the
items it ignores (pings, deletes, pulls, blob uploads, Helm charts, signatures). Parsers are pure
and total: any JSON value gives a result or a `PayloadError`, never another exception.
Formats follow each vendor's webhook documentation; tests keep one fixture per documented example.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SOURCES = (
    "dockerhub",
    "harbor",
    "ghcr",
    "quay",
    "acr",
    "gar",
    "ecr",
    "distribution",
    "artifactory",
    "nexus",
    "cdevents",
    "generic",
)
_SIGNATURE_SUFFIXES = (".sig", ".att", ".sbom")
# Documentation examples shorten digests ("sha256:6ec128e26cd5..."); such values are not digests.
_DIGEST = re.compile(r"sha256:[0-9a-f]+")
_NOT_IMAGES = (
    "helm",
    "chart",
    "application/vnd.cncf.helm",
    "octet-stream",
    "layer",
    "config.v1+json",
)


class PayloadError(ValueError):
    """A delivery that is not valid for its source (the endpoint answers 400)."""


@dataclass(frozen=True)
class Push:
    registry: str | None
    repository: str
    tag: str
    digest: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Parsed:
    pushes: list[Push] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)

    def ignore(self, reason: str, **details: Any) -> Parsed:
        self.ignored.append({"reason": reason, **details})
        return self

    def push(
        self, registry: str | None, repository: str, tag: str | None, digest: str | None
    ) -> Parsed:
        repository = repository.strip("/")
        if not repository:
            return self.ignore("no repository")
        if not tag:
            return self.ignore("untagged push", repository=repository, digest=digest)
        if tag.endswith(_SIGNATURE_SUFFIXES):
            return self.ignore("signature or attestation", repository=repository, tag=tag)
        if digest is not None and not _DIGEST.fullmatch(digest):
            digest = None
        self.pushes.append(Push(registry or None, repository, tag, digest))
        return self


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{what} must be a JSON object")
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def split_reference(ref: str) -> tuple[str | None, str, str | None, str | None]:
    """`host/path:tag` or `host/path@digest` → (registry, repository, tag, digest)."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag, digest
    return None, ref, tag, digest


def generic(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    repository, tag = _str(b.get("repository")), _str(b.get("tag"))
    if not repository or not tag:
        raise PayloadError('generic deliveries need "repository" and "tag"')
    registry, path, _, _ = split_reference(repository)
    return Parsed().push(registry, path, tag, _str(b.get("digest")))


def dockerhub(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    push = _obj(b.get("push_data"), "push_data")
    repo = _obj(b.get("repository"), "repository")
    name = _str(repo.get("repo_name"))
    if not name:
        raise PayloadError("repository.repo_name is missing")
    return Parsed().push("docker.io", name, _str(push.get("tag")), None)


def harbor(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    kind = _str(b.get("type")) or ""
    if kind != "PUSH_ARTIFACT":
        return Parsed().ignore("not a push", type=kind)
    data = _obj(b.get("event_data"), "event_data")
    repo = _obj(data.get("repository"), "event_data.repository")
    full = _str(repo.get("repo_full_name")) or ""
    out = Parsed()
    for resource in data.get("resources") or []:
        r = _obj(resource, "resource")
        registry, path, _, _ = split_reference(_str(r.get("resource_url")) or full)
        out.push(registry, full or path, _str(r.get("tag")), _str(r.get("digest")))
    return out


def ghcr(body: Any, headers: Mapping[str, str]) -> Parsed:
    event = headers.get("X-GitHub-Event", "package")
    if event == "ping":
        return Parsed().ignore("ping")
    b = _obj(body, "body")
    if event not in ("package", "registry_package"):
        return Parsed().ignore("not a package event", event=event)
    if b.get("action") not in ("published", "updated"):
        return Parsed().ignore("not a publish", action=b.get("action"))
    package = _obj(b.get("package") or b.get("registry_package"), "package")
    kind = str(package.get("package_type", "")).lower()
    if kind not in ("container", "docker"):  # "docker" is the older GitHub Packages registry
        return Parsed().ignore("not a container package", package_type=kind)
    version = _obj(package.get("package_version"), "package.package_version")
    metadata = version.get("container_metadata") or {}
    tag = (
        _obj(metadata.get("tag") or {}, "container_metadata.tag")
        if isinstance(metadata, Mapping)
        else {}
    )
    owner = _obj(package.get("owner") or {}, "package.owner").get("login") or package.get(
        "namespace"
    )
    name = _str(package.get("name"))
    if not name:
        raise PayloadError("package.name is missing")
    repository = f"{owner}/{name}" if owner else name
    digest = _str(tag.get("digest")) or _str(version.get("version"))
    return Parsed().push("ghcr.io", repository.lower(), _str(tag.get("name")), digest)


def quay(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    repository = _str(b.get("repository"))
    if not repository:
        raise PayloadError("repository is missing")
    registry, _, _, _ = split_reference(_str(b.get("docker_url")) or "")
    tags = b.get("updated_tags")
    if isinstance(tags, Mapping):  # early Quay sent {"<tag>": "<image id>"}
        tags = list(tags)
    if not isinstance(tags, list):
        return Parsed().ignore("no updated tags", repository=repository)
    out = Parsed()
    for tag in tags:
        out.push(registry or "quay.io", repository, _str(tag), None)
    return out


def acr(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    action = _str(b.get("action")) or ""
    if action != "push":
        return Parsed().ignore("not an image push", action=action)
    target = _obj(b.get("target"), "target")
    if any(s in str(target.get("mediaType", "")).lower() for s in _NOT_IMAGES):
        return Parsed().ignore("not an image", mediaType=target.get("mediaType"))
    request = _mapping(b.get("request"))
    return Parsed().push(
        _str(request.get("host")),
        _str(target.get("repository")) or "",
        _str(target.get("tag")),
        _str(target.get("digest")),
    )


def gar(body: Any, headers: Mapping[str, str]) -> Parsed:
    """Artifact Registry's message, in a Pub/Sub push envelope or delivered unwrapped."""
    b = _obj(body, "body")
    if "message" in b:
        message = _obj(b.get("message"), "message")
        try:
            data = json.loads(base64.b64decode(str(message.get("data", "")), validate=True))
        except (binascii.Error, ValueError) as e:
            raise PayloadError("message.data must be base64-encoded JSON") from e
        d = _obj(data, "message.data")
    elif "action" in b:  # a push subscription with payload unwrapping sends the message itself
        d = b
    else:
        raise PayloadError(
            'expected a Pub/Sub push envelope ("message") or an Artifact Registry message ("action")'
        )
    action = _str(d.get("action")) or ""
    if action != "INSERT":
        return Parsed().ignore("not an insert", action=action)
    tag_ref = _str(d.get("tag"))
    digest_ref = _str(d.get("digest")) or ""
    if not tag_ref:
        _, path, _, digest = split_reference(digest_ref)
        return Parsed().ignore("untagged push", repository=path, digest=digest)
    registry, path, tag, _ = split_reference(tag_ref)
    _, _, _, digest = split_reference(digest_ref)
    return Parsed().push(registry, path, tag, digest)


def ecr(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    if b.get("Type") == "SubscriptionConfirmation":
        return Parsed().ignore(
            "SNS subscription confirmation: confirm it in AWS, Kollie does not follow SubscribeURL"
        )
    if b.get("Type") == "Notification":
        try:
            b = _obj(json.loads(str(b.get("Message", ""))), "SNS Message")
        except ValueError as e:
            raise PayloadError("SNS Message is not JSON") from e
    if b.get("source") != "aws.ecr" or b.get("detail-type") != "ECR Image Action":
        return Parsed().ignore("not an ECR image action", detail_type=b.get("detail-type"))
    detail = _obj(b.get("detail"), "detail")
    if detail.get("action-type") != "PUSH":
        return Parsed().ignore("not a push", action=detail.get("action-type"))
    if detail.get("result") != "SUCCESS":
        return Parsed().ignore("failed push", result=detail.get("result"))
    registry = (
        f"{b.get('account')}.dkr.ecr.{b.get('region')}.amazonaws.com" if b.get("account") else None
    )
    return Parsed().push(
        registry,
        _str(detail.get("repository-name")) or "",
        _str(detail.get("image-tag")),
        _str(detail.get("image-digest")),
    )


def distribution(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    events = b.get("events")
    if not isinstance(events, list):
        raise PayloadError("events must be a list")
    out = Parsed()
    for raw in events:
        e = _obj(raw, "event")
        target = _obj(e.get("target") or {}, "event.target")
        if e.get("action") != "push":
            out.ignore("not a push", action=e.get("action"), repository=target.get("repository"))
            continue
        media = str(target.get("mediaType", "")).lower()
        if any(s in media for s in _NOT_IMAGES):
            out.ignore(
                "not an image manifest", mediaType=media, repository=target.get("repository")
            )
            continue
        request = _mapping(e.get("request"))
        out.push(
            _str(request.get("host")),
            _str(target.get("repository")) or "",
            _str(target.get("tag")),
            _str(target.get("digest")),
        )
    return out


def artifactory(body: Any, headers: Mapping[str, str]) -> Parsed:
    """JFrog sends `{"domain", "event_type", "data": {...}}`; its docs show the data object alone
    (`repo_key`, `event_type`, `image_name`, `tag`, `sha256`), so both shapes are read."""
    b = _obj(body, "body")
    data = _obj(b.get("data"), "data") if "data" in b else b
    if b.get("domain", "docker") != "docker":
        return Parsed().ignore("not a docker event", domain=b.get("domain"))
    event_type = b.get("event_type") or data.get("event_type")
    if event_type != "pushed":
        return Parsed().ignore("not a push", event_type=event_type)
    digest = _str(data.get("sha256"))
    return Parsed().push(
        None,
        _str(data.get("image_name")) or "",
        _str(data.get("tag")),
        f"sha256:{digest}" if digest and not digest.startswith("sha256:") else digest,
    )


def nexus(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = _obj(body, "body")
    if "component" not in b:
        return Parsed().ignore("not a component event")
    if b.get("action") not in ("CREATED", "UPDATED"):
        return Parsed().ignore("not a push", action=b.get("action"))
    component = _obj(b.get("component"), "component")
    if component.get("format") != "docker":
        return Parsed().ignore("not a docker component", format=component.get("format"))
    return Parsed().push(
        None, _str(component.get("name")) or "", _str(component.get("version")), None
    )


def cdevents(body: Any, headers: Mapping[str, str]) -> Parsed:
    """A CDEvent, sent as the body (CloudEvents binary mode) or as a structured CloudEvent's data."""
    b = _obj(body, "body")
    if "specversion" in b and "data" in b:
        data = b["data"]
        try:
            b = _obj(json.loads(data) if isinstance(data, str) else data, "data")
        except ValueError as e:
            raise PayloadError("the CloudEvent's data must be a CDEvent") from e
    context = _obj(b.get("context"), "context")
    kind = str(context.get("type", ""))
    if not kind.startswith("dev.cdevents.artifact.published."):
        return Parsed().ignore("not artifact.published", type=kind)
    subject = _obj(b.get("subject"), "subject")
    purl = _str(subject.get("id")) or ""
    if not purl.startswith("pkg:oci/"):
        return Parsed().ignore("not an OCI artifact", id=purl)
    parts = urlsplit(purl[len("pkg:") :])
    query = parse_qs(parts.query)
    name, _, version = unquote(parts.path[len("oci/") :]).partition("@")
    registry, path = _oci_location(name, query.get("repository_url", [""])[0])
    tag = query.get("tag", [None])[0]
    return Parsed().push(registry, path, tag, version or None)


def _oci_location(name: str, repository_url: str) -> tuple[str | None, str]:
    """The purl-spec's repository_url ends with the artifact name; some producers give only the registry."""
    if not repository_url:
        return None, name
    location = repository_url.split("://", 1)[-1].rstrip("/")
    if location.rsplit("/", 1)[-1] != name:
        location = f"{location}/{name}"
    registry, path, _, _ = split_reference(location)
    return registry, path


PARSERS: dict[str, Callable[[Any, Mapping[str, str]], Parsed]] = {
    "dockerhub": dockerhub,
    "harbor": harbor,
    "ghcr": ghcr,
    "quay": quay,
    "acr": acr,
    "gar": gar,
    "ecr": ecr,
    "distribution": distribution,
    "artifactory": artifactory,
    "nexus": nexus,
    "cdevents": cdevents,
    "generic": generic,
}


def parse(source: str, body: Any, headers: Mapping[str, str]) -> Parsed:
    """Parse one delivery; PayloadError for malformed ones, never any other exception."""
    parser = PARSERS[source]
    try:
        return parser(body, headers)
    except PayloadError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PayloadError(f"malformed {source} delivery: {e}") from e
