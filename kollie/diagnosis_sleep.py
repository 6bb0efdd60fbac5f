"""Whether an environment sleeps now, as GoKubeDownscaler judges its `downscaler/uptime`, and
when that next changes.

An until-window (`<since>-<until>`) is up from `since` (inclusive) to `until` (exclusive) and
after that sleeps until extended. A weekly schedule (`Mon-Fri 07:00-19:00 Europe/London`) is
up when the local weekday is in the (possibly wrapping) day range and the local time of day in
`[from, to)` (wrapping past midnight when `from` is after `to`; `24:00` is the end of the
day): GoKubeDownscaler's internal/pkg/values/timespan.go `relativeTimeSpan.isTimeInSpan`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kollie.uptime import Uptime

_SCHEDULE = re.compile(r"^(\w{3})-(\w{3}) (\d{2}):(\d{2})-(\d{2}):(\d{2}) (\S+)$")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class Sleep:
    """An environment's state of sleep at one moment."""

    asleep: bool
    until: datetime | None
    """The end of its until-window (None on a schedule)."""
    schedule: str | None
    wakes_at: datetime | None
    """When it wakes on its own (a schedule's next start); None: only when extended."""
    changes_at: datetime | None
    """When `asleep` next flips without anyone acting; None: never."""


@dataclass(frozen=True, slots=True)
class _Weekly:
    first_day: int
    last_day: int
    start: int
    """Minutes after local midnight."""
    end: int
    zone: ZoneInfo

    def covers(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute + local.second / 60
        if self.start <= self.end:
            in_time = self.start <= minute < self.end
        else:
            in_time = minute >= self.start or minute < self.end
        day = local.weekday()
        if self.first_day <= self.last_day:
            return in_time and self.first_day <= day <= self.last_day
        return in_time and (day >= self.first_day or day <= self.last_day)

    def boundaries(self, after: datetime) -> list[datetime]:
        """Every moment within the next eight days at which `covers` may change, in order."""
        today = after.astimezone(self.zone).date()
        found = []
        for offset in range(9):
            day = today + timedelta(days=offset)
            for minute in (0, self.start, self.end):
                moment = _at(day, minute, self.zone)
                if moment > after:
                    found.append(moment)
        return sorted(set(found))


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    base = datetime.combine(day, time(0), tzinfo=zone)
    return base + timedelta(minutes=minute)


def _weekly(schedule: str) -> _Weekly | None:
    m = _SCHEDULE.match(schedule.strip())
    if not m or m.group(1) not in _DAYS or m.group(2) not in _DAYS:
        return None
    try:
        zone = ZoneInfo(m.group(7))
    except (KeyError, ValueError):
        return None
    return _Weekly(
        _DAYS.index(m.group(1)),
        _DAYS.index(m.group(2)),
        int(m.group(3)) * 60 + int(m.group(4)),
        int(m.group(5)) * 60 + int(m.group(6)),
        zone,
    )


def sleep_state(window: Uptime | None, now: datetime) -> Sleep | None:
    """The environment's state of sleep at `now`; None when its window is unknown."""
    if window is None:
        return None
    if window.mode == "until":
        if window.since is None or window.until is None:
            return None
        if now < window.since:
            return Sleep(True, window.until, None, window.since, window.since)
        if now < window.until:
            return Sleep(False, window.until, None, None, window.until)
        return Sleep(True, window.until, None, None, None)
    weekly = _weekly(window.schedule or "")
    if weekly is None:
        return None
    asleep = not weekly.covers(now)
    changes_at = next((b for b in weekly.boundaries(now) if weekly.covers(b) == asleep), None)
    return Sleep(asleep, None, window.schedule, changes_at if asleep else None, changes_at)
