"""The dashboard's pages and forms. Forms work without JavaScript (post/redirect/get);
static/app.js keeps the pages live from /events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from kollie import uptime
from kollie.operations import Actor, OperationError
from web.csrf import FIELD, Csrf, set_cookie
from web.state import Services, services
from web.timefmt import age, uptime_label

routes = web.RouteTableDef()
CSRF = web.AppKey("csrf", Csrf)


def _actor(request: web.Request, s: Services) -> Actor:
    actor = s.auth.identify(request)
    if actor is None:
        raise web.HTTPUnauthorized(text="Sign in through the authentication proxy to use Kollie.")
    return actor


def _render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    s = services(request)
    csrf = request.app[CSRF]
    token, fresh = csrf.token(request)
    actor = s.auth.identify(request)
    catalog = s.current_catalog()
    defaults = {name: app.default_prefix for name, app in catalog.apps.items()}
    context = {
        **context,
        "csrf_token": token,
        "user": actor.name if actor else None,
        "defaults": defaults,
        "catalog": s.current_catalog(),
        "synced": s.cache.is_synced(),
        "message": request.query.get("msg"),
    }
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    if fresh:
        set_cookie(response, fresh)
    return response


async def _form(request: web.Request) -> dict[str, str]:
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if not request.app[CSRF].check(request, form.get(FIELD)):
        raise web.HTTPForbidden(
            text="The form has expired or did not come from Kollie; reload the page and try again."
        )
    return form


def _redirect(location: str, message: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{location}?msg={quote(message)}")


STATES = ("Ready", "Progressing", "Failed", "Suspended", "Deleting")
SORTS: dict[str, tuple[Callable[[dict[str, Any]], Any], bool]] = {
    "name": (lambda e: e["name"], False),
    "newest": (lambda e: e.get("createdAt") or "", True),
    "owner": (lambda e: (e.get("owner") or "", e["name"]), False),
}


def _listing(request: web.Request, s: Services, actor: Actor) -> dict[str, Any]:
    """The environments the index shows, with its filters (mine, text, state) and sort."""
    environments = s.renderer.all()
    counts = {
        state: sum(1 for e in environments for a in e["apps"] if a["state"] == state)
        for state in STATES
    }
    if request.query.get("mine") == "1":
        environments = [e for e in environments if e.get("owner") == actor.name]
    text = request.query.get("q", "").strip().lower()
    if text:
        environments = [
            e
            for e in environments
            if text in e["name"] or any(text in (a["prefix"] or "").lower() for a in e["apps"])
        ]
    state = request.query.get("state", "")
    if state in STATES:
        environments = [e for e in environments if any(a["state"] == state for a in e["apps"])]
    sort = request.query.get("sort", "name") if request.query.get("sort") in SORTS else "name"
    key, reverse = SORTS[sort]
    environments = sorted(environments, key=key, reverse=reverse)
    now = s.clock()
    labels = {e["name"]: uptime_label(e, now) for e in environments}
    ages = {e["name"]: age(e.get("createdAt"), now) for e in environments}
    return {
        "environments": environments,
        "query": text,
        "mine": request.query.get("mine") == "1",
        "state": state,
        "states": STATES,
        "sort": sort,
        "counts": counts,
        "labels": labels,
        "ages": ages,
    }


@routes.get("/", name="index")
async def index(request: web.Request) -> web.Response:
    s = services(request)
    actor = _actor(request, s)
    return _render(
        request, "index.html", {**_listing(request, s, actor), "errors": None, "form": {}}
    )


@routes.post("/env", name="create")
async def create(request: web.Request) -> web.StreamResponse:
    s = services(request)
    actor = _actor(request, s)
    form = await _form(request)
    name = form.get("name", "").strip()
    bundle = form.get("bundle") or None
    apps: dict[str, str | None] = {}
    for app in s.current_catalog().apps:
        if form.get(f"app_{app}") == "on":
            apps[app] = (form.get(f"prefix_{app}") or "").strip() or None
    try:
        await s.operations.put_environment(name, apps=apps, bundle=bundle, actor=actor)
    except OperationError as e:
        return _render(
            request,
            "index.html",
            {**_listing(request, s, actor), "errors": e.message, "form": dict(form)},
            status=e.status,
        )
    raise _redirect(f"/env/{quote(name)}", f"Environment {name} is being created")


@routes.get("/env/{env}", name="environment")
async def environment(request: web.Request) -> web.Response:
    s = services(request)
    _actor(request, s)
    name = request.match_info["env"]
    body = s.renderer.one(name)
    if body is None:
        return _render(request, "missing.html", {"name": name}, status=404)
    history = [
        {
            "time": e.time,
            "reason": e.reason,
            "message": e.message,
            "actor": e.actor,
            "via": e.via,
            "app": e.app,
        }
        for e in s.cache.history(name, 50)
    ]
    return _render(
        request,
        "environment.html",
        {"env": body, "history": history, "errors": None, "label": uptime_label(body, s.clock())},
    )


async def _env_action(request: web.Request, action: str) -> web.StreamResponse:
    s = services(request)
    actor = _actor(request, s)
    form = await _form(request)
    name = request.match_info["env"]
    back = f"/env/{quote(name)}"
    try:
        if action == "add":
            app = form.get("app", "")
            await s.operations.add_app(
                name, app, (form.get("prefix") or "").strip() or None, actor=actor
            )
            message = f"{app} added or switched"
        elif action == "bundle":
            bundle = s.current_catalog().bundles.get(form.get("bundle", ""))
            if bundle is None:
                raise OperationError(f"unknown bundle {form.get('bundle')!r}")
            present = {a["name"] for a in (s.renderer.one(name) or {"apps": []})["apps"]}
            for app in bundle.apps:
                if app not in present:
                    await s.operations.add_app(name, app, None, actor=actor)
            message = f"Bundle {bundle.name} added"
        elif action == "keep":
            keep = form.get("keep") == "true"
            await s.operations.set_keep(name, keep, actor=actor)
            message = "Kept: it will not expire" if keep else "No longer kept"
        elif action == "schedule":
            try:
                window = uptime.office_hours(form.get("schedule", ""))
            except uptime.InvalidUptime as e:
                raise OperationError(str(e)) from e
            await s.operations.set_uptime(name, window, actor=actor)
            message = f"Up on the schedule {window.schedule}"
        elif action == "branch":
            branch = (form.get("branch") or "").strip() or None
            await s.operations.follow_branch(name, branch, actor=actor)
            message = (
                f"Apps build from branch {branch}"
                if branch
                else "Apps build from their default branches"
            )
        elif action == "remove":
            app = request.match_info["app"]
            await s.operations.remove_app(name, app, actor=actor)
            message = f"{app} removed"
        elif action == "extend":
            try:
                hours = float(form.get("hours", ""))
            except ValueError:
                raise OperationError("hours must be a number") from None
            record = s.cache.environment(name)
            current = uptime.from_json(record.settings.get("uptime")) if record else None
            if current is not None and current.mode == "schedule":
                # The form says so on a scheduled environment: this replaces the schedule.
                try:
                    window = uptime.extend(uptime.initial(s.clock()), s.clock(), hours=hours)
                except uptime.InvalidUptime as e:
                    raise OperationError(str(e)) from e
                await s.operations.set_uptime(name, window, actor=actor)
                message = f"Schedule replaced: up for {hours:g} hours"
            else:
                window = await s.operations.extend(name, hours=hours, until=None, actor=actor)
                message = f"Extended by {hours:g} hours, until {window.as_json().get('until')}"
        else:
            if form.get("confirm", "") != name:
                raise OperationError(
                    f"type the environment's name ({name}) to confirm the deletion"
                )
            await s.operations.delete_environment(name, actor=actor)
            raise _redirect("/", f"Environment {name} is being deleted")
    except OperationError as e:
        body = s.renderer.one(name)
        if body is None:
            return _render(request, "missing.html", {"name": name}, status=404)
        return _render(
            request,
            "environment.html",
            {
                "env": body,
                "history": [],
                "errors": e.message,
                "label": uptime_label(body, s.clock()),
            },
            status=e.status,
        )
    raise _redirect(back, message)


def _action(action: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _env_action(request, action)

    return handler


for _path, _name, _act in (
    ("/env/{env}/apps", "add-app", "add"),
    ("/env/{env}/bundle", "add-bundle", "bundle"),
    ("/env/{env}/keep", "keep", "keep"),
    ("/env/{env}/schedule", "schedule", "schedule"),
    ("/env/{env}/flux-branch", "flux-branch", "branch"),
    ("/env/{env}/apps/{app}/remove", "remove-app", "remove"),
    ("/env/{env}/extend", "extend", "extend"),
    ("/env/{env}/delete", "delete", "delete"),
):
    routes.post(_path, name=_name)(_action(_act))
