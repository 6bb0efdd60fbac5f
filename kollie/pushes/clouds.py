"""Parsers of the cloud registries' and event systems' formats: Azure Container Registry (its
webhooks, and its Event Grid events in both Event Grid and CloudEvents schemas), Google Artifact
Registry through Pub/Sub, Amazon ECR through EventBridge or SNS, and CDEvents.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from kollie.pushes.model import (
    Parsed,
    PayloadError,
    instant,
    mapping,
    obj,
    split_reference,
    text,
)
from kollie.pushes.registries import NOT_IMAGES

_GRID_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
_ACR_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"


def acr(body: Any, headers: Mapping[str, str]) -> Parsed:
    """An ACR webhook (`{"action", "target", "request"}`), or Event Grid events of the registry
    (a list of events in the Event Grid or the CloudEvents schema, or one CloudEvent); each
    Event Grid event's `data` is shaped like the webhook. Event Grid's subscription handshake is
    answered with its validation code."""
    if isinstance(body, list):
        out = Parsed()
        for event in body:
            _grid_event(obj(event, "event"), out)
        return out
    b = obj(body, "body")
    if "specversion" in b or "eventType" in b:
        out = Parsed()
        _grid_event(b, out)
        return out
    return _acr_event(b, Parsed(), instant(b.get("timestamp")))


def _grid_event(event: Mapping[str, Any], out: Parsed) -> None:
    kind = text(event.get("eventType")) or text(event.get("type")) or ""
    data = mapping(event.get("data"))
    if kind == _GRID_VALIDATION:
        code = text(data.get("validationCode"))
        if code is None:
            raise PayloadError("a subscription validation event without data.validationCode")
        out.reply["validationResponse"] = code
        out.ignore("Event Grid subscription validation: answered with its code")
        return
    if kind != _ACR_PUSHED:
        out.ignore("not an image push", type=kind)
        return
    at = instant(data.get("timestamp")) or instant(event.get("eventTime") or event.get("time"))
    _acr_event(obj(event.get("data"), "data"), out, at)


def _acr_event(b: Mapping[str, Any], out: Parsed, at: float | None) -> Parsed:
    action = text(b.get("action")) or ""
    if action != "push":
        return out.ignore("not an image push", action=action)
    target = obj(b.get("target"), "target")
    if any(s in str(target.get("mediaType", "")).lower() for s in NOT_IMAGES):
        return out.ignore("not an image", mediaType=target.get("mediaType"))
    request = mapping(b.get("request"))
    return out.push(
        text(request.get("host")),
        text(target.get("repository")) or "",
        text(target.get("tag")),
        text(target.get("digest")),
        at=at,
    )


def gar(body: Any, headers: Mapping[str, str]) -> Parsed:
    """Artifact Registry's message, in a Pub/Sub push envelope or delivered unwrapped (then the
    publish time comes in a header, when the subscription writes metadata)."""
    b = obj(body, "body")
    if "message" in b:
        message = obj(b.get("message"), "message")
        try:
            data = json.loads(base64.b64decode(str(message.get("data", "")), validate=True))
        except (binascii.Error, ValueError) as e:
            raise PayloadError("message.data must be base64-encoded JSON") from e
        d = obj(data, "message.data")
        at = instant(message.get("publishTime") or message.get("publish_time"))
    elif "action" in b:  # a push subscription with payload unwrapping sends the message itself
        d = b
        at = instant(headers.get("X-Goog-Pubsub-Publish-Time"))
    else:
        raise PayloadError(
            'expected a Pub/Sub push envelope ("message") '
            'or an Artifact Registry message ("action")'
        )
    action = text(d.get("action")) or ""
    if action != "INSERT":
        return Parsed().ignore("not an insert", action=action)
    tag_ref = text(d.get("tag"))
    digest_ref = text(d.get("digest")) or ""
    if not tag_ref:
        _, path, _, digest = split_reference(digest_ref)
        return Parsed().ignore("untagged push", repository=path, digest=digest)
    registry, path, tag, _ = split_reference(tag_ref)
    _, _, _, digest = split_reference(digest_ref)
    return Parsed().push(registry, path, tag, digest, at=at)


def ecr(body: Any, headers: Mapping[str, str]) -> Parsed:
    b = obj(body, "body")
    if b.get("Type") == "SubscriptionConfirmation":
        return Parsed().ignore(
            "SNS subscription confirmation: confirm it in AWS, Kollie does not follow SubscribeURL"
        )
    sent = None
    if b.get("Type") == "Notification":
        sent = instant(b.get("Timestamp"))
        try:
            b = obj(json.loads(str(b.get("Message", ""))), "SNS Message")
        except ValueError as e:
            raise PayloadError("SNS Message is not JSON") from e
    if b.get("source") != "aws.ecr" or b.get("detail-type") != "ECR Image Action":
        return Parsed().ignore("not an ECR image action", detail_type=b.get("detail-type"))
    detail = obj(b.get("detail"), "detail")
    if detail.get("action-type") != "PUSH":
        return Parsed().ignore("not a push", action=detail.get("action-type"))
    if detail.get("result") != "SUCCESS":
        return Parsed().ignore("failed push", result=detail.get("result"))
    account, region = text(b.get("account")), text(b.get("region"))
    registry = f"{account}.dkr.ecr.{region}.amazonaws.com" if account and region else None
    return Parsed().push(
        registry,
        text(detail.get("repository-name")) or "",
        text(detail.get("image-tag")),
        text(detail.get("image-digest")),
        at=instant(b.get("time")) or sent,
    )


def cdevents(body: Any, headers: Mapping[str, str]) -> Parsed:
    """A CDEvent, sent as the body (CloudEvents binary mode) or as a structured CloudEvent's
    data."""
    b = obj(body, "body")
    sent = instant(headers.get("ce-time"))
    if "specversion" in b and "data" in b:
        sent = instant(b.get("time"))
        data = b["data"]
        try:
            b = obj(json.loads(data) if isinstance(data, str) else data, "data")
        except ValueError as e:
            raise PayloadError("the CloudEvent's data must be a CDEvent") from e
    context = obj(b.get("context"), "context")
    kind = str(context.get("type", ""))
    if not kind.startswith("dev.cdevents.artifact.published."):
        return Parsed().ignore("not artifact.published", type=kind)
    subject = obj(b.get("subject"), "subject")
    purl = text(subject.get("id")) or ""
    if not purl.startswith("pkg:oci/"):
        return Parsed().ignore("not an OCI artifact", id=purl)
    parts = urlsplit(purl[len("pkg:") :])
    query = parse_qs(parts.query)
    name, _, version = unquote(parts.path[len("oci/") :]).partition("@")
    registry, path = _oci_location(name, query.get("repository_url", [""])[0])
    tag = query.get("tag", [None])[0]
    at = instant(context.get("timestamp")) or sent
    return Parsed().push(registry, path, tag, version or None, at=at)


def _oci_location(name: str, repository_url: str) -> tuple[str | None, str]:
    """The purl-spec's repository_url ends with the artifact name; some producers give only the
    registry."""
    if not repository_url:
        return None, name
    location = repository_url.split("://", 1)[-1].rstrip("/")
    if location.rsplit("/", 1)[-1] != name:
        location = f"{location}/{name}"
    registry, path, _, _ = split_reference(location)
    return registry, path
