"""JSON errors of the API (`{"error": "<code>", "message": "..."}`) and their middleware."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from kollie.kube import ApiUnavailable, Conflict, Forbidden, Invalid, KubeError, NotFound
from kollie.operations import OperationError

log = structlog.get_logger("kollie.web")


RETRY_AFTER_SECONDS = 2
"""What a client is told to wait (`Retry-After`) before retrying a request that found the
Kubernetes API unavailable: long enough for a blip to pass, short enough for CI jobs."""


class ApiError(Exception):
    """An error answered to an API client with a status code and a stable error code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> web.Response:
        return web.json_response(
            {"error": self.code, "message": self.message, **self.extra},
            status=self.status,
            headers=self.headers,
        )


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "bad_request", message, **extra)


def unprocessable(message: str, **extra: Any) -> ApiError:
    return ApiError(422, "invalid", message, **extra)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def from_refusal(e: OperationError) -> ApiError:
    """What a client is told when Kollie refused a change."""
    headers = {"Retry-After": str(e.retry_after)} if e.retry_after else None
    return ApiError(e.status, e.code, e.message, headers=headers, **e.details)


def from_kube(e: KubeError) -> ApiError:
    """What an API client is told when the cluster refused or failed a write."""
    if isinstance(e, ApiUnavailable):
        # Retryable by contract: every write is idempotent, so repeating the request after
        # Retry-After completes whatever part of it the cluster did not take.
        return ApiError(
            503,
            "cluster_unavailable",
            f"The Kubernetes API is unavailable, retry in a few seconds: {e.message}",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(e, NotFound):
        return ApiError(404, "not_found", e.message)
    if isinstance(e, Conflict):
        return ApiError(409, "conflict", e.message)
    if isinstance(e, Invalid):
        return ApiError(422, "rejected_by_cluster", e.message, causes=e.causes)
    if isinstance(e, Forbidden):
        return ApiError(
            503,
            "cluster_forbidden",
            f"Kollie is not allowed to do this in the cluster: {e.message}",
        )
    return ApiError(502, "cluster_error", e.message)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn API, operation and cluster errors into JSON; never leak a traceback to a client."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as e:
        return e.response()
    except OperationError as e:
        return from_refusal(e).response()
    except KubeError as e:
        return from_kube(e).response()
    except web.HTTPException as e:
        if not request.path.startswith(("/api/", "/webhooks/")) or e.status < 400:
            raise
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            415: "unsupported_media_type",
        }.get(e.status, "http_error")
        return web.json_response({"error": code, "message": e.reason}, status=e.status)
    except Exception:
        log.exception("request_failed", path=request.path, method=request.method)
        return web.json_response(
            {"error": "internal", "message": "Internal error; see the Kollie logs."}, status=500
        )
