"""Reading and checking JSON request bodies of the API: 415, 413, 400 and 422 before any work."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from kollie import uptime
from web.errors import ApiError, bad_request, unprocessable

MAX_BODY = 1024 * 1024


BODY_SECONDS = 10.0
"""How long a request body may take to arrive. A client that stalls (or trickles a byte at a
time to hold a connection) is answered 408 rather than holding a handler for ever."""


async def read_body(
    request: web.Request, limit: int = MAX_BODY, *, seconds: float = BODY_SECONDS
) -> bytes:
    """The whole body, at most `limit` bytes (413 beyond), within `seconds` (408 after).

    `StreamReader.read(n)` returns what has arrived so far, not n bytes: a body split across
    packets must be read to its end."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the body is larger than {limit} bytes")
    if request.content.is_eof():  # all of it arrived with the headers, as it usually does
        body = request.content.read_nowait()
        if len(body) > limit:
            raise ApiError(413, "too_large", f"the body is larger than {limit} bytes")
        return body
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while chunk := await request.content.read(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "too_large", f"the body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408, "timeout", f"the request body did not arrive within {seconds:g} s"
        ) from None
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """JSON from untrusted bytes; 400 for anything that is not (invalid UTF-8, too deep)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise bad_request("malformed JSON: nested too deeply") from None
    except ValueError as e:
        raise bad_request(f"malformed JSON: {e}") from e


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await read_body(request)
    body = parse_json(raw or b"{}")
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def _only(body: dict[str, Any], allowed: set[str], where: str = "body") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        names = ", ".join(unknown)
        raise unprocessable(
            f"unknown field(s) in {where}: {names}; allowed: {', '.join(sorted(allowed))}"
        )


def _prefix(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise unprocessable(f"{where}: prefix must be a non-empty string")
    return value


@dataclass(frozen=True)
class EnvironmentRequest:
    apps: dict[str, str | None]
    bundle: str | None
    window: uptime.Uptime | None


def environment_request(body: dict[str, Any], now: datetime) -> EnvironmentRequest:
    _only(body, {"apps", "bundle", "uptime"})
    raw_apps = body.get("apps", {})
    apps: dict[str, str | None] = {}
    if isinstance(raw_apps, list):
        for i, item in enumerate(raw_apps):
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise unprocessable(
                    f'apps[{i}]: expected an app name or {{"name": ..., "prefix": ...}}'
                )
            if item["name"] in apps:
                raise unprocessable(f"apps[{i}]: app {item['name']!r} is listed twice")
            _only(item, {"name", "prefix"}, f"apps[{i}]")
            apps[item["name"]] = _prefix(item.get("prefix"), f"apps[{i}]")
    elif isinstance(raw_apps, dict):
        for name, spec in raw_apps.items():
            spec = spec or {}
            if not isinstance(spec, dict):
                raise unprocessable(
                    f'apps.{name}: expected an object like {{"prefix": "feature-x"}}'
                )
            _only(spec, {"prefix"}, f"apps.{name}")
            apps[name] = _prefix(spec.get("prefix"), f"apps.{name}")
    else:
        raise unprocessable('apps must be an object ({"web": {"prefix": ...}}) or a list')
    bundle = body.get("bundle")
    if bundle is not None and not isinstance(bundle, str):
        raise unprocessable("bundle must be a string")
    window = None
    if body.get("uptime") is not None:
        window = uptime_request(body["uptime"], now)
    return EnvironmentRequest(apps, bundle, window)


@dataclass(frozen=True)
class UptimeChange:
    """A requested uptime: a weekly `schedule`, or an end time (`hours` more, or `until`)."""

    schedule: uptime.Uptime | None = None
    hours: float | None = None
    until: datetime | None = None


def uptime_change(raw: Any) -> UptimeChange:
    """`{"schedule": ...}`, or exactly one of hours, days and until."""
    if not isinstance(raw, dict):
        raise unprocessable("uptime must be an object with hours, until or schedule")
    _only(raw, {"hours", "days", "until", "schedule"}, "uptime")
    if "schedule" not in raw:
        hours, until = extension(raw)
        return UptimeChange(hours=hours, until=until)
    if not isinstance(raw["schedule"], str):
        raise unprocessable("uptime.schedule must be a string")
    try:
        return UptimeChange(schedule=uptime.office_hours(raw["schedule"]))
    except uptime.InvalidUptime as e:
        raise unprocessable(str(e)) from e


def uptime_request(raw: Any, now: datetime) -> uptime.Uptime:
    """The window a PUT of an environment asks for: a schedule, or an end time from now."""
    change = uptime_change(raw)
    if change.schedule is not None:
        return change.schedule
    try:
        return uptime.extend(uptime.initial(now), now, hours=change.hours, until=change.until)
    except uptime.InvalidUptime as e:
        raise unprocessable(str(e)) from e


def extension(body: dict[str, Any]) -> tuple[float | None, datetime | None]:
    """`{"hours": n}`, `{"days": n}` or `{"until": "<RFC 3339>"}`, exactly one of them."""
    given = [k for k in ("hours", "days", "until") if body.get(k) is not None]
    if len(given) != 1:
        raise unprocessable("give exactly one of hours, days or until")
    if given[0] in ("hours", "days"):
        amount = body[given[0]]
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise unprocessable(f"{given[0]} must be a number")
        try:
            return float(amount) * (24 if given[0] == "days" else 1), None
        except OverflowError:  # an integer too large for a float (JSON allows any length)
            raise unprocessable(f"{given[0]} is far too large") from None
    until = body["until"]
    if not isinstance(until, str):
        raise unprocessable("until must be an RFC 3339 time")
    try:
        return None, uptime.parse_stamp(until)
    except uptime.InvalidUptime as e:
        raise unprocessable(str(e)) from e
