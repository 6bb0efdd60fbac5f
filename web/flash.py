"""The message a page shows after a form ("Environment pr-7 is being created").

It travels from the form's redirect to the next page in a short-lived cookie signed with
Kollie's key and bound to the user, never in the URL: a link like `/?msg=...` would let anyone
put their own words (a phishing instruction) on Kollie's pages. The cookie is read once and
cleared.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable

from aiohttp import web

COOKIE = "kollie_flash"
HOST_COOKIE = "__Host-kollie_flash"
MAX_AGE = 60
"""Seconds a message waits for its page: a redirect is followed at once."""
SKEW = 5


class Flash:
    def __init__(
        self, secret: bytes, *, secure: bool, clock: Callable[[], float] = time.time
    ) -> None:
        # Its own key, derived from the CSRF key, so a signature for one is never one for the other.
        self._key = hmac.new(secret, b"kollie flash messages", hashlib.sha256).digest()
        self.secure = secure
        self.cookie = HOST_COOKIE if secure else COOKIE
        self.clock = clock

    def _sign(self, identity: str, stamp: str, text: str) -> str:
        message = f"{identity}\n{stamp}\n{text}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def put(self, response: web.StreamResponse, identity: str, text: str) -> None:
        """Make `text` the message of the next page `identity` sees with this browser."""
        stamp = str(int(self.clock()))
        encoded = base64.urlsafe_b64encode(text.encode()).decode()
        value = f"{encoded}.{stamp}.{self._sign(identity, stamp, text)}"
        response.set_cookie(
            self.cookie,
            value,
            max_age=MAX_AGE,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )

    def message(self, request: web.Request, identity: str) -> str | None:
        """The message waiting for `identity`, if its cookie is genuine and fresh."""
        value = request.cookies.get(self.cookie)
        if value is None:
            return None
        encoded, _, rest = value.partition(".")
        stamp, _, signature = rest.partition(".")
        try:
            text = base64.urlsafe_b64decode(encoded.encode()).decode()
            age = self.clock() - int(stamp)
        except (binascii.Error, UnicodeError, ValueError):
            return None
        # A few seconds of clock difference between the replica that redirected and this one.
        if not -SKEW <= age <= MAX_AGE:
            return None
        if not hmac.compare_digest(self._sign(identity, stamp, text), signature):
            return None
        return text

    def forget(self, request: web.Request, response: web.StreamResponse) -> None:
        """Clear the browser's message cookie, if it sent one: a message is shown once."""
        if self.cookie in request.cookies:
            response.set_cookie(
                self.cookie,
                "",
                max_age=0,
                path="/",
                httponly=True,
                samesite="Strict",
                secure=self.secure,
            )
