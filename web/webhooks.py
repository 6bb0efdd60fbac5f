"""POST /webhooks/registry/<source>: admit, read, verify, parse, act, then answer.

A delivery is answered only once its pushes' effects are in the cluster (kollie.pushwork):
200 lists what was done; a push the cluster could not take in time is answered 503 with
`Retry-After`, so the sender may deliver again (a redelivery of work done meanwhile is answered
as a duplicate). Nothing is queued in memory, so stopping or killing a replica loses no
acknowledged push. Deliveries whose own timestamp is older than `KOLLIE_WEBHOOK_MAX_AGE` are
answered 2xx and ignored with the reason (a stale delivery is retried by some senders until it
succeeds, and must not block the ones behind it).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import web

from kollie.pushes import SOURCES, Parsed, PayloadError, Push, parse
from kollie.pushwork import PushResult, PushWork
from kollie.webhookconfig import MAX_CLOCK_SKEW, secret_for
from web.bodies import read_body
from web.errors import RETRY_AFTER_SECONDS, ApiError
from web.state import Services, services
from web.webhookauth import bearer_or_token, verify
from web.webhooklimits import SourceLimits

log = structlog.get_logger("kollie.webhooks")
routes = web.RouteTableDef()
MAX_BODY = 1024 * 1024


@dataclass
class Receiver:
    """What the webhook endpoint keeps between deliveries."""

    work: PushWork
    limits: SourceLimits = field(default_factory=SourceLimits)
    work_seconds: float = 2.5
    """How long a delivery waits for its pushes' cluster work before it is answered 503.
    Below the shortest sender timeout (Harbor's default is 3 s)."""
    body_seconds: float = 10.0
    """How long a delivery's body may take to arrive (slow senders are answered 408)."""


RECEIVER = web.AppKey("webhook_receiver", Receiver)


def _source(request: web.Request) -> str:
    source = request.match_info["source"]
    if source not in SOURCES:
        raise ApiError(
            404, "unknown_source", f"unknown registry {source!r}; known: {', '.join(SOURCES)}"
        )
    return source


def _secret(s: Services, source: str) -> str | None:
    secret = secret_for(source, s.settings.webhook_secrets, s.settings.webhook_secret)
    if secret is None and not s.demo:
        s.metrics.webhooks.labels(source, "not_configured").inc()
        raise ApiError(
            503,
            "webhooks_disabled",
            f"set KOLLIE_WEBHOOK_SECRET, or a {source} line in KOLLIE_WEBHOOK_SECRETS_FILE, "
            f"to accept {source} webhooks",
        )
    return secret


@routes.post("/webhooks/registry/{source}", name="webhook")
async def receive(request: web.Request) -> web.Response:
    s = services(request)
    source = _source(request)
    secret = _secret(s, source)
    receiver = request.app[RECEIVER]
    metrics = s.metrics.webhooks
    try:
        async with receiver.limits.admit(source):
            body = await _read(request, receiver)
            if secret is not None and not verify(
                source, secret, request.headers, request.query, body
            ):
                metrics.labels(source, "unauthorized").inc()
                log.warning("webhook_rejected", source=source, reason="bad or missing credentials")
                raise ApiError(
                    401, "unauthorized", "the delivery's signature or token is missing or wrong"
                )
            parsed = _parse(source, body, request)
            fresh = _drop_stale(s, parsed)
            results = await _perform(receiver, fresh)
    except ApiError as e:
        if e.status == 413:
            metrics.labels(source, "too_large").inc()
        elif e.status == 429:
            metrics.labels(source, "busy").inc()
        raise
    return _answer(s, source, parsed, fresh, results)


async def _perform(receiver: Receiver, pushes: list[Push]) -> list[PushResult]:
    """Each push's work, all under one deadline (most deliveries carry one push)."""
    deadline = asyncio.get_running_loop().time() + receiver.work_seconds
    if len(pushes) == 1:
        return [await receiver.work.perform(pushes[0], deadline=deadline)]
    return list(
        await asyncio.gather(*(receiver.work.perform(p, deadline=deadline) for p in pushes))
    )


async def _read(request: web.Request, receiver: Receiver) -> bytes:
    return await read_body(request, MAX_BODY, seconds=receiver.body_seconds)


def _parse(source: str, body: bytes, request: web.Request) -> Parsed:
    try:
        payload: Any = json.loads(body)
        return parse(source, payload, request.headers)
    except (ValueError, RecursionError, PayloadError) as e:
        services(request).metrics.webhooks.labels(source, "malformed").inc()
        raise ApiError(400, "bad_request", f"malformed {source} delivery: {e}") from e


def _drop_stale(s: Services, parsed: Parsed) -> list[Push]:
    """The pushes recent enough to act on; the others join `parsed.ignored` with the reason."""
    if all(p.pushed_at is None for p in parsed.pushes):
        return parsed.pushes
    max_age = s.settings.webhook_max_age_seconds
    now = s.clock().timestamp()
    fresh = []
    for push in parsed.pushes:
        at = push.pushed_at
        if at is not None and at > now + MAX_CLOCK_SKEW:
            parsed.ignore("timestamp in the future", **push.as_json(), sentAt=at)
        elif at is not None and max_age and now - at > max_age:
            reason = (
                f"stale delivery: sent {int(now - at)}s ago, more than KOLLIE_WEBHOOK_MAX_AGE "
                f"({max_age}s) allows"
            )
            log.warning("webhook_stale", repository=push.repository, tag=push.tag, age=now - at)
            parsed.ignore(reason, **push.as_json())
        else:
            fresh.append(push)
    return fresh


def _answer(
    s: Services, source: str, parsed: Parsed, pushes: list[Push], results: list[PushResult]
) -> web.Response:
    items = []
    for push, result in zip(pushes, results, strict=True):
        item: dict[str, Any] = {**push.as_json(), "status": result.status}
        if result.outcome is not None:
            item.update(result.outcome.as_json())
        if result.error is not None:
            item["error"] = result.error
        items.append(item)
    answer: dict[str, Any] = {"pushes": items, "ignored": parsed.ignored, **parsed.reply}
    done = all(r.acknowledged for r in results)
    s.metrics.webhooks.labels(source, "push" if items else "ignored").inc()
    log.info(
        "webhook_received",
        source=source,
        pushes=[(p.repository, p.tag, r.status) for p, r in zip(pushes, results, strict=True)],
        ignored=[i["reason"] for i in parsed.ignored],
    )
    if done:
        # 202 as the webhook contract has always answered (DESIGN §5; the work is done by now
        # and the body says what); a subscription handshake's reply is 200, as its sender asks.
        return _json(answer, 200 if parsed.reply else 202)
    s.metrics.webhooks.labels(source, "retry").inc()
    message = "; ".join(
        f"{p.repository}:{p.tag}: {r.error}"
        for p, r in zip(pushes, results, strict=True)
        if not r.acknowledged
    )
    return _json(
        {"error": "not_done", "message": f"retry the delivery: {message}", **answer},
        503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


@routes.options("/webhooks/registry/{source}")
async def handshake(request: web.Request) -> web.Response:
    """The CloudEvents webhook validation handshake (Event Grid in the CloudEvents schema, and
    other CloudEvents senders): allowed for a caller that shows the source's secret."""
    s = services(request)
    source = _source(request)
    secret = _secret(s, source)
    origin = request.headers.get("WebHook-Request-Origin")
    if origin is None:
        return web.Response(status=204, headers={"Allow": "POST, OPTIONS"})
    if secret is not None and not bearer_or_token(secret, request.headers, request.query):
        raise ApiError(401, "unauthorized", "the handshake's token is missing or wrong")
    return web.Response(
        status=200,
        headers={"WebHook-Allowed-Origin": origin, "Allow": "POST, OPTIONS"},
    )
