"""Calls to the replicas as a Service would route them, and what each call was answered.

Every call to Kollie is classified:

- `ok`: 2xx or 3xx;
- `refused`: a 4xx that says why (JSON `{"error", "message"}` on the API and webhooks, a page
  on the dashboard): the request was wrong or lost a race, and nothing was changed;
- `retryable`: 503 with `Retry-After`, the one error a client may retry blindly;
- `dropped`: anything else (a reset connection, a timeout, a 500, a 503 without `Retry-After`):
  the caller cannot know whether its change happened. The soak requires none.

A retryable answer is retried after its `Retry-After` (capped), as a CI job would.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from bench.soak.processes import Replica

Outcome = Literal["ok", "refused", "retryable", "dropped"]
MAX_ATTEMPTS = 6
RETRY_AFTER_CAP = 2.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.text)
        except ValueError:
            return None


@dataclass
class Calls:
    """Counts of answers per door (api, form, page, webhook) and outcome."""

    outcomes: Counter[tuple[str, Outcome]] = field(default_factory=Counter)
    dropped: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def record(self, door: str, outcome: Outcome, detail: str) -> None:
        self.outcomes[(door, outcome)] += 1
        if outcome == "dropped" and len(self.dropped) < 50:
            self.dropped.append(detail)

    def total(self, outcome: Outcome | None = None) -> int:
        return sum(n for (_, o), n in self.outcomes.items() if outcome is None or o == outcome)


def classify(door: str, answer: Answer) -> Outcome:
    if answer.status < 400:
        return "ok"
    if answer.status == 503 and "Retry-After" in answer.headers:
        return "retryable"
    if answer.status < 500:
        if door in ("api", "webhook"):
            body = answer.json()
            clear = isinstance(body, dict) and body.get("error") and body.get("message")
            return "refused" if clear else "dropped"
        return "refused"
    return "dropped"


@dataclass
class Balancer:
    """Picks a replica in rotation for each request, like a Service's endpoints.

    A replica leaves the rotation when it is told to stop (the endpoint is marked terminating);
    requests already sent to it must still be answered: that is the graceful shutdown's part.
    """

    replicas: Sequence[Replica]
    calls: Calls
    rng: random.Random
    timeout: float = 30.0
    out_of_rotation: set[str] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Balancer:
        # The cookie jar plays one browser: the dashboard's CSRF cookie is sent to every replica.
        self._session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    def pick(self) -> Replica:
        live = [r for r in self.replicas if r.name not in self.out_of_rotation]
        return self.rng.choice(live or list(self.replicas))

    async def send(
        self,
        door: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        replica: Replica | None = None,
    ) -> Answer | None:
        """One call, retried while it is answered 503 with Retry-After; None if dropped."""
        answer: Answer | None = None
        for _ in range(MAX_ATTEMPTS):
            target = replica or self.pick()
            try:
                async with self.session.request(
                    method,
                    target.url + path,
                    json=json,
                    data=data,
                    headers=dict(headers or {}),
                    allow_redirects=False,
                ) as r:
                    answer = Answer(r.status, dict(r.headers), await r.text(errors="replace"))
            except (aiohttp.ClientError, TimeoutError) as e:
                self.calls.record(
                    door, "dropped", f"{method} {path} to {target.name}: {type(e).__name__}: {e}"
                )
                return None
            outcome = classify(door, answer)
            self.calls.statuses[answer.status] += 1
            self.calls.record(
                door,
                outcome,
                f"{method} {path} to {target.name}: {answer.status} {answer.text[:300]}",
            )
            if outcome != "retryable":
                return answer
            try:
                delay = float(answer.headers["Retry-After"])
            except ValueError:
                delay = 1.0
            await asyncio.sleep(min(max(delay, 0.05), RETRY_AFTER_CAP))
        return answer
