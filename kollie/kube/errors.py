"""API errors, translated in one place so callers never parse `ApiException`."""

from __future__ import annotations

import json
from typing import Any


class KubeError(Exception):
    """The Kubernetes API refused or failed a request."""

    status: int = 0

    def __init__(
        self, message: str, *, status: int = 0, reason: str = "", body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.reason = reason
        self.body = body or {}

    @property
    def causes(self) -> list[dict[str, str]]:
        details = self.body.get("details") or {}
        return list(details.get("causes") or [])


class NotFound(KubeError):
    """The object (or its namespace, or its resource type) does not exist."""

    status = 404


class Conflict(KubeError):
    """A write lost a race: stale resourceVersion, already exists, or a field-manager conflict."""

    status = 409


class Invalid(KubeError):
    """The API server rejected the object as invalid (422) or the request as malformed (400)."""

    status = 422


class Forbidden(KubeError):
    """Kollie's credentials may not do this (401/403)."""

    status = 403


class Gone(KubeError):
    """The requested resourceVersion is too old (410): relist."""

    status = 410


class ApiUnavailable(KubeError):
    """The API server could not be reached or answered 429/5xx: retry later, decide nothing."""

    status = 503


_BY_STATUS: dict[int, type[KubeError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
}


def from_status(status: int, body: bytes | str | dict[str, Any] | None) -> KubeError:
    """The error for an HTTP status and its (usually `metav1.Status`) body."""
    parsed: dict[str, Any] = {}
    if isinstance(body, dict):
        parsed = body
    elif body:
        try:
            loaded = json.loads(body)
            if isinstance(loaded, dict):
                parsed = loaded
        except ValueError:
            parsed = {"message": body.decode(errors="replace") if isinstance(body, bytes) else body}
    message = str(parsed.get("message") or f"HTTP {status}")
    cls = _BY_STATUS.get(status, ApiUnavailable if status == 429 or status >= 500 else KubeError)
    return cls(message, status=status, reason=str(parsed.get("reason", "")), body=parsed)
