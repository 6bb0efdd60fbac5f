"""A small generic client over kubernetes-asyncio's transport.

Every Kubernetes object is a plain dict here: Kollie reads what it needs and writes whole
desired objects with server-side apply, so generated model classes would only add cost.
kubernetes-asyncio still provides configuration loading (kubeconfig, in-cluster, token
refresh), TLS and the aiohttp connection pool.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import aiohttp
import orjson
import structlog

from kollie.kube import lean_import
from kollie.kube.errors import ApiUnavailable, Forbidden, KubeError, from_status

log = structlog.get_logger("kollie.kube")
k8s_client, k8s_config = lean_import.load()

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient

FIELD_MANAGER = "kollie"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
T = TypeVar("T")


class Resource(Protocol):
    """Identity of a resource type (kollie.labels defines the ones Kollie uses)."""

    @property
    def group(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def plural(self) -> str: ...

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How a request is retried when the API server is unavailable (never for other errors)."""

    attempts: int = 4
    """Total tries, including the first."""
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so replicas do not retry in lockstep."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


NO_RETRY = RetryPolicy(attempts=1)


@dataclass(frozen=True)
class ListPage:
    """One page of a list: its objects, the list's resourceVersion, and whether it is the end."""

    items: list[dict[str, Any]]
    resource_version: str
    last: bool


def api_version(res: Resource) -> str:
    return f"{res.group}/{res.version}" if res.group else res.version


def collection_path(res: Resource, namespace: str | None) -> str:
    base = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    return f"{base}/namespaces/{namespace}/{res.plural}" if namespace else f"{base}/{res.plural}"


