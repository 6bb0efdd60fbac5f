"""Webhook deliveries from the simulated registry, in each real registry's format.

With a target configured (`PUT /sim/registry/webhooks`), every push to the simulated registry
is POSTed to the target as the chosen registry would send it, signed the way that registry
signs. Written from the registries' documented formats, independently of any receiver.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import web

log = structlog.get_logger("kubesim.webhooks")

Body = dict[str, Any]


def _split(image: str) -> tuple[str, str]:
    host, _, path = image.partition("/")
    return host, path


def _generic(image: str, tag: str, digest: str) -> Body:
    return {"repository": image, "tag": tag, "digest": digest}


def _dockerhub(image: str, tag: str, digest: str) -> Body:
    _, path = _split(image)
    namespace, _, name = path.rpartition("/")
    return {
        "callback_url": "https://registry.hub.docker.com/u/callback",
        "push_data": {"pushed_at": int(time.time()), "pusher": "ci", "tag": tag},
        "repository": {"repo_name": path, "namespace": namespace, "name": name, "status": "Active"},
    }


def _harbor(image: str, tag: str, digest: str) -> Body:
    _, path = _split(image)
    namespace, _, name = path.rpartition("/")
    return {
        "type": "PUSH_ARTIFACT",
        "occur_at": int(time.time()),
        "operator": "ci",
        "event_data": {
            "resources": [{"digest": digest, "tag": tag, "resource_url": f"{image}:{tag}"}],
            "repository": {
                "date_created": int(time.time()),
                "name": name,
                "namespace": namespace,
                "repo_full_name": path,
                "repo_type": "private",
            },
        },
    }


def _ghcr(image: str, tag: str, digest: str) -> Body:
    _, path = _split(image)
    owner, _, name = path.partition("/")
    return {
        "action": "published",
        "package": {
            "name": name,
            "namespace": owner,
            "package_type": "CONTAINER",
            "owner": {"login": owner},
            "package_version": {
                "version": digest,
                "container_metadata": {"tag": {"name": tag, "digest": digest}},
                "package_url": f"ghcr.io/{path}:{tag}",
            },
        },
        "registry": {"url": "https://ghcr.io"},
    }


def _quay(image: str, tag: str, digest: str) -> Body:
    host, path = _split(image)
    namespace, _, name = path.partition("/")
    return {
        "repository": path,
        "namespace": namespace,
        "name": name,
        "docker_url": image,
        "homepage": f"https://{host}/repository/{path}",
        "updated_tags": [tag],
    }


def _acr(image: str, tag: str, digest: str) -> Body:
    host, path = _split(image)
    return {
        "id": digest[7:19],
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "action": "push",
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 524,
            "digest": digest,
            "length": 524,
            "repository": path,
            "tag": tag,
        },
        "request": {"id": "1", "host": host, "method": "PUT", "useragent": "docker/24"},
    }


def _gar(image: str, tag: str, digest: str) -> Body:
    data = {"action": "INSERT", "digest": f"{image}@{digest}", "tag": f"{image}:{tag}"}
    return {
        "message": {
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "messageId": "1",
            "publishTime": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "subscription": "projects/demo/subscriptions/kollie",
    }


def _ecr(image: str, tag: str, digest: str) -> Body:
    _, path = _split(image)
    return {
        "version": "0",
        "id": "1",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": path,
            "image-digest": digest,
            "action-type": "PUSH",
            "image-tag": tag,
        },
    }


def _distribution(image: str, tag: str, digest: str) -> Body:
    host, path = _split(image)
    manifest = {
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "repository": path,
            "url": f"https://{host}/v2/{path}/manifests/{digest}",
            "tag": tag,
        },
        "request": {"host": host},
    }
    blob = {
        "action": "push",
        "target": {"mediaType": "application/octet-stream", "digest": digest, "repository": path},
        "request": {"host": host},
    }
    return {"events": [blob, manifest]}


def _artifactory(image: str, tag: str, digest: str) -> Body:
    _, path = _split(image)
    return {
        "domain": "docker",
        "event_type": "pushed",
        "data": {
            "repo_key": "docker-local",
            "path": f"{path}/{tag}/manifest.json",
            "name": "manifest.json",
            "sha256": digest.removeprefix("sha256:"),
            "size": 524,
            "image_name": path,
            "tag": tag,
        },
    }


def _nexus(image: str, tag: str, digest: str) -> Body:
    _, path = _split(image)
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "nodeId": "node",
        "initiator": "ci",
        "repositoryName": "docker-hosted",
        "action": "CREATED",
        "component": {
            "id": "1",
            "componentId": "1",
            "format": "docker",
            "name": path,
            "version": tag,
        },
    }


def _cdevents(image: str, tag: str, digest: str) -> Body:
    name = image.rsplit("/", 1)[-1]
    purl = f"pkg:oci/{name}@{quote(digest)}?repository_url={image}&tag={tag}"
    return {
        "context": {
            "version": "0.4.1",
            "id": digest[7:19],
            "source": "/ci",
            "type": "dev.cdevents.artifact.published.0.1.1",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "subject": {"id": purl, "source": "/ci", "content": {}},
    }


FORMATS: dict[str, Callable[[str, str, str], Body]] = {
    "generic": _generic,
    "dockerhub": _dockerhub,
    "harbor": _harbor,
    "ghcr": _ghcr,
    "quay": _quay,
    "acr": _acr,
    "gar": _gar,
    "ecr": _ecr,
    "distribution": _distribution,
    "artifactory": _artifactory,
    "nexus": _nexus,
    "cdevents": _cdevents,
}


def signed_headers(source: str, secret: str | None, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if not secret:
        return headers
    if source == "generic":
        headers["X-Signature"] = (
            "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        )
    elif source == "ghcr":
        headers["X-Hub-Signature-256"] = (
            "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        )
        headers["X-GitHub-Event"] = "package"
    elif source == "nexus":
        headers["X-Nexus-Webhook-Signature"] = hmac.new(
            secret.encode(), body, hashlib.sha1
        ).hexdigest()
    elif source == "harbor":
        headers["Authorization"] = secret
    elif source == "artifactory":
        headers["X-JFrog-Event-Auth"] = secret
    else:
        headers["Authorization"] = f"Bearer {secret}"
    if source == "ghcr":
        headers.setdefault("X-GitHub-Event", "package")
    return headers


@dataclass
class Target:
    url: str
    format: str
    secret: str | None = None


@dataclass
class WebhookSender:
    """Posts each push to every target; failures are logged (a registry does not retry forever)."""

    targets: list[Target] = field(default_factory=list)
    delivered: list[tuple[str, int]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def on_push(self, push: Any) -> None:
        for target in list(self.targets):
            task = asyncio.get_running_loop().create_task(
                self._send(target, push.image, push.tag, push.digest)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, target: Target, image: str, tag: str, digest: str) -> None:
        body = json.dumps(FORMATS[target.format](image, tag, digest)).encode()
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    target.url,
                    data=body,
                    headers=signed_headers(target.format, target.secret, body),
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as r,
            ):
                self.delivered.append((target.format, r.status))
                log.info("webhook_delivered", url=target.url, format=target.format, status=r.status)
        except (aiohttp.ClientError, TimeoutError) as e:
            self.delivered.append((target.format, 0))
            log.warning("webhook_failed", url=target.url, format=target.format, error=str(e))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def routes(self) -> list[web.RouteDef]:
        async def put(request: web.Request) -> web.Response:
            try:
                body = await request.json()
                targets = [
                    Target(str(t["url"]), str(t["format"]), t.get("secret"))
                    for t in body.get("targets", [])
                ]
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                return web.json_response(
                    {"error": f'expected {{"targets": [{{"url", "format", "secret"?}}]}}: {e}'},
                    status=400,
                )
            unknown = [t.format for t in targets if t.format not in FORMATS]
            if unknown:
                return web.json_response(
                    {"error": f"unknown formats {unknown}; known: {sorted(FORMATS)}"}, status=400
                )
            self.targets = targets
            return web.json_response(
                {"targets": [t.__dict__ | {"secret": bool(t.secret)} for t in targets]}
            )

        async def get(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "targets": [{"url": t.url, "format": t.format} for t in self.targets],
                    "delivered": self.delivered[-50:],
                }
            )

        return [web.put("/sim/registry/webhooks", put), web.get("/sim/registry/webhooks", get)]
