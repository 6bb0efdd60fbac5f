"""`kollie env up|down|status`: the CI interface, with only a URL and a token.

Exit codes: 0 done (up: every app Ready), 1 the environment did not become ready (the failing
apps' Flux messages are printed), 2 a usage, connection or API error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from typing import Any

import aiohttp

POLL = 2.0
_DURATION = re.compile(r"^(\d+)(s|m|h)?$")


class CliError(Exception):
    pass


def duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 900, 90s, 15m or 1h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def add_parser(sub: Any) -> None:
    env = sub.add_parser(
        "env", help="bring environments up or down from CI (uses KOLLIE_URL and KOLLIE_TOKEN)"
    )
    env.add_argument(
        "--url", default=os.environ.get("KOLLIE_URL"), help="Kollie's URL (default: $KOLLIE_URL)"
    )
    env.add_argument(
        "--token", default=os.environ.get("KOLLIE_TOKEN"), help="API token (default: $KOLLIE_TOKEN)"
    )
    verbs = env.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser(
        "up", help="create or update an environment, optionally waiting until it is Ready"
    )
    up.add_argument("name")
    up.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="APP[=PREFIX]",
        help="an app, on a branch prefix if given; repeatable",
    )
    up.add_argument("--bundle", help="a bundle of apps from the catalog")
    up.add_argument("--wait", action="store_true", help="wait until every app is Ready")
    up.add_argument(
        "--timeout", type=duration, default=900.0, help="how long to wait (default 15m)"
    )
    up.add_argument(
        "--failure-grace",
        type=duration,
        default=120.0,
        help="give up when an app has been Failed this long (default 2m)",
    )
    down = verbs.add_parser("down", help="delete an environment (succeeds if it is already gone)")
    down.add_argument("name")
    status = verbs.add_parser("status", help="show an environment")
    status.add_argument("name")
    status.add_argument("--json", action="store_true", help="print the API's JSON")


class Client:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(
        self, session: aiohttp.ClientSession, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        try:
            async with session.request(
                method,
                self.url + path,
                json=body,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as r:
                text = await r.text()
                try:
                    return r.status, json.loads(text)
                except ValueError:
                    return r.status, {"error": "not_json", "message": text[:200]}
        except (aiohttp.ClientError, TimeoutError) as e:
            raise CliError(f"cannot reach Kollie at {self.url}: {e}") from e


def _say(text: str) -> None:
    print(text, flush=True)


def _apps(specs: list[str]) -> dict[str, dict[str, str]]:
    apps: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, _, prefix = spec.partition("=")
        if not name:
            raise CliError(f"--app {spec!r}: expected APP or APP=PREFIX")
        apps[name] = {"prefix": prefix} if prefix else {}
    return apps


def _summary(env: dict[str, Any]) -> str:
    return ", ".join(f"{a['name']}={a['state']}" for a in env.get("apps", []))


_MARKS = {True: "ok", False: "BROKEN", None: "..."}


def explain(app: dict[str, Any], indent: str = "    ") -> list[str]:
    """An app's diagnosis as lines of text: why, the chain followed, where to look further."""
    found = app.get("diagnosis")
    if not found:
        return []
    cause = found["cause"]
    lines = [
        f"{indent}why: {found['summary']}",
        f"{indent}cause: {cause['kind']} {cause['namespace']}/{cause['name']}: "
        f"{cause['reason']}: {cause['message']}",
        f"{indent}chain:",
    ]
    for step in found["steps"]:
        where = f"{step['kind']} {step['namespace']}/{step['name']}"
        lines.append(f"{indent}  [{_MARKS[step['ok']]}] {where}: {step['summary']}")
    if found["commands"]:
        lines.append(f"{indent}look further:")
        lines.extend(f"{indent}  {command}" for command in found["commands"])
    return lines


async def up(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"apps": _apps(args.app)}
    if args.bundle:
        body["bundle"] = args.bundle
    async with aiohttp.ClientSession() as session:
        status, env = await client.call(session, "PUT", f"/api/v1/environments/{args.name}", body)
        if status not in (200, 201):
            raise CliError(f"{status} {env.get('error')}: {env.get('message')}")
        _say(f"{'created' if status == 201 else 'updated'} {args.name}: {_summary(env)}")
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.timeout
        failing_since: dict[str, float] = {}
        last = ""
        while True:
            status, env = await client.call(session, "GET", f"/api/v1/environments/{args.name}")
            if status != 200:
                raise CliError(f"{status} {env.get('error')}: {env.get('message')}")
            line = _summary(env)
            if line != last:
                _say(f"  {time.strftime('%H:%M:%S')} {line}")
                last = line
            apps = env.get("apps", [])
            if apps and all(a["ready"] is True for a in apps):
                _say(f"{args.name} is ready")
                for a in apps:
                    for url in a.get("urls") or []:
                        _say(f"  {a['name']}: {url}")
                return 0
            now = time.monotonic()
            for a in apps:
                if a["state"] == "Failed":
                    failing_since.setdefault(a["name"], now)
                else:
                    failing_since.pop(a["name"], None)
            stuck = [
                a
                for a in apps
                if a["name"] in failing_since
                and now - failing_since[a["name"]] >= args.failure_grace
            ]
            if stuck or now >= deadline:
                reason = "failed" if stuck else f"not ready after {args.timeout:g}s"
                _say(f"{args.name} {reason}:")
                for a in stuck or [a for a in apps if a["ready"] is not True]:
                    _say(f"  {a['name']}: {a['state']} ({a['reason']}) {a['message']}")
                    for line in explain(a):
                        _say(line)
                return 1
            await asyncio.sleep(POLL)


async def down(client: Client, args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        status, body = await client.call(session, "DELETE", f"/api/v1/environments/{args.name}")
    if status == 404:
        _say(f"{args.name} does not exist; nothing to do")
        return 0
    if status != 202:
        raise CliError(f"{status} {body.get('error')}: {body.get('message')}")
    _say(f"{args.name} is being deleted")
    return 0


async def show(client: Client, args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        status, env = await client.call(session, "GET", f"/api/v1/environments/{args.name}")
    if status != 200:
        raise CliError(f"{status} {env.get('error')}: {env.get('message')}")
    if args.json:
        _say(json.dumps(env, indent=2))
        return 0
    window = env.get("uptime", {})
    _say(
        f"{env['name']}  owner {env.get('owner')}  "
        f"up until {window.get('until') or window.get('schedule')}"
    )
    for a in env["apps"]:
        message = a["message"] if a["state"] != "Ready" else ""
        _say(
            f"  {a['name']:<12} {a['state']:<12} {a['prefix'] or '':<24} "
            f"{a['imageTag'] or '-'}  {message}"
        )
        for line in explain(a):
            _say(line)
    return 0 if env["apps"] and all(a["ready"] is True for a in env["apps"]) else 1


def run(args: argparse.Namespace) -> int:
    if not args.url:
        print("kollie env: give --url or set KOLLIE_URL", file=sys.stderr)
        return 2
    client = Client(args.url, args.token)
    verb = {"up": up, "down": down, "status": show}[args.verb]
    try:
        return asyncio.run(verb(client, args))
    except CliError as e:
        print(f"kollie env {args.verb}: {e}", file=sys.stderr)
        return 2
