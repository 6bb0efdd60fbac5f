"""Uptime windows and their GoKubeDownscaler form (DESIGN §6).

An environment runs either *until* a moment (from creation until 19:00 UTC, extendable) or on
a weekly *schedule* (office hours). GoKubeDownscaler's `downscaler/uptime` accepts both
(internal/pkg/values/timespan.go): an absolute span of two RFC 3339 timestamps joined by `-`
(matched by `^(.+Z|.+[+-]\\d{2}:\\d{2}) *- *(.+Z|.+[+-]\\d{2}:\\d{2})$`, each parsed with
`time.RFC3339`), and a relative span `<Day>-<Day> <HH:MM>-<HH:MM> <IANA zone>`. Kollie writes
absolute spans in UTC with a `Z` suffix, which that regex splits unambiguously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SLEEP_HOUR_UTC = 19
MAX_EXTENSION = timedelta(days=14)
"""An environment can be kept up at most this far ahead."""

_SCHEDULE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)-(Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    r"([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d) (\S+)$"
)


class InvalidUptime(ValueError):
    """An extension or schedule that Kollie refuses; the message says why."""


@dataclass(frozen=True)
class Uptime:
    """When an environment is up: from `since` until `until`, or on a weekly `schedule`."""

    mode: Literal["until", "schedule"]
    since: datetime | None = None
    until: datetime | None = None
    schedule: str | None = None

    def downscaler_value(self) -> str:
        if self.mode == "schedule":
            assert self.schedule is not None
            return self.schedule
        assert self.since is not None and self.until is not None
        return f"{stamp(self.since)}-{stamp(self.until)}"

    def as_json(self) -> dict[str, Any]:
        if self.mode == "schedule":
            return {"schedule": self.schedule}
        assert self.since is not None and self.until is not None
        return {"since": stamp(self.since), "until": stamp(self.until)}

    def is_up(self, now: datetime) -> bool | None:
        """Whether the window covers `now` (None for schedules: the downscaler decides)."""
        if self.mode == "schedule":
            return None
        assert self.since is not None and self.until is not None
        return self.since <= now < self.until

    def ended_at(self, now: datetime) -> datetime | None:
        """When an until-window ended (None if it has not, or for schedules)."""
        if self.mode == "until" and self.until is not None and self.until <= now:
            return self.until
        return None


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes and GoKubeDownscaler write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidUptime(f"{text!r} is not an RFC 3339 time such as 2026-01-31T18:00:00Z") from e
    if moment.tzinfo is None:
        raise InvalidUptime(f"{text!r} has no time zone; add Z or an offset such as +01:00")
    return _utc(moment)


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC; InvalidUptime when that falls outside the years 1 to 9999 (such as
    9999-12-31T23:00-08:00), which datetime cannot hold."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidUptime(f"{moment.isoformat()} is out of range") from None


def initial(now: datetime) -> Uptime:
    """A new environment's window: now until 19:00 UTC today, or tomorrow when past 19:00."""
    now = now.astimezone(UTC).replace(microsecond=0)
    until = now.replace(hour=SLEEP_HOUR_UTC, minute=0, second=0)
    if until <= now:
        until += timedelta(days=1)
    return Uptime("until", since=now, until=until)


def check_schedule(schedule: str) -> str:
    m = _SCHEDULE.match(schedule.strip())
    if not m:
        raise InvalidUptime(
            f"{schedule!r} is not a schedule like 'Mon-Fri 07:00-19:00 Europe/London'"
        )
    try:
        ZoneInfo(m.group(7))
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InvalidUptime(f"unknown time zone {m.group(7)!r} in {schedule!r}") from e
    return schedule.strip()


def office_hours(schedule: str) -> Uptime:
    return Uptime("schedule", schedule=check_schedule(schedule))


def extend(
    current: Uptime, now: datetime, *, hours: float | None = None, until: datetime | None = None
) -> Uptime:
    """A longer window: `hours` more (counted from now if the window already ended), or up to
    `until`. Switches a schedule to an until-window only when given an explicit `until`."""
    now = now.astimezone(UTC).replace(microsecond=0)
    if (hours is None) == (until is None):
        raise InvalidUptime("give either hours or until")
    if hours is not None:
        if not 0 < hours <= MAX_EXTENSION.total_seconds() / 3600:
            raise InvalidUptime(
                f"hours must be more than 0 and at most {int(MAX_EXTENSION.days * 24)}"
            )
        if current.mode == "schedule":
            raise InvalidUptime(
                "this environment follows a schedule; set an end time with 'until' to replace it"
            )
        assert current.until is not None
        base = max(current.until, now)
        new_until = (base + timedelta(hours=hours)).replace(microsecond=0)
    else:
        assert until is not None
        new_until = _utc(until).replace(microsecond=0)
        if new_until <= now:
            raise InvalidUptime(f"{stamp(new_until)} is in the past")
    if new_until - now > MAX_EXTENSION:
        raise InvalidUptime(
            f"an environment can be kept up at most {MAX_EXTENSION.days} days ahead "
            f"(until {stamp(now + MAX_EXTENSION)})"
        )
    since = (
        current.since if current.mode == "until" and current.since and current.since <= now else now
    )
    return Uptime("until", since=since, until=new_until)


def from_json(data: Any) -> Uptime | None:
    """The uptime stored in an environment record, or None if absent or unreadable."""
    if not isinstance(data, dict):
        return None
    try:
        if data.get("schedule"):
            return office_hours(str(data["schedule"]))
        if data.get("until"):
            until = parse_stamp(str(data["until"]))
            since = (
                parse_stamp(str(data["since"]))
                if data.get("since")
                else until - timedelta(hours=12)
            )
            return Uptime("until", since=since, until=until)
    except InvalidUptime:
        return None
    return None
