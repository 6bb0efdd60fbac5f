"""Who is calling: bearer tokens, as the API server's token authenticators see them.

Two kinds of token are known when access control is on:
- the administrator's token of the emulator's kubeconfig (user `kubesim-admin`, group
  `system:masters`, which RBAC always allows, as on a real cluster);
- ServiceAccount tokens minted by the TokenRequest API (`POST .../serviceaccounts/<name>/token`,
  what the kubelet asks for to project a pod's token, and what `kubectl create token` calls).
  They are JWTs signed with a per-cluster key; they stop working when they expire or when their
  ServiceAccount is deleted or recreated (its uid changes), like bound tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubesim.errors import ApiError
from kubesim.store import Store

ADMIN_TOKEN = "kubesim-admin"
ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_ACCOUNTS = ("", "serviceaccounts")
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600  # the API server's minimum for TokenRequest.spec.expirationSeconds


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...]
    uid: str = ""


ADMIN = UserInfo("kubesim-admin", ("system:masters", "system:authenticated"))
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        uid,
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", reason="Unauthorized")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenAuthority:
    """Issues and checks ServiceAccount tokens for one cluster."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self._key = secrets.token_bytes(32)

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def token_request(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """Answer a TokenRequest for the ServiceAccount `namespace/name` (404 if it does not
        exist)."""
        account = self.store.get(SERVICE_ACCOUNTS, namespace, name)
        if account is None:
            raise ApiError(
                404,
                f'serviceaccounts "{name}" not found',
                reason="NotFound",
                details={"name": name, "kind": "serviceaccounts"},
            )
        spec = (body.get("spec") if isinstance(body, dict) else None) or {}
        if not isinstance(spec, dict):
            raise ApiError(400, "spec must be an object", reason="BadRequest")
        expiration = spec.get("expirationSeconds", DEFAULT_EXPIRATION)
        if (
            not isinstance(expiration, int)
            or isinstance(expiration, bool)
            or expiration < MIN_EXPIRATION
        ):
            message = (
                f"spec.expirationSeconds: Invalid value: {expiration!r}: "
                "may not specify a duration less than 10 minutes"
            )
            raise ApiError(
                422,
                f'TokenRequest.authentication.k8s.io "{name}" is invalid: {message}',
                reason="Invalid",
                details={
                    "name": name,
                    "group": "authentication.k8s.io",
                    "kind": "TokenRequest",
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "spec.expirationSeconds",
                            "message": message.split(": ", 1)[1],
                        }
                    ],
                },
            )
        audiences = spec.get("audiences") or [ISSUER]
        now = self.clock()
        expires = now + timedelta(seconds=expiration)
        uid = account["metadata"].get("uid", "")
        claims = {
            "iss": ISSUER,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": audiences,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        header = _b64(json.dumps({"alg": "HS256", "kid": "kubesim", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        token = f"{header}.{payload}.{self._sign(f'{header}.{payload}')}"
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": {
                "audiences": audiences,
                "expirationSeconds": expiration,
                "boundObjectRef": None,
            },
            "status": {
                "token": token,
                "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    def authenticate(self, authorization: str | None) -> UserInfo:
        """The caller of a request with this Authorization header: anonymous without a bearer token
        (the API server's default; other schemes and an empty token are no credentials to it), 401
        for a bearer token that is not valid."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip().split(" ")[0]
        if scheme.lower() != "bearer" or not token:
            return ANONYMOUS
        if hmac.compare_digest(token.encode(), ADMIN_TOKEN.encode()):
            return ADMIN
        user = self._service_account(token)
        if user is None:
            raise unauthorized()
        return user

    def _service_account(self, token: str) -> UserInfo | None:
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(
            self._sign(f"{parts[0]}.{parts[1]}"), parts[2]
        ):
            return None
        try:
            claims = json.loads(_unb64(parts[1]))
            bound = claims["kubernetes.io"]
            namespace, name, uid = (
                bound["namespace"],
                bound["serviceaccount"]["name"],
                bound["serviceaccount"]["uid"],
            )
            expires = int(claims["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if self.clock().timestamp() >= expires:
            return None
        audiences = claims.get("aud") or []
        if ISSUER not in (audiences if isinstance(audiences, list) else [audiences]):
            # Minted for someone else (TokenRequest.spec.audiences), not for this API server.
            return None
        account = self.store.get(SERVICE_ACCOUNTS, namespace, name)
        if account is None or account["metadata"].get("uid", "") != uid:
            return None
        return service_account_user(namespace, name, uid)
