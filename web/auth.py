"""Who is calling: API bearer tokens, trusted auth-proxy headers, or the demo user (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from kollie.config import token_owner
from kollie.operations import Actor, Via
from kollie.pushhandler import WEBHOOK
from web.errors import ApiError

DEMO_USER = "demo@kollie.local"
TOKEN_PREFIX = "token:"
"""API callers are `token:<name>` (the name from the tokens file)."""
KOLLIE_OWN = frozenset({WEBHOOK.name, "kollie"})
"""Who owns or changes environments for Kollie itself: registry webhooks, expiry, image follow."""
MACHINE_ROUTES = ("/api/", "/webhooks/")
"""Routes whose callers are programs (CI with tokens, registries with signatures), never
browsers behind the auth proxy."""


def browser_route(request: web.Request) -> bool:
    """Whether the request was routed to the dashboard's surface (the pages, their forms and
    stream), by the route Kollie registered for it: never by the path string the client sent,
    which a proxy in front may read differently. Unrouted requests are not."""
    resource = request.match_info.route.resource
    return resource is not None and not resource.canonical.startswith(MACHINE_ROUTES)


@dataclass(frozen=True)
class Authenticator:
    tokens: Mapping[str, str]
    """token -> name, from KOLLIE_API_TOKENS_FILE."""
    trust_proxy_headers: bool = False
    demo: bool = False
    public_url: str | None = None
    """The dashboard's `scheme://host[:port]` (KOLLIE_PUBLIC_URL): proxy headers count only on
    requests sent to that host."""

    def identify(self, request: web.Request) -> Actor | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            name = token_owner(self.tokens, header[len("Bearer ") :].strip())
            return Actor(f"{TOKEN_PREFIX}{name}", "api") if name else None
        if self.trust_proxy_headers and browser_route(request) and self._to_dashboard(request):
            # Only the browser surface sits behind the auth proxy. The API may be reachable
            # without it (CI, registries), where these headers would be whatever the caller
            # wants them to be.
            user = request.headers.get("X-Auth-Request-Email") or request.headers.get(
                "X-Auth-Request-User"
            )
            if user and _readable(user) and not _kollies_own(user.strip()):
                return Actor(user.strip(), _via(request))
        if self.demo:
            return Actor(DEMO_USER, _via(request))
        return None

    def _to_dashboard(self, request: web.Request) -> bool:
        """Whether the request was sent to the dashboard's own host (always, when its address
        is not configured). The ingress controller that forwards the proxy's headers also
        serves every other Ingress of the cluster, such as one a test environment's branch code
        adds for its own host with Kollie's pods as the backend and no login in front: a
        request through it carries whatever headers its sender chose."""
        if self.public_url is None:
            return True
        public = urlsplit(self.public_url)
        default = ":443" if public.scheme == "https" else ":80"
        return request.host.lower().removesuffix(default) == public.netloc

    def require(self, request: web.Request) -> Actor:
        """The caller, or 401 with a message saying how to authenticate."""
        header = request.headers.get("Authorization", "")
        actor = self.identify(request)
        if actor is None:
            message = (
                "invalid API token"
                if header.startswith("Bearer ")
                else "authentication required: send 'Authorization: Bearer <token>'"
            )
            raise ApiError(401, "unauthorized", message)
        return actor


def _readable(value: str) -> bool:
    """Whether a header's value is text (header bytes that are not UTF-8 arrive as lone
    surrogates): an identity Kollie could not write into a page or an annotation is none."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def _kollies_own(name: str) -> bool:
    """Whether `name` is one Kollie gives its own callers. A dashboard user called like that
    (an identity provider's user name is often the user's choice) would own what they own, and
    be an admin where KOLLIE_ADMINS names a token."""
    return name.startswith(TOKEN_PREFIX) or name in KOLLIE_OWN


def _via(request: web.Request) -> Via:
    return "ui" if browser_route(request) else "api"
