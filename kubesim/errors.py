"""Kubernetes-style API errors, rendered as `metav1.Status` bodies.

Every failure the emulator reports goes through :class:`ApiError` so that clients see the
same `code`/`reason`/`details` triple a real kube-apiserver would send them.
"""

from __future__ import annotations

from typing import Any

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a Kubernetes `Status` object with the given HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        list_meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}
        self.list_meta = list_meta or {}
        """The Status's `metadata` (a 410 for an expired continue token offers a new one)."""

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.list_meta),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:  # `{}` too: a Forbidden for a path has empty details
            body["details"] = self.details
        return body


def _details(kind: str, name: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{_qualified(resource, group)} "{name}" not found',
        details=_details(resource, name, group),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{_qualified(resource, group)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(resource, name, group),
    )


def conflict(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": '
        "the object has been modified; please apply your changes to the latest version and "
        "try again",
        details=_details(resource, name, group),
    )


def invalid(
    kind: str, group: str, name: str, causes: list[dict[str, str]], messages: list[str]
) -> ApiError:
    joined = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    details = _details(kind, name, group)
    details["causes"] = causes
    return ApiError(
        422, f'{kind}{"." + group if group else ""} "{name}" is invalid: {joined}', details=details
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def load_yaml(raw: bytes, failure: str) -> Any:
    """YAML (JSON included) or a 400 saying `failure: <the parser's complaint>`."""
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise bad_request(f"{failure}: {e}") from e


def gone(message: str = "too old resource version") -> ApiError:
    return ApiError(410, message, reason="Expired")


# kube-apiserver answers a JSON patch that does not apply with a bare 422 Status whose message
# is this (the library's reason is dropped); it is kept in PatchError.detail for logs and tests.
REJECTED = "the server rejected our request due to an error in our request"


class PatchError(Exception):
    """A patch that cannot be applied; the server answers ``code`` with this message.

    ``code`` is 400 for a malformed patch (not a list of operations, bad directive format) and
    422 for one that does not apply to the object.  ``detail`` says why, when the message does
    not (JSON patch failures).
    """

    def __init__(self, message: str, code: int = 422, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail or message
