"""Status conditions, durations and timestamps as the Flux controllers write them.

Flux keeps `lastTransitionTime` when a condition is set again with the same status, reason
and message (fluxcd/pkg/runtime/conditions), always stamps the object's generation on the
condition, and orders conditions Stalled, Reconciling, Ready, then the rest by type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
HEALTHY = "Healthy"

# Reasons from fluxcd/pkg/apis/meta and the controllers' APIs.
PROGRESSING = "Progressing"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

Condition = dict[str, Any]

_WEIGHTS = {STALLED: 0, RECONCILING: 1, READY: 2}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: Any, default: float) -> float:
    """A Go duration (`1m`, `10m0s`, `1h30m`, `500ms`) in seconds; `default` if absent or
    malformed."""
    if not isinstance(text, str) or not text:
        return default
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Seconds as Go's `time.Duration.String()` writes them: `30s`, `10m0s`, `1h0m0s`, `1.5s`."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{int(minutes)}m{sec_text}"
    return sec_text


def rfc3339(now: datetime) -> str:
    """A `metav1.Time` as serialised: UTC, whole seconds."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Condition | None:
    for c in conditions or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def status_of(obj: Mapping[str, Any] | None, type_: str = READY) -> str:
    """ "True", "False" or "Unknown" (also when the condition is absent)."""
    c = get(((obj or {}).get("status") or {}).get("conditions"), type_)
    return str(c.get("status", "Unknown")) if c else "Unknown"


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    """Ready=True for the object's current generation, as `dependsOn` and `kstatus` read it."""
    if obj is None:
        return False
    status = obj.get("status") or {}
    return status_of(obj) == "True" and status.get("observedGeneration") == obj["metadata"].get(
        "generation"
    )


class Conditions:
    """A mutable copy of an object's conditions, edited the way fluxcd/pkg/runtime/conditions
    does."""

    def __init__(self, obj: Mapping[str, Any], now: datetime) -> None:
        self._items: list[Condition] = [
            dict(c) for c in (obj.get("status") or {}).get("conditions") or []
        ]
        self._generation = int(obj["metadata"].get("generation", 1))
        self._now = rfc3339(now)

    def set(self, type_: str, status: str, reason: str, message: str) -> None:
        new: Condition = {
            "type": type_,
            "status": status,
            "observedGeneration": self._generation,
            "lastTransitionTime": self._now,
            "reason": reason,
            "message": message,
        }
        for i, old in enumerate(self._items):
            if old.get("type") == type_:
                if (old.get("status"), old.get("reason"), old.get("message")) == (
                    status,
                    reason,
                    message,
                ):
                    new["lastTransitionTime"] = old.get("lastTransitionTime", self._now)
                self._items[i] = new
                return
        self._items.append(new)

    def mark_true(self, type_: str, reason: str, message: str) -> None:
        self.set(type_, "True", reason, message)

    def mark_false(self, type_: str, reason: str, message: str) -> None:
        self.set(type_, "False", reason, message)

    def mark_unknown(self, type_: str, reason: str, message: str) -> None:
        self.set(type_, "Unknown", reason, message)

    def mark_stalled(self, reason: str, message: str) -> None:
        """conditions.MarkStalled: Stalled=True, and Reconciling removed."""
        self.delete(RECONCILING)
        self.mark_true(STALLED, reason, message)

    def delete(self, type_: str) -> None:
        self._items = [c for c in self._items if c.get("type") != type_]

    def get(self, type_: str) -> Condition | None:
        return get(self._items, type_)

    def has(self, type_: str) -> bool:
        return self.get(type_) is not None

    def is_true(self, type_: str) -> bool:
        c = self.get(type_)
        return bool(c and c.get("status") == "True")

    def is_false(self, type_: str) -> bool:
        c = self.get(type_)
        return bool(c and c.get("status") == "False")

    def is_unknown(self, type_: str) -> bool:
        c = self.get(type_)
        return c is None or c.get("status") == "Unknown"

    def progressing(self, message: str, *, drift: bool = False) -> None:
        """`reconcile.ProgressiveStatus`: Reconciling=True, and Ready=Unknown unless Ready is
        known."""
        self.mark_true(RECONCILING, PROGRESSING, message)
        if drift or self.is_unknown(READY):
            self.mark_unknown(READY, PROGRESSING, message)

    def retrying(self) -> None:
        """A failed reconcile leaves Reconciling=True with reason ProgressingWithRetry."""
        c = self.get(RECONCILING)
        if c and c.get("status") == "True":
            self.set(RECONCILING, "True", PROGRESSING_WITH_RETRY, str(c.get("message", "")))

    def items(self) -> list[Condition]:
        def key(c: Condition) -> tuple[int, int, str]:
            weight = _WEIGHTS.get(str(c.get("type")), len(_WEIGHTS))
            generation = -int(c.get("observedGeneration") or 0) if weight == len(_WEIGHTS) else 0
            return (weight, generation, str(c.get("type")))

        return sorted(self._items, key=key)
