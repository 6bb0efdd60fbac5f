"""Security headers on every response Kollie sends.

They are added when a response is about to be sent (`on_response_prepare`), not by a middleware
around the handlers: that also covers the responses a handler raises (401, 403, the 303 of a
form, 404 and 405 from the router), errors turned into responses further out, and streams
(`/events`) whose headers go out before the handler returns.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000"
"""Sent only when the dashboard is served over HTTPS (KOLLIE_PUBLIC_URL); this host only."""


def add_security_headers(app: web.Application, *, https: bool) -> None:
    """Give every response of `app` the security headers (HSTS too when served over HTTPS)."""
    headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if https else {})}

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)

    app.on_response_prepare.append(on_prepare)
