"""CSRF protection for the HTML forms.

Each browser gets a random cookie; each form carries an HMAC of that cookie *and the signed-in
user*, so a token is worth nothing in another user's request. Apps under test live on sibling
subdomains of the dashboard's site: they can make a browser send Kollie's cookie (SameSite does
not stop a same-site request) and can even set cookies for the parent domain. So, on top of the
token:

- every form post is refused when the browser says it came from elsewhere: `Sec-Fetch-Site`
  other than `same-origin`, or an `Origin` that is not the dashboard's;
- when the dashboard is served over HTTPS (`KOLLIE_PUBLIC_URL` says so), the cookie is `Secure`
  and named with the `__Host-` prefix, which a sibling subdomain cannot set or overwrite.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

COOKIE = "kollie_csrf"
HOST_COOKIE = "__Host-kollie_csrf"
FIELD = "csrf_token"


class Csrf:
    def __init__(self, secret: bytes | None = None, *, public_origin: str | None = None) -> None:
        """`public_origin`: the dashboard's `scheme://host[:port]` as browsers see it, or None
        (then a post's Origin must name the host it was sent to)."""
        # A per-process key is enough for one replica (a restart costs one page reload); replicas
        # behind one Service share KOLLIE_CSRF_SECRET, or a form served by one fails on another.
        self.secret = secret or secrets.token_bytes(32)
        self.public_origin = public_origin
        self.secure = bool(public_origin and public_origin.startswith("https://"))
        self.cookie = HOST_COOKIE if self.secure else COOKIE

    def _sign(self, nonce: str, identity: str) -> str:
        message = f"{nonce}\n{identity}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def token(self, request: web.Request, identity: str) -> tuple[str, str | None]:
        """(form token for this browser and user, new cookie value or None if the browser
        already has one)."""
        nonce = request.cookies.get(self.cookie)
        fresh = None
        if not nonce or len(nonce) != 32:
            nonce = fresh = secrets.token_hex(16)
        return self._sign(nonce, identity), fresh

    def check(self, request: web.Request, identity: str, submitted: str | None) -> bool:
        """Whether `submitted` is the token this browser's cookie gave this user."""
        nonce = request.cookies.get(self.cookie)
        if not nonce or not submitted:
            return False
        return hmac.compare_digest(self._sign(nonce, identity), submitted)

    def foreign(self, request: web.Request) -> str | None:
        """Why the browser says this post did not come from the dashboard's own pages, or None.

        Browsers send `Sec-Fetch-Site` and `Origin` with every form post; a client that sends
        neither is not a browser and still needs a valid token.
        """
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return f"Sec-Fetch-Site: {site}"
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        if self.public_origin is not None:
            return None if origin.lower() == self.public_origin else f"Origin: {origin}"
        # Without a configured address, the Host the browser sent the post to is the dashboard's
        # (browsers leave default ports out of both).
        host = origin.lower().partition("://")[2]
        return None if host == request.host.lower() else f"Origin: {origin}"

    def set_cookie(self, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(
            self.cookie, value, httponly=True, samesite="Strict", path="/", secure=self.secure
        )
