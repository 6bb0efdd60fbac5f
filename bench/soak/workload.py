"""Random changes through every door Kollie has, and behind its back.

- the JSON API of either replica (create, change, extend, keep, Flux branch, delete);
- the dashboard's forms, as a browser posts them (a page first, then the form with its CSRF
  token; the identity comes from the auth proxy's header);
- signed registry webhooks (`generic` source) for images pushed to the simulated registry,
  which rescan and auto-create `feature-*` / `fix-*` environments;
- kubectl-style merge patches and deletes straight to the API server (an owner changed by
  hand, a suspended or deleted Kustomization, an image tag set by hand, a record deleted);
- Flux health checks failing and recovering (the simulated kustomize-controller).

Most changes make sense; some do not (an app removed twice, an environment already gone):
their answers must be clear refusals.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.soak.client import Answer, Balancer

APPS = ("web", "api", "worker", "payments", "search", "admin")
BUNDLES = ("storefront", "backoffice", "everything")
REGISTRY = "registry.example.com/acme"
GIT_URL = "https://git.example.com/acme/platform"
FLUX_BRANCH = "infra-soak"
USERS = ("ada@example.com", "grace@example.com")
KS_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie/kustomizations"
CM_PATH = "/api/v1/namespaces/kollie/configmaps"
IR_PATH = "/apis/image.toolkit.fluxcd.io/v1/namespaces/flux-system/imagerepositories"
MERGE = {"Content-Type": "application/merge-patch+json"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Workload:
    """Makes one random change per `change()` call; counts them by kind."""

    balancer: Balancer
    http: aiohttp.ClientSession
    """To the emulator: admin routes and the Kubernetes API (no faults on /sim)."""
    emulator: str
    token: str
    webhook_secret: str
    rng: random.Random
    environments: int = 24
    counts: Counter[str] = field(default_factory=Counter)
    _stamps: itertools.count[int] = field(default_factory=lambda: itertools.count(int(time.time())))

    def __post_init__(self) -> None:
        self.names = [f"soak-{i:02d}" for i in range(self.environments)]
        self.prefixes = [f"feature-soak-{i}" for i in range(4)] + ["fix-soak-0", "fix-soak-1"]
        self.auto_names = list(self.prefixes)
        self._ops: list[tuple[str, int, Callable[[], Awaitable[None]]]] = [
            ("api.put", 14, self.api_put),
            ("api.add-app", 8, self.api_add_app),
            ("api.remove-app", 5, self.api_remove_app),
            ("api.extend", 5, self.api_extend),
            ("api.uptime", 3, self.api_uptime),
            ("api.keep", 2, self.api_keep),
            ("api.flux-branch", 2, self.api_flux_branch),
            ("api.delete", 5, self.api_delete),
            ("form.create", 4, self.form_create),
            ("form.add-app", 3, self.form_add_app),
            ("form.remove-app", 2, self.form_remove_app),
            ("form.extend", 2, self.form_extend),
            ("form.delete", 2, self.form_delete),
            ("webhook.push", 9, self.webhook_push),
            ("kubectl.patch", 7, self.kubectl_patch),
            ("flux.health", 3, self.flux_health),
        ]

    # ----------------------------------------------------------------- set-up
    async def setup(self) -> None:
        """Images for every branch prefix and a second branch of the Flux repository."""
        for prefix in self.prefixes:
            for app in APPS:
                await self._push_image(app, prefix)
        await self._sim("POST", "/sim/git/push", {"url": GIT_URL, "branch": FLUX_BRANCH})
        for app in APPS:
            await self._rescan(app)

    async def change(self) -> str:
        names, weights, ops = zip(*self._ops, strict=True)
        index = self.rng.choices(range(len(ops)), weights=weights)[0]
        await ops[index]()
        self.counts[names[index]] += 1
        return str(names[index])

    # ----------------------------------------------------------------- choices
    def _env(self) -> str:
        pool = self.names if self.rng.random() < 0.85 else self.auto_names
        return self.rng.choice(pool)

    def _prefix(self) -> str | None:
        return self.rng.choice([None, None, *self.prefixes])

    def _apps(self) -> dict[str, Any]:
        chosen = self.rng.sample(APPS, self.rng.randint(1, 3))
        return {a: ({"prefix": p} if (p := self._prefix()) else {}) for a in chosen}

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _browser(self) -> dict[str, str]:
        return {"X-Auth-Request-Email": self.rng.choice(USERS)}

    # ----------------------------------------------------------------- the API
    async def _api(self, method: str, path: str, body: Any = None) -> Answer | None:
        return await self.balancer.send(
            "api", method, f"/api/v1/environments/{path}", json=body, headers=self._auth()
        )

    async def api_put(self) -> None:
        body: dict[str, Any] = {"apps": self._apps()}
        if self.rng.random() < 0.3:
            body = {"bundle": self.rng.choice(BUNDLES), "apps": {}}
        if self.rng.random() < 0.2:
            body["uptime"] = {"hours": self.rng.randint(1, 72)}
        await self._api("PUT", self._env(), body)

    async def api_add_app(self) -> None:
        body: dict[str, Any] = {"name": self.rng.choice(APPS)}
        if prefix := self._prefix():
            body["prefix"] = prefix
        await self._api("POST", f"{self._env()}/apps", body)

    async def api_remove_app(self) -> None:
        await self._api("DELETE", f"{self._env()}/apps/{self.rng.choice(APPS)}")

    async def api_extend(self) -> None:
        await self._api("POST", f"{self._env()}/extend", {"hours": self.rng.randint(1, 48)})

    async def api_uptime(self) -> None:
        body = (
            {"schedule": "Mon-Fri 07:00-19:00 Europe/London"}
            if self.rng.random() < 0.5
            else {"hours": self.rng.randint(1, 24)}
        )
        await self._api("PUT", f"{self._env()}/uptime", body)

    async def api_keep(self) -> None:
        await self._api("PUT", f"{self._env()}/keep", {"keep": self.rng.random() < 0.5})

    async def api_flux_branch(self) -> None:
        branch = FLUX_BRANCH if self.rng.random() < 0.5 else None
        await self._api("PUT", f"{self._env()}/flux-branch", {"branch": branch})

    async def api_delete(self) -> None:
        await self._api("DELETE", self._env())

    # ----------------------------------------------------------------- the dashboard
    async def _form(self, page: str, action: str, fields: dict[str, str]) -> None:
        """Load a page as a browser does (it sets the CSRF cookie), then post its form."""
        headers = self._browser()
        answer = await self.balancer.send("page", "GET", page, headers=headers)
        match = CSRF_FIELD.search(answer.text) if answer is not None else None
        if match is None:
            return
        await self.balancer.send(
            "form", "POST", action, data={"csrf_token": match.group(1), **fields}, headers=headers
        )

    async def form_create(self) -> None:
        fields = {"name": self._env()}
        if self.rng.random() < 0.5:
            fields["bundle"] = self.rng.choice(BUNDLES)
        else:
            for app, spec in self._apps().items():
                fields[f"app_{app}"] = "on"
                fields[f"prefix_{app}"] = spec.get("prefix", "")
        await self._form("/", "/env", fields)

    async def form_add_app(self) -> None:
        env = self._env()
        fields = {"app": self.rng.choice(APPS), "prefix": self._prefix() or ""}
        await self._form(f"/env/{env}", f"/env/{env}/apps", fields)

    async def form_remove_app(self) -> None:
        env = self._env()
        await self._form(f"/env/{env}", f"/env/{env}/apps/{self.rng.choice(APPS)}/remove", {})

    async def form_extend(self) -> None:
        env = self._env()
        await self._form(f"/env/{env}", f"/env/{env}/extend", {"hours": "4"})

    async def form_delete(self) -> None:
        env = self._env()
        await self._form(f"/env/{env}", f"/env/{env}/delete", {"confirm": env})

    # ----------------------------------------------------------------- the registry
    async def _push_image(self, app: str, prefix: str) -> str:
        sha = "".join(self.rng.choice("0123456789abcdef") for _ in range(7))
        tag = f"{prefix}-{sha}-{next(self._stamps)}"
        await self._sim("POST", "/sim/registry/push", {"image": f"{REGISTRY}/{app}", "tag": tag})
        return tag

    async def webhook_push(self) -> None:
        """A new image of a branch, announced by the registry with a signed delivery."""
        app = self.rng.choice(APPS)
        tag = await self._push_image(app, self.rng.choice([*self.prefixes, "main"]))
        body = json.dumps({"repository": f"{REGISTRY}/{app}", "tag": tag}).encode()
        signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Signature": f"sha256={signature}"}
        for _ in range(2 if self.rng.random() < 0.1 else 1):  # registries redeliver
            await self.balancer.send(
                "webhook", "POST", "/webhooks/registry/generic", data=body, headers=headers
            )

    # ----------------------------------------------------------------- behind Kollie's back
    async def kubectl_patch(self) -> None:
        env, app = self._env(), self.rng.choice(APPS)
        name = f"{env}-{app}"
        kind = self.rng.randrange(6)
        if kind == 0:
            patch: dict[str, Any] = {"metadata": {"annotations": {"kollie.io/owner": "ops@x.io"}}}
            await self._kube("PATCH", f"{CM_PATH}/{env}", patch, MERGE)
        elif kind == 1:
            patch = {"spec": {"suspend": self.rng.random() < 0.5}}
            await self._kube("PATCH", f"{KS_PATH}/{name}", patch, MERGE)
        elif kind == 2:
            tag = f"main-{self.rng.randrange(16**7):07x}-{self.rng.randrange(10**9)}"
            patch = {"spec": {"postBuild": {"substitute": {"image_tag": tag}}}}
            await self._kube("PATCH", f"{KS_PATH}/{name}", patch, MERGE)
        elif kind == 3:
            patch = {"metadata": {"labels": {"team": self.rng.choice(["a", "b"])}}}
            await self._kube("PATCH", f"{KS_PATH}/{name}", patch, MERGE)
        elif kind == 4:
            await self._kube("DELETE", f"{KS_PATH}/{name}")
        else:
            await self._kube("DELETE", f"{CM_PATH}/{env}")

    async def flux_health(self) -> None:
        name = f"{self._env()}-{self.rng.choice(APPS)}"
        failing = self.rng.random() < 0.5
        body = {"namespace": "kollie", "name": name}
        if failing:
            body["message"] = "health check failed: deployment not ready (soak)"
        await self._sim("PUT", "/sim/flux/failures", body, missing_ok=True)

    async def _rescan(self, app: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": now}}}
        await self._kube("PATCH", f"{IR_PATH}/{app}", patch, MERGE)

    # ----------------------------------------------------------------- emulator transport
    async def _sim(
        self, method: str, path: str, body: dict[str, Any], *, missing_ok: bool = False
    ) -> None:
        for _ in range(50):  # the emulator may be restarting (faults spare /sim otherwise)
            try:
                async with self.http.request(method, self.emulator + path, json=body) as r:
                    if r.status < 300 or (missing_ok and r.status == 404):
                        return
                    raise RuntimeError(f"{method} {path}: {r.status} {await r.text()}")
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{method} {path}: the emulator stayed unreachable")

    async def _kube(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """A kubectl-style write, retried through injected faults like kubectl's own retries;
        404 (the object is gone) and 409 (it is being deleted) are answers, not failures."""
        data = json.dumps(body).encode() if body is not None else None
        for _ in range(50):
            try:
                async with self.http.request(
                    method, self.emulator + path, data=data, headers=headers
                ) as r:
                    if r.status < 300 or r.status in (404, 409):
                        return
                    if r.status != 429 and r.status < 500:
                        raise RuntimeError(f"{method} {path}: {r.status} {await r.text()}")
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{method} {path}: the API server kept failing")
