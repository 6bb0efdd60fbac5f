"""Human wording of uptime windows: "sleeps in 3h", "asleep", "expires in 2 days"."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def span(seconds: float) -> str:
    seconds = abs(int(seconds))
    if seconds < 90:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 90:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24} days"


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def uptime_label(env: dict[str, Any], now: datetime) -> str:
    """One line about when an environment sleeps or goes away."""
    uptime = env.get("uptime") or {}
    if uptime.get("schedule"):
        label = f"up {uptime['schedule']}"
    else:
        until = _parse(uptime.get("until"))
        if until is None:
            label = ""
        elif until > now:
            label = f"sleeps in {span((until - now).total_seconds())}"
        else:
            label = "asleep"
    expires = _parse(env.get("expiresAt"))
    if expires is not None and expires > now and until_passed(uptime, now):
        label += f", expires in {span((expires - now).total_seconds())}"
    if env.get("keep"):
        label += " (kept)"
    return label


def until_passed(uptime: dict[str, Any], now: datetime) -> bool:
    until = _parse(uptime.get("until"))
    return until is not None and until <= now


def age(created_at: str | None, now: datetime) -> str:
    when = _parse(created_at)
    return span((now - when).total_seconds()) if when else ""
