"""`GET /api/v1/environments`: every environment, or a page of them, as ready bytes.

Each environment's JSON is encoded once per change (kollie.views); a list is their join. Pages
follow Kubernetes lists: `limit` and an opaque `continue` token. A token names the last
environment returned, so paging needs no state on the server and works across replicas: an
environment that exists during the whole listing appears exactly once, and each page shows its
environments as they are when it is served.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import orjson

from kollie.listing import EnvironmentIndex

MAX_LIMIT = 1000


class BadPage(ValueError):
    """A `limit` or `continue` the API refuses; the message says why."""


def continue_token(after: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


def _after(token: str) -> str:
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise BadPage("continue is not a token this API gave out") from None
    after = decoded.get("after") if isinstance(decoded, dict) else None
    if not isinstance(after, str) or not after:
        raise BadPage("continue is not a token this API gave out")
    return after


def _limit(raw: str | None) -> int | None:
    if raw is None:
        return None
    # A few ASCII digits: str.isdigit() also takes "²", and int() refuses both that and
    # strings of more than 4,300 digits (a 500 instead of this 400).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadPage(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def page(index: EnvironmentIndex, *, limit: str | None, token: str | None) -> bytes:
    """The JSON body of one page (everything without `limit`)."""
    size = _limit(limit)
    if token is not None and size is None:
        raise BadPage("continue needs limit")
    if size is None:
        names = index.names()
        more: str | None = None
    else:
        names = index.after(_after(token) if token else "", size + 1)
        more = continue_token(names[size - 1]) if len(names) > size else None
        names = names[:size]
    items = b",".join(r.json for r in index.renderings(names))
    if size is None:
        return b'{"items":[%s]}' % items
    return b'{"items":[%s],"continue":%s}' % (items, orjson.dumps(more))


def etag(generation: int, limit: str | None, token: str | None) -> str:
    """Changes whenever any environment changes; differs per page."""
    digest = hashlib.sha256(f"{generation}:{limit}:{token}".encode()).hexdigest()[:16]
    return f'"{digest}"'
