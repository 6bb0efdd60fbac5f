"""POST /webhooks/registry/<source>: verify, parse, answer at once, work in the background.

A delivery is answered within milliseconds with what was understood; the cluster work runs in
a bounded queue with retries. Identical pushes (repository, tag, digest) within a window, and
redelivered delivery ids, do the work once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from kollie.kube import KubeError
from kollie.naming import parse_tag
from kollie.operations import OperationError
from kollie.pushes import SOURCES, PayloadError, Push, parse
from kollie.pushhandler import PushHandler
from kollie.webhookconfig import secret_for
from web.bodies import read_body
from web.errors import ApiError
from web.metrics import Metrics
from web.state import services

log = structlog.get_logger("kollie.webhooks")
routes = web.RouteTableDef()
MAX_BODY = 1024 * 1024
DEDUPE_SECONDS = 600.0
QUEUE_SIZE = 1000


def _hmac(secret: str, body: bytes, algorithm: str) -> str:
    return hmac.new(secret.encode(), body, algorithm).hexdigest()


def verify(
    source: str, secret: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
) -> bool:
    """Check a delivery's credentials the way its registry sends them, in constant time."""

    def same(a: str, b: str) -> bool:
        return hmac.compare_digest(a.encode(), b.encode())

    if source == "generic":
        return same(headers.get("X-Signature", ""), "sha256=" + _hmac(secret, body, "sha256"))
    if source == "ghcr":
        return same(
            headers.get("X-Hub-Signature-256", ""), "sha256=" + _hmac(secret, body, "sha256")
        )
    if source == "nexus":
        return same(headers.get("X-Nexus-Webhook-Signature", ""), _hmac(secret, body, "sha1"))
    if source == "harbor":
        return same(headers.get("Authorization", ""), secret)
    if source == "artifactory":
        return same(headers.get("X-JFrog-Event-Auth", ""), secret)
    bearer = headers.get("Authorization", "")
    return same(bearer, f"Bearer {secret}") or same(query.get("token", ""), secret)


@dataclass
class PushQueue:
    """Bounded background work with deduplication and retries."""

    handler: PushHandler
    metrics: Metrics
    retries: int = 4
    queue: asyncio.Queue[Push] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    seen: OrderedDict[tuple[str, ...], float] = field(default_factory=OrderedDict)
    processed: int = 0

    def duplicate(self, key: tuple[str, ...]) -> bool:
        now = time.monotonic()
        while self.seen and next(iter(self.seen.values())) < now - DEDUPE_SECONDS:
            self.seen.popitem(last=False)
        if key in self.seen:
            return True
        self.seen[key] = now
        if len(self.seen) > 10_000:
            self.seen.popitem(last=False)
        return False

    def offer(self, push: Push) -> str:
        """'queued', 'duplicate' or 'overloaded'."""
        if self.duplicate(
            ("push", push.registry or "", push.repository, push.tag, push.digest or "")
        ):
            return "duplicate"
        try:
            self.queue.put_nowait(push)
        except asyncio.QueueFull:
            return "overloaded"
        return "queued"

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                for push in coalesce(batch):
                    await self._handle(push)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def drained(self) -> None:
        """Return once every push queued so far has been handled (or coalesced away)."""
        await self.queue.join()

    async def _handle(self, push: Push) -> None:
        for attempt in range(self.retries):
            try:
                outcome = await self.handler.handle(push)
                log.info(
                    "push_processed",
                    repository=push.repository,
                    tag=push.tag,
                    rescanned=outcome.rescanned,
                    environments=outcome.environments,
                    created=outcome.created,
                )
                break
            except (KubeError, OperationError) as e:
                log.warning(
                    "push_failed",
                    repository=push.repository,
                    tag=push.tag,
                    attempt=attempt + 1,
                    error=str(e),
                )
                await asyncio.sleep(0.5 * 2**attempt)
        self.processed += 1


def coalesce(pushes: list[Push]) -> list[Push]:
    """A burst of pushes does the work once per image and branch prefix: the newest tag wins
    (one rescan covers them all; environments follow the newest image anyway)."""
    newest: dict[tuple[str | None, str, str], Push] = {}
    for push in pushes:
        tag = parse_tag(push.tag)
        key = (push.registry, push.repository, tag.prefix if tag else push.tag)
        current = newest.get(key)
        current_tag = parse_tag(current.tag) if current else None
        if (
            current is None
            or (tag and current_tag and tag.timestamp >= current_tag.timestamp)
            or not tag
        ):
            newest[key] = push
    return list(newest.values())


QUEUE = web.AppKey("push_queue", PushQueue)


@routes.post("/webhooks/registry/{source}", name="webhook")
async def receive(request: web.Request) -> web.Response:
    s = services(request)
    source = request.match_info["source"]
    if source not in SOURCES:
        raise ApiError(
            404, "unknown_source", f"unknown registry {source!r}; known: {', '.join(SOURCES)}"
        )
    metrics = s.metrics.webhooks
    secret = secret_for(source, s.settings.webhook_secrets, s.settings.webhook_secret)
    try:
        body = await read_body(request, MAX_BODY)
    except ApiError as e:
        metrics.labels(source, e.code).inc()
        raise
    if secret is None and not s.demo:
        metrics.labels(source, "not_configured").inc()
        raise ApiError(
            503,
            "webhooks_disabled",
            f"set KOLLIE_WEBHOOK_SECRET, or a {source} line in KOLLIE_WEBHOOK_SECRETS_FILE, "
            f"to accept {source} webhooks",
        )
    if secret is not None and not verify(source, secret, request.headers, request.query, body):
        metrics.labels(source, "unauthorized").inc()
        log.warning("webhook_rejected", source=source, reason="bad or missing credentials")
        raise ApiError(401, "unauthorized", "the delivery's signature or token is missing or wrong")
    try:
        payload: Any = json.loads(body)
        parsed = parse(source, payload, request.headers)
    except (ValueError, RecursionError, PayloadError) as e:
        metrics.labels(source, "malformed").inc()
        raise ApiError(400, "bad_request", f"malformed {source} delivery: {e}") from e
    queue = request.app[QUEUE]
    delivery = request.headers.get("X-GitHub-Delivery") or request.headers.get("X-Request-Id")
    duplicate_delivery = bool(delivery) and queue.duplicate(("delivery", source, str(delivery)))
    pushes = []
    for push in parsed.pushes:
        state = "duplicate" if duplicate_delivery else queue.offer(push)
        pushes.append({**push.as_json(), "status": state})
    outcome = "push" if parsed.pushes else "ignored"
    metrics.labels(source, outcome).inc()
    log.info(
        "webhook_received",
        source=source,
        pushes=len(parsed.pushes),
        ignored=[i["reason"] for i in parsed.ignored],
    )
    if any(p["status"] == "overloaded" for p in pushes):
        return web.json_response(
            {
                "pushes": pushes,
                "ignored": parsed.ignored,
                "error": "overloaded",
                "message": "too many pushes queued; retry later",
            },
            status=503,
        )
    return web.json_response({"pushes": pushes, "ignored": parsed.ignored}, status=202)
