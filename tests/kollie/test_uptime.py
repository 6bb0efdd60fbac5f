from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from kollie import uptime

# GoKubeDownscaler's absolute timespan (internal/pkg/values/timespan.go).
ABSOLUTE = re.compile(r"^(.+Z|.+[+-]\d{2}:\d{2}) *- *(.+Z|.+[+-]\d{2}:\d{2})$")


def test_new_window_ends_at_19_utc() -> None:
    w = uptime.initial(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    assert w.until == datetime(2026, 3, 1, 19, 0, tzinfo=UTC)
    late = uptime.initial(datetime(2026, 12, 31, 19, 0, tzinfo=UTC))
    assert late.until == datetime(2027, 1, 1, 19, 0, tzinfo=UTC)
    leap = uptime.initial(datetime(2028, 2, 28, 20, 0, tzinfo=UTC))
    assert leap.until == datetime(2028, 2, 29, 19, 0, tzinfo=UTC)


def test_downscaler_value_is_an_absolute_span() -> None:
    value = uptime.initial(datetime(2026, 3, 29, 0, 30, tzinfo=UTC)).downscaler_value()
    m = ABSOLUTE.match(value)
    assert m is not None
    assert (m.group(1), m.group(2)) == ("2026-03-29T00:30:00Z", "2026-03-29T19:00:00Z")
    for part in m.groups():
        datetime.fromisoformat(part.replace("Z", "+00:00"))


def test_extend() -> None:
    now = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    w = uptime.extend(uptime.initial(now), now, hours=3)
    assert w.until == datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
    asleep = uptime.extend(w, now + timedelta(days=1), hours=2)
    assert asleep.until == datetime(2026, 3, 2, 20, 0, tzinfo=UTC), (
        "an ended window extends from now"
    )
    with pytest.raises(uptime.InvalidUptime):
        uptime.extend(w, now, hours=24 * 15)
    with pytest.raises(uptime.InvalidUptime):
        uptime.extend(w, now, until=now - timedelta(hours=1))
    office = uptime.office_hours("Mon-Fri 07:00-19:00 Europe/London")
    with pytest.raises(uptime.InvalidUptime, match="schedule"):
        uptime.extend(office, now, hours=1)
    replaced = uptime.extend(office, now, until=now + timedelta(hours=5))
    assert replaced.mode == "until"


def test_schedules() -> None:
    assert (
        uptime.office_hours("Mon-Fri 07:00-19:00 Europe/London").downscaler_value()
        == "Mon-Fri 07:00-19:00 Europe/London"
    )
    with pytest.raises(uptime.InvalidUptime):
        uptime.office_hours("weekdays 9-5")
    with pytest.raises(uptime.InvalidUptime):
        uptime.office_hours("Mon-Fri 07:00-19:00 Mars/Olympus")


def test_json_round_trip() -> None:
    w = uptime.initial(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    assert uptime.from_json(w.as_json()) == w
    assert uptime.from_json({"until": "garbage"}) is None
