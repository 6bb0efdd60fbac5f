"""Fault injection for tests: latency, error rates, cut watches.

Faults apply to the Kubernetes API paths (`/api`, `/apis`) only; the admin endpoints that
control them (`/sim/faults`) are never affected.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from aiohttp import web

from kubesim.errors import ApiError


@dataclass
class Faults:
    """Currently injected faults; all off by default."""

    latency: float = 0.0
    """Seconds added before every API request is handled."""
    error_rate: float = 0.0
    """Fraction (0..1) of API requests answered with `error_code` instead of being served."""
    error_code: int = 500
    """500 (InternalError) or 429 (TooManyRequests, sent with `Retry-After`)."""
    retry_after: int = 1
    methods: str = ""
    """Comma-separated HTTP methods the error rate applies to; empty = all."""
    path_pattern: str = ""
    """Regular expression a request path must match for latency and errors to apply; empty = all."""
    watch_event_limit: int = 0
    """Close each watch stream after this many events (0 = never)."""
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply `changes` all together, or none of them (ValueError saying why)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(sorted(known))}")
        wanted = replace(self, **changes)
        wanted.check()
        for key in changes:
            setattr(self, key, getattr(wanted, key))
        self._rng = random.Random(self.seed)

    def check(self) -> None:
        try:
            if not 0.0 <= float(self.error_rate) <= 1.0:
                raise ValueError("error_rate must be between 0 and 1")
            if float(self.latency) < 0 or int(self.watch_event_limit) < 0:
                raise ValueError("latency and watch_event_limit cannot be negative")
        except TypeError as e:
            raise ValueError(f"faults must be numbers: {e}") from e
        if self.error_code not in (429, 500, 502, 503, 504):
            raise ValueError("error_code must be one of 429, 500, 502, 503, 504")
        if not isinstance(self.methods, str) or not isinstance(self.path_pattern, str):
            raise ValueError("methods and path_pattern must be strings")
        try:
            re.compile(self.path_pattern)
        except re.error as e:
            raise ValueError(f"path_pattern is not a regular expression: {e}") from e

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)
        self._rng = random.Random()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _applies(self, request: web.Request) -> bool:
        return not self.path_pattern or re.search(self.path_pattern, request.path_qs) is not None

    async def before(self, request: web.Request) -> None:
        """Delay or fail an API request as configured."""
        if not self._applies(request):
            return
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        methods = {m.strip().upper() for m in self.methods.split(",") if m.strip()}
        if methods and request.method not in methods:
            return
        if self.error_rate > 0 and self._rng.random() < self.error_rate:
            if self.error_code == 429:
                raise ApiError(
                    429,
                    "the server has received too many requests and has asked us to try again later",
                    reason="TooManyRequests",
                    details={"retryAfterSeconds": self.retry_after},
                    headers={"Retry-After": str(self.retry_after)},
                )
            raise ApiError(
                self.error_code,
                'an error on the server ("injected fault") has prevented the request from '
                "succeeding",
            )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
