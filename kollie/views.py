"""The environment and app representations of the API (DESIGN §5), built from the cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kollie import uptime
from kollie.cache import AppObjects, Cache
from kollie.diagnosis_chain import ChainReader
from kollie.projections import EnvironmentRecord


def app_json(app: AppObjects, chains: ChainReader) -> dict[str, Any]:
    k, p = app.kustomization, app.policy
    status = chains.status(app)
    diagnosis = chains.diagnosis(app, status)
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
        "diagnosis": diagnosis.as_json() if diagnosis else None,
    }


def _utcnow() -> datetime:
    return datetime.now(UTC)


def environment_json(
    cache: Cache,
    record: EnvironmentRecord,
    ttl_seconds: int = 0,
    *,
    namespace: str = "kollie",
    now: datetime | None = None,
) -> dict[str, Any]:
    chains = ChainReader(cache, record, namespace=namespace, now=now or _utcnow())
    apps = [app_json(a, chains) for a in cache.apps(record.name)]
    chains.finish()
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


STATE_ORDER: tuple[str, ...] = ("Failed", "Progressing", "Suspended", "Deleting", "Ready")
"""App states from the most to the least in need of attention."""


@dataclass(frozen=True, slots=True)
class Summary:
    """What listings need of an environment: who owns it, how it is, what search matches."""

    name: str
    owner: str
    created_at: str
    states: tuple[str, ...]
    """Each app's state, in app order."""
    search: str
    """Lower-case text a search matches: the name and every app's prefix."""

    @property
    def worst(self) -> str:
        """The state most in need of attention ("" for an environment without apps)."""
        return next((s for s in STATE_ORDER if s in self.states), "")

    @property
    def failing(self) -> bool:
        return "Failed" in self.states


@dataclass(frozen=True, slots=True)
class Rendering:
    """One version of one environment, as the API, the streams and the listings need it."""

    version: int
    json: bytes
    """The API's JSON of the environment, encoded once."""
    summary: Summary

    @property
    def body(self) -> dict[str, Any]:
        """The JSON decoded (a fresh dict each time: kept as bytes, an environment costs a
        tenth of the memory of its dicts, which matters at 10,000 environments)."""
        body: dict[str, Any] = orjson.loads(self.json)
        return body


def kept_json(value: Any) -> bytes:
    """`value` encoded, for keeping: orjson's bytes keep the buffer they were written into
    (about twice their length), which a value kept for each of 10,000 environments pays for
    as long as it lives; a copy is its exact size."""
    return bytes(memoryview(orjson.dumps(value)))


def summarise(body: Mapping[str, Any]) -> Summary:
    apps = body["apps"]
    prefixes = " ".join((a["prefix"] or "").lower() for a in apps)
    return Summary(
        name=body["name"],
        owner=body["owner"] or "",
        created_at=body["createdAt"] or "",
        states=tuple(a["state"] for a in apps),
        search=f"{body['name']} {prefixes}",
    )


class EnvironmentRenderer:
    """Memoises each environment's representations until the cache says it changed, so a
    list is a join of ready bytes and a change is encoded once for every reader."""

    def __init__(
        self,
        cache: Cache,
        *,
        ttl_seconds: int = 0,
        namespace: str = "kollie",
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.namespace = namespace
        """Kollie's namespace, where the apps' Kustomizations and ImagePolicies live."""
        self.clock = clock
        """Judges whether an environment sleeps; the cache's rechecks say when to look again."""
        self._memo: dict[str, Rendering] = {}

    def rendering(self, name: str) -> Rendering | None:
        record = self.cache.environment(name)
        if record is None:
            self._memo.pop(name, None)
            self.cache.depend(name, ())
            return None
        version = self.cache.version(name)
        cached = self._memo.get(name)
        if cached is not None and cached.version == version:
            return cached
        body = environment_json(
            self.cache, record, self.ttl_seconds, namespace=self.namespace, now=self.clock()
        )
        rendering = Rendering(version, kept_json(body), summarise(body))
        self._memo[name] = rendering
        return rendering

    def one(self, name: str) -> dict[str, Any] | None:
        rendering = self.rendering(name)
        return rendering.body if rendering is not None else None

    def all(self) -> list[dict[str, Any]]:
        return [r.body for r in self.renderings()]

    def renderings(self, names: Iterable[str] | None = None) -> list[Rendering]:
        """The renderings of `names` (default: every environment, by name) that exist."""
        out = []
        for name in self.cache.environment_names() if names is None else names:
            rendering = self.rendering(name)
            if rendering is not None:
                out.append(rendering)
        return out
