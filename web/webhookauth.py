"""How each registry proves a delivery is its own (DESIGN §5), checked in constant time.

HMAC sources (generic, ghcr, nexus) sign the body, so the secret never travels and a captured
delivery cannot be altered; the others send the secret itself, in a header or the URL.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

SIGNED_BODIES = frozenset({"generic", "ghcr", "nexus"})
"""Sources whose deliveries carry an HMAC of the body (their timestamps are signed too)."""


def _hmac(secret: str, body: bytes, algorithm: str) -> str:
    return hmac.new(secret.encode(), body, algorithm).hexdigest()


def _same(a: str, b: str) -> bool:
    # Header bytes that are not UTF-8 arrive as lone surrogates: a wrong credential, not a 500.
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def verify(
    source: str, secret: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
) -> bool:
    """Check a delivery's credentials the way its registry sends them."""
    if source == "generic":
        return _same(headers.get("X-Signature", ""), "sha256=" + _hmac(secret, body, "sha256"))
    if source == "ghcr":
        expected = "sha256=" + _hmac(secret, body, "sha256")
        return _same(headers.get("X-Hub-Signature-256", ""), expected)
    if source == "nexus":
        return _same(headers.get("X-Nexus-Webhook-Signature", ""), _hmac(secret, body, "sha1"))
    if source == "harbor":
        return _same(headers.get("Authorization", ""), secret)
    if source == "artifactory":
        return _same(headers.get("X-JFrog-Event-Auth", ""), secret)
    return bearer_or_token(secret, headers, query)


def bearer_or_token(secret: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """`Authorization: Bearer <secret>` or `?token=<secret>` (registries that can only be given
    a URL, such as Quay, Event Grid or a Pub/Sub push subscription)."""
    bearer = _same(headers.get("Authorization", ""), f"Bearer {secret}")
    return _same(query.get("token", ""), secret) or bearer