class KubeClient:
    """Requests to the Kubernetes API with a timeout on every call and errors translated."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        request_timeout: float = 15.0,
        retry: RetryPolicy = RetryPolicy(),
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self._api = api_client
        self.request_timeout = request_timeout
        self.retry = retry
        self.field_manager = field_manager

    @classmethod
    async def from_config(cls, kubeconfig: str | None = None, **kwargs: Any) -> KubeClient:
        """Load a kubeconfig file (or `KUBECONFIG`), falling back to in-cluster configuration."""
        configuration = k8s_client.Configuration()
        try:
            if kubeconfig is None:
                import os

                kubeconfig = os.environ.get("KUBECONFIG") or None
            if kubeconfig is None:
                k8s_config.load_incluster_config(client_configuration=configuration)
            else:
                await k8s_config.load_kube_config(
                    config_file=kubeconfig, client_configuration=configuration
                )
        except k8s_config.ConfigException as e:
            raise KubeError(f"cannot load Kubernetes configuration: {e}") from e
        return cls(k8s_client.ApiClient(configuration), **kwargs)

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        await self._api.close()

    # ----------------------------------------------------------- transport
    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        limits: float | aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        queries: list[tuple[str, str]] = list((query or {}).items())
        await self._api.update_params_for_auth(headers, queries, ["BearerToken"])
        # The transport serialises JSON (and apply-patch) bodies itself.
        try:
            response: aiohttp.ClientResponse = await self._api.rest_client.request(
                method,
                self.host + path,
                query_params=dict(queries),
                headers=headers,
                body=body,
                _preload_content=False,
                _request_timeout=limits if limits is not None else self.request_timeout,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise ApiUnavailable(f"{method} {path}: {type(e).__name__}: {e}") from e
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry: RetryPolicy | None = None,
    ) -> dict[str, Any]:
        """One JSON request; retried per `retry` only while the API is unavailable."""

        async def once() -> dict[str, Any]:
            response = await self._send(
                method, path, query=query, body=body, content_type=content_type
            )
            try:
                raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                raise ApiUnavailable(f"{method} {path}: {e}") from e
            finally:
                response.release()
            if not 200 <= response.status < 300:
                error = from_status(response.status, raw)
                if isinstance(error, Forbidden):
                    # Some refusals (an apply that would create) do not say what was refused.
                    error.message = f"{error.message.rstrip(': ')} ({method} {path})"
                raise error
            try:
                parsed = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError as e:
                raise ApiUnavailable(f"{method} {path}: malformed JSON in response") from e
            if not isinstance(parsed, dict):
                raise ApiUnavailable(f"{method} {path}: unexpected response")
            return parsed

        return await with_retry(once, retry or self.retry, what=f"{method} {path}")

    # ----------------------------------------------------------- verbs
    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return await self.request("GET", f"{collection_path(res, namespace)}/{name}")

    async def list_pages(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 500,
    ) -> AsyncIterator[ListPage]:
        """A list, page by page, so a caller can consume each before the next arrives (the
        whole list of a large cluster is never in memory as raw objects at once)."""
        query: dict[str, str] = {"limit": str(page_size)}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        while True:
            page = await self.request("GET", collection_path(res, namespace), query=query)
            items = page.get("items") or []
            for item in items:
                # Lists omit each item's type; callers get complete objects.
                item.setdefault("apiVersion", api_version(res))
                item.setdefault("kind", res.kind)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            yield ListPage(items, str(meta.get("resourceVersion", "")), last=not token)
            if not token:
                return
            query["continue"] = token

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str = "",
        page_size: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """All objects (paged), and the list's resourceVersion to watch from."""
        items: list[dict[str, Any]] = []
        resource_version = ""
        async for page in self.list_pages(
            res, namespace, label_selector=label_selector, page_size=page_size
        ):
            items.extend(page.items)
            resource_version = page.resource_version
        return items, resource_version

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int = 300,
        inactivity_timeout: float = 120.0,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Raw watch events (`{"type", "object"}`), BOOKMARKs and ERRORs included; `on_open` is
        called once the server has accepted the watch (before any event, which may be long).

        The server closes the stream after `timeout_seconds`; a stream silent for longer than
        `inactivity_timeout` (bookmarks are asked for, so silence means a dead connection) is
        abandoned with ApiUnavailable.
        """
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout, sock_read=inactivity_timeout
        )
        response = await self._send(
            "GET", collection_path(res, namespace), query=query, limits=timeout
        )
        try:
            if response.status != 200:
                raise from_status(response.status, await response.read())
            if on_open is not None:
                on_open()
            while True:
                try:
                    line = await response.content.readline()
                except (aiohttp.ClientError, TimeoutError) as e:
                    raise ApiUnavailable(f"watch {res.plural}: {type(e).__name__}: {e}") from e
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise ApiUnavailable(f"watch {res.plural}: malformed event") from e
                yield event
        finally:
            response.release()

    async def apply(
        self, res: Resource, obj: Mapping[str, Any], *, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply of a whole desired object, as field manager `kollie`.

        Kollie is the only intended writer of the fields it sets, so it takes them over (force)
        rather than failing on a stray manual edit.
        """
        meta = obj["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        path = f"{collection_path(res, meta.get('namespace'))}/{meta['name']}"
        return await self.request("PATCH", path, query=query, body=dict(obj), content_type=APPLY)

    async def merge_patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        path = f"{collection_path(res, namespace)}/{name}" + (
            f"/{subresource}" if subresource else ""
        )
        return await self.request(
            "PATCH",
            path,
            query={"fieldManager": self.field_manager},
            body=dict(patch),
            content_type=MERGE,
        )

    async def create(
        self, res: Resource, namespace: str | None, obj: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self.request(
            "POST",
            collection_path(res, namespace),
            query={"fieldManager": self.field_manager},
            body=dict(obj),
        )

    async def replace(
        self, res: Resource, namespace: str | None, obj: Mapping[str, Any]
    ) -> dict[str, Any]:
        path = f"{collection_path(res, namespace)}/{obj['metadata']['name']}"
        return await self.request(
            "PUT", path, query={"fieldManager": self.field_manager}, body=dict(obj)
        )

    async def delete(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Delete one object; `uid` makes it a precondition, so a recreated namesake survives,
        and `resource_version` too, so an object changed since it was read survives (Conflict)."""
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        if any(preconditions.values()):
            body["preconditions"] = {k: v for k, v in preconditions.items() if v}
        return await self.request("DELETE", f"{collection_path(res, namespace)}/{name}", body=body)


async def with_retry(call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, what: str) -> T:
    """Run `call`, retrying ApiUnavailable per `policy`; other errors pass through at once."""
    for attempt in range(policy.attempts):
        try:
            return await call()
        except ApiUnavailable as e:
            if attempt + 1 >= policy.attempts:
                raise
            delay = policy.delay(attempt)
            log.debug(
                "kube_retry", what=what, attempt=attempt + 1, delay=round(delay, 3), error=e.message
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
