"""Whether an environment sleeps, as GoKubeDownscaler judges `downscaler/uptime`, and when
that next changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kollie import uptime
from kollie.diagnosis_sleep import sleep_state


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026 (the 2nd is a Monday), UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


WINDOW = uptime.Uptime("until", since=at(2, 8), until=at(2, 19))


def test_an_until_window_is_up_until_its_end_and_then_sleeps_until_extended() -> None:
    up = sleep_state(WINDOW, at(2, 12))
    assert up is not None and not up.asleep and up.changes_at == at(2, 19)
    ended = sleep_state(WINDOW, at(2, 19))
    assert ended is not None and ended.asleep
    assert ended.wakes_at is None and ended.changes_at is None and ended.until == at(2, 19)


def test_before_its_window_starts_it_wakes_at_the_start() -> None:
    early = sleep_state(WINDOW, at(2, 7))
    assert early is not None and early.asleep and early.wakes_at == at(2, 8)


def schedule(text: str) -> uptime.Uptime:
    return uptime.office_hours(text)


@pytest.mark.parametrize(
    ("moment", "asleep", "changes_at"),
    [
        (at(2, 12), False, at(2, 19)),  # Monday noon, up until 19:00
        (at(2, 19), True, at(3, 7)),  # the end is exclusive
        (at(6, 20), True, at(9, 7)),  # Friday night: asleep over the weekend
        (at(7, 12), True, at(9, 7)),
    ],
)
def test_office_hours(moment: datetime, asleep: bool, changes_at: datetime) -> None:
    state = sleep_state(schedule("Mon-Fri 07:00-19:00 UTC"), moment)
    assert state is not None and state.asleep is asleep and state.changes_at == changes_at
    assert state.wakes_at == (changes_at if asleep else None)


def test_wrapping_days_and_hours_as_the_downscaler_reads_them() -> None:
    # Fri-Mon wraps over the weekend; 22:00-06:00 wraps over midnight, judged by the weekday of
    # the moment itself (GoKubeDownscaler checks weekday and time of day separately).
    nights = schedule("Fri-Mon 22:00-06:00 UTC")
    assert sleep_state(nights, at(7, 23)).asleep is False  # type: ignore[union-attr]
    assert sleep_state(nights, at(2, 3)).asleep is False  # type: ignore[union-attr]
    assert sleep_state(nights, at(4, 23)).asleep is True  # type: ignore[union-attr]


def test_a_day_ending_at_24_00_runs_to_midnight_in_the_zone() -> None:
    state = sleep_state(schedule("Mon-Fri 08:00-24:00 Europe/London"), at(2, 23, 59))
    assert state is not None and not state.asleep and state.changes_at == at(3, 0)


def test_an_unknown_window_says_nothing() -> None:
    assert sleep_state(None, at(2, 12)) is None
