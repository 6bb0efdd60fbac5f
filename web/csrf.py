"""CSRF protection for the HTML forms: a per-browser random cookie and an HMAC of it in each
form. A cross-site page can make the browser send the cookie but cannot read it to forge the
field."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

COOKIE = "kollie_csrf"
FIELD = "csrf_token"


class Csrf:
    def __init__(self, secret: bytes | None = None) -> None:
        # A per-process key is enough for one replica (a restart costs one page reload); replicas
        # behind one Service share KOLLIE_CSRF_SECRET, or a form served by one fails on another.
        self.secret = secret or secrets.token_bytes(32)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.secret, nonce.encode(), hashlib.sha256).hexdigest()

    def token(
        self, request: web.Request, response: web.StreamResponse | None = None
    ) -> tuple[str, str | None]:
        """(form token, new cookie value or None if the browser already has one)."""
        nonce = request.cookies.get(COOKIE)
        fresh = None
        if not nonce or len(nonce) != 32:
            nonce = fresh = secrets.token_hex(16)
        return self._sign(nonce), fresh

    def check(self, request: web.Request, submitted: str | None) -> bool:
        nonce = request.cookies.get(COOKIE)
        if not nonce or not submitted:
            return False
        return hmac.compare_digest(self._sign(nonce), submitted)


def set_cookie(response: web.StreamResponse, value: str) -> None:
    response.set_cookie(COOKIE, value, httponly=True, samesite="Strict", path="/")
