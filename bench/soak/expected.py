"""What `/api/v1/environments` must show, computed from the emulator's objects alone.

Written from the documented contract (README "What Kollie writes" and "The HTTP API", Flux's
condition semantics), not from Kollie's code, so that a bug in Kollie's watch, cache or
rendering cannot hide itself by being computed twice. Both sides are reduced to the same
comparable shape: per environment its record fields, per app its prefix, image, revision,
URLs, conditions and state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

NAMESPACE = "kollie"
MANAGED = "app.kubernetes.io/managed-by=kollie,kollie.io/environment"
ENV_LABEL = "kollie.io/environment"
APP_LABEL = "kollie.io/app"
TTL = timedelta(days=7)
"""KOLLIE_ENV_TTL's default, which the soak's replicas run with."""
WAITING = {"Progressing", "DependencyNotReady", "ProgressingWithRetry"}
"""Flux's Ready=False reasons that mean "not done yet" rather than "broken"."""

Obj = Mapping[str, Any]
View = dict[str, dict[str, Any]]

LISTS = {
    "records": f"/api/v1/namespaces/{NAMESPACE}/configmaps",
    "kustomizations": f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{NAMESPACE}/kustomizations",
    "policies": f"/apis/image.toolkit.fluxcd.io/v1/namespaces/{NAMESPACE}/imagepolicies",
}


async def cluster_objects(http: aiohttp.ClientSession, url: str) -> dict[str, list[Obj]]:
    """The objects the documented selectors pick, straight from the API server."""
    queries = {name: (path, MANAGED) for name, path in LISTS.items()}
    queries["ingresses"] = ("/apis/networking.k8s.io/v1/ingresses", f"{ENV_LABEL},{APP_LABEL}")

    async def items(path: str, selector: str) -> list[Obj]:
        async with http.get(url + path, params={"labelSelector": selector}) as r:
            r.raise_for_status()
            return list((await r.json()).get("items") or [])

    found = await asyncio.gather(*(items(p, s) for p, s in queries.values()))
    return dict(zip(queries, found, strict=True))


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: Obj) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}


def _conditions(obj: Obj) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for c in (obj.get("status") or {}).get("conditions") or []:
        found[c["type"]] = c
    return found


def _condition_rows(kind: str, obj: Obj | None) -> list[tuple[str, ...]]:
    if obj is None:
        return []
    return [
        (
            kind,
            c["type"],
            str(c.get("status", "Unknown")),
            str(c.get("reason", "")),
            str(c.get("message", "")),
        )
        for c in _conditions(obj).values()
    ]


def _tag_of(k: Obj | None) -> str | None:
    if k is None:
        return None
    return (((k.get("spec") or {}).get("postBuild") or {}).get("substitute") or {}).get("image_tag")


def _latest(p: Obj | None) -> Mapping[str, Any]:
    return ((p or {}).get("status") or {}).get("latestRef") or {}


def _waiting_for_image(p: Obj | None) -> str | None:
    """The state an app is in because of its image, or None when its image is resolved."""
    if p is None:
        return "Progressing"
    if _latest(p).get("tag"):
        return None
    ready = _conditions(p).get("Ready")
    if ready and ready.get("status") == "False" and ready.get("reason") not in WAITING:
        return "Failed"
    return "Progressing"


def state(k: Obj | None, p: Obj | None) -> str:
    """An app's state from its Kustomization and ImagePolicy, as Flux users read them."""
    if k is None:
        return _waiting_for_image(p) or "Progressing"
    if _meta(k).get("deletionTimestamp"):
        return "Deleting"
    tag = _tag_of(k)
    if tag is None and (waiting := _waiting_for_image(p)) is not None:
        return waiting
    if (k.get("spec") or {}).get("suspend"):
        return "Suspended" if tag is not None else "Progressing"
    conditions = _conditions(k)
    ready = conditions.get("Ready")
    if ready is None:
        return "Progressing"
    # A Ready condition speaks about the generation it names (or, without one, about the
    # generation the status as a whole last saw).
    seen = max(
        int(ready.get("observedGeneration") or 0),
        int((k.get("status") or {}).get("observedGeneration") or 0),
    )
    if seen < int(_meta(k).get("generation") or 0):
        return "Progressing"
    if ready.get("status") == "True":
        return "Ready"
    stalled = (conditions.get("Stalled") or {}).get("status") == "True"
    if ready.get("status") == "False":
        return "Progressing" if ready.get("reason") in WAITING and not stalled else "Failed"
    return "Progressing"


def _urls(ingress: Obj) -> set[str]:
    spec = ingress.get("spec") or {}
    tls = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
    urls = set()
    for rule in spec.get("rules") or []:
        host = rule.get("host")
        if not host:
            continue
        paths = [p.get("path", "/") for p in (rule.get("http") or {}).get("paths") or []]
        path = paths[0] if paths and paths[0] not in ("", "/") else "/"
        urls.add(f"{'https' if host in tls else 'http'}://{host}{path}")
    return urls


