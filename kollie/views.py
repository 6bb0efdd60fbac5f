"""The environment and app representations of the API (DESIGN §5), built from the cache."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kollie import uptime
from kollie.cache import AppObjects, Cache
from kollie.projections import EnvironmentRecord
from kollie.status import app_status


def app_json(app: AppObjects) -> dict[str, Any]:
    k, p = app.kustomization, app.policy
    status = app_status(k, p)
    return {
        "name": app.name,
        "prefix": (k.prefix if k else "") or None,
        "state": status.state,
        "ready": status.ready,
        "reason": status.reason,
        "message": status.message,
        "imageTag": (k.image_tag if k else None) or (p.latest_tag if p else None),
        "imageDigest": p.latest_digest if p else None,
        "revision": (k.last_applied_revision or None) if k else None,
        "urls": list(app.urls),
        "lastTransitionTime": (k.ready.last_transition if k and k.ready else None) or None,
        "conditions": [
            {
                "object": kind,
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": c.last_transition or None,
            }
            for kind, view in (("Kustomization", k), ("ImagePolicy", p))
            if view is not None
            for c in view.conditions
        ],
    }


def environment_json(
    cache: Cache, record: EnvironmentRecord, ttl_seconds: int = 0
) -> dict[str, Any]:
    apps = [app_json(a) for a in cache.apps(record.name)]
    keep = bool(record.settings.get("keep"))
    window = uptime.from_json(record.settings.get("uptime"))
    expires = None
    if (
        ttl_seconds > 0
        and not keep
        and window is not None
        and window.mode == "until"
        and window.until
    ):
        expires = (window.until + timedelta(seconds=ttl_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "name": record.name,
        "owner": record.owner or None,
        "createdAt": record.created_at,
        "deleting": record.deleting,
        "uptime": dict(record.settings.get("uptime") or {}),
        "fluxBranch": record.settings.get("fluxBranch"),
        "keep": keep,
        "expiresAt": expires,
        "ready": bool(apps) and all(a["ready"] is True for a in apps),
        "apps": apps,
    }


class EnvironmentRenderer:
    """Memoises each environment's JSON until the cache says it changed."""

    def __init__(self, cache: Cache, *, ttl_seconds: int = 0) -> None:
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self._memo: dict[str, tuple[int, dict[str, Any]]] = {}

    def one(self, name: str) -> dict[str, Any] | None:
        record = self.cache.environment(name)
        if record is None:
            self._memo.pop(name, None)
            return None
        version = self.cache.version(name)
        cached = self._memo.get(name)
        if cached is not None and cached[0] == version:
            return cached[1]
        body = environment_json(self.cache, record, self.ttl_seconds)
        self._memo[name] = (version, body)
        return body

    def all(self) -> list[dict[str, Any]]:
        out = []
        for name in self.cache.environment_names():
            body = self.one(name)
            if body is not None:
                out.append(body)
        return out
