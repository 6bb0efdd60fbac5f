"""Who asks Kollie for a change, and the ways Kollie refuses one.

Every refusal carries the HTTP status and the stable error code the API answers with, so the
web layer translates them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Via = Literal["ui", "api", "webhook", "expiry", "image-follow", "cli"]


@dataclass(frozen=True)
class Actor:
    """Who asked for a change, and through which door (for the audit trail)."""

    name: str
    via: Via


class OperationError(Exception):
    """A request Kollie refuses; `status` and `code` become the API's answer."""

    status = 422
    code = "invalid"
    retry_after: int | None = None
    """Seconds after which trying again may succeed (`Retry-After`), for refusals that pass."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(OperationError):
    """Bad input: a name, prefix, branch or window Kollie's rules refuse."""

    status, code = 422, "invalid"


class UnknownApp(OperationError):
    """An app the catalog does not have."""

    status, code = 422, "unknown_app"


class UnknownBundle(OperationError):
    """A bundle the catalog does not have."""

    status, code = 422, "unknown_bundle"


class EnvironmentNotFound(OperationError):
    """No such environment."""

    status, code = 404, "not_found"


class AppNotFound(OperationError):
    """The environment has no such app."""

    status, code = 404, "not_found"


class EnvironmentDeleting(OperationError):
    """The environment is being deleted; changes must wait until it is gone."""

    status, code = 409, "deleting"


class NotAllowed(OperationError):
    """The caller may not change this environment (owner-only mode, keep)."""

    status, code = 403, "forbidden"


class AlreadyExists(OperationError):
    """A form asked to create an environment that exists (it would have replaced its apps)."""

    status, code = 409, "exists"


class NameTaken(OperationError):
    """A new environment's name is a namespace that exists for something else."""

    status, code = 409, "name_taken"


class QuotaExceeded(OperationError):
    """The caller owns as many environments as KOLLIE_LIMIT_ENVIRONMENTS allows."""

    status, code = 429, "quota_exceeded"
    retry_after = 60
    """Seconds a client is told to wait (`Retry-After`): an environment of theirs may expire or
    be deleted meanwhile."""