def _expires(settings: Mapping[str, Any], keep: bool) -> str | None:
    until = (settings.get("uptime") or {}).get("until")
    if keep or not until or (settings.get("uptime") or {}).get("schedule"):
        return None
    moment = datetime.fromisoformat(str(until).replace("Z", "+00:00")).astimezone(UTC)
    return (moment + TTL).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_view(objects: Mapping[str, list[Obj]]) -> View:
    """The comparable view of every environment the cluster holds."""
    by_app: dict[tuple[str, str], dict[str, Obj]] = {}
    for kind in ("kustomizations", "policies"):
        for obj in objects[kind]:
            key = (_labels(obj).get(ENV_LABEL, ""), _labels(obj).get(APP_LABEL, ""))
            if all(key):
                by_app.setdefault(key, {})[kind] = obj
    urls: dict[tuple[str, str], set[str]] = {}
    for ingress in objects["ingresses"]:
        key = (_labels(ingress)[ENV_LABEL], _labels(ingress)[APP_LABEL])
        urls.setdefault(key, set()).update(_urls(ingress))
    view: View = {}
    for record in objects["records"]:
        name = _labels(record)[ENV_LABEL]
        meta = _meta(record)
        annotations = meta.get("annotations") or {}
        try:
            settings = json.loads((record.get("data") or {}).get("environment.json") or "{}")
        except ValueError:
            settings = {}
        settings = settings if isinstance(settings, dict) else {}
        keep = bool(settings.get("keep"))
        apps = {}
        for (env, app), found in sorted(by_app.items()):
            if env != name:
                continue
            k, p = found.get("kustomizations"), found.get("policies")
            latest = _latest(p)
            apps[app] = {
                "prefix": (_meta(k or {}).get("annotations") or {}).get(
                    "kollie.io/image-tag-prefix"
                )
                or None,
                "state": state(k, p),
                "imageTag": _tag_of(k) or latest.get("tag") or None,
                "imageDigest": latest.get("digest") or None,
                "revision": ((k or {}).get("status") or {}).get("lastAppliedRevision") or None,
                "urls": sorted(urls.get((env, app), set())),
                "conditions": sorted(
                    _condition_rows("Kustomization", k) + _condition_rows("ImagePolicy", p)
                ),
            }
        view[name] = {
            "owner": annotations.get("kollie.io/owner") or None,
            "createdAt": annotations.get("kollie.io/created-at") or meta.get("creationTimestamp"),
            "deleting": bool(meta.get("deletionTimestamp")),
            "uptime": settings.get("uptime") or {},
            "fluxBranch": settings.get("fluxBranch"),
            "keep": keep,
            "expiresAt": _expires(settings, keep),
            "apps": apps,
        }
    return view


def served_view(items: list[Mapping[str, Any]]) -> View:
    """The same shape, from a replica's `/api/v1/environments` answer."""
    view: View = {}
    for env in items:
        view[env["name"]] = {
            "owner": env.get("owner"),
            "createdAt": env.get("createdAt"),
            "deleting": env.get("deleting"),
            "uptime": env.get("uptime") or {},
            "fluxBranch": env.get("fluxBranch"),
            "keep": env.get("keep"),
            "expiresAt": env.get("expiresAt"),
            "apps": {
                a["name"]: {
                    "prefix": a.get("prefix"),
                    "state": a.get("state"),
                    "imageTag": a.get("imageTag"),
                    "imageDigest": a.get("imageDigest"),
                    "revision": a.get("revision"),
                    "urls": sorted(a.get("urls") or []),
                    "conditions": sorted(
                        (
                            c["object"],
                            c["type"],
                            c["status"],
                            c.get("reason") or "",
                            c.get("message") or "",
                        )
                        for c in a.get("conditions") or []
                    ),
                }
                for a in env.get("apps") or []
            },
        }
    return view


def differences(expected: View, served: View, *, limit: int = 10) -> list[str]:
    """Human-readable differences (lost, phantom, or stale environments and apps)."""
    out: list[str] = []
    for name in sorted(set(expected) | set(served)):
        if name not in served:
            out.append(f"{name}: lost (in the cluster, not served)")
        elif name not in expected:
            out.append(f"{name}: phantom (served, not in the cluster)")
        else:
            want, got = expected[name], served[name]
            for key in sorted(set(want) | set(got)):
                if key == "apps":
                    continue
                if want.get(key) != got.get(key):
                    out.append(f"{name}.{key}: cluster {want.get(key)!r}, served {got.get(key)!r}")
            for app in sorted(set(want["apps"]) | set(got["apps"])):
                a, b = want["apps"].get(app), got["apps"].get(app)
                if a != b:
                    out.append(f"{name}/{app}: cluster {a!r}, served {b!r}")
        if len(out) >= limit:
            break
    return out
