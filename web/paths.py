"""Refuse request paths that a proxy in front of Kollie could read differently than Kollie does.

The auth proxy and the ingress decide by the path which requests need a browser login (`/`) and
which go straight to Kollie (`/api`, `/webhooks`). A path with encoded slashes or backslashes,
or with `.`/`..` segments, may be normalised one way by them and another by Kollie's router
(`/env/..%2Fapi` is an environment page to Kollie, `/api` to a proxy that decodes and resolves
it). No Kollie path ever needs them (names are DNS labels), so they are refused before routing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)


def ambiguity(raw_path: str) -> str | None:
    """Why a raw request path (query string excluded) is ambiguous, or None."""
    if _ENCODED_SEPARATOR.search(raw_path) or "\\" in raw_path:
        return "encoded '/' or '\\' in the path"
    if any(segment in (".", "..") for segment in unquote(raw_path).split("/")):
        return "'.' or '..' segment in the path"
    return None


@web.middleware
async def unambiguous_paths(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    problem = ambiguity(request.raw_path.partition("?")[0])
    if problem is not None:
        raise web.HTTPBadRequest(text=f"Refused: {problem}.")
    return await handler(request)
