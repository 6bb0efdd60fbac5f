"""The dashboard's pages and forms. Forms work without JavaScript (post/redirect/get);
static/app.js keeps the pages live from /events."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp_jinja2
import structlog
from aiohttp import web

from kollie import uptime
from kollie.kube import KubeError
from kollie.operations import Actor, OperationError
from web import dashboard
from web.csrf import FIELD, Csrf
from web.errors import ApiError, from_kube, from_refusal
from web.flash import Flash
from web.state import Services, services

log = structlog.get_logger("kollie.web")
routes = web.RouteTableDef()
CSRF = web.AppKey("csrf", Csrf)
FLASH = web.AppKey("flash", Flash)


def _actor(request: web.Request, s: Services) -> Actor:
    actor = s.auth.identify(request)
    if actor is None:
        raise web.HTTPUnauthorized(text="Sign in through the authentication proxy to use Kollie.")
    return actor


def _render(
    request: web.Request,
    template: str,
    context: dict[str, Any] | Callable[[str], dict[str, Any]],
    *,
    status: int = 200,
) -> web.Response:
    """A page for this viewer; `context` may be a function of the viewer's form token."""
    s = services(request)
    csrf = request.app[CSRF]
    actor = s.auth.identify(request)
    token, fresh = csrf.token(request, actor.name if actor else "")
    if callable(context):
        context = context(token)
    catalog = s.current_catalog()
    defaults = {name: app.default_prefix for name, app in catalog.apps.items()}
    flash = request.app[FLASH]
    context = {
        **context,
        "csrf_token": token,
        "user": actor.name if actor else None,
        "defaults": defaults,
        "catalog": s.current_catalog(),
        "synced": s.cache.certain(),
        "message": flash.message(request, actor.name) if actor else None,
        "expires_after": lifetime(s.operations.settings.env_ttl_seconds),
    }
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    if fresh:
        csrf.set_cookie(response, fresh)
    flash.forget(request, response)
    return response


def lifetime(seconds: int) -> str:
    """How long an environment may sleep before it expires, in words ("" when it never does)."""
    if seconds <= 0:
        return ""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 or unit == "minute":
            count = max(1, round(seconds / size))
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")


async def _form(request: web.Request, actor: Actor) -> dict[str, str]:
    """The posted form, if it came from a page Kollie gave this user (CSRF, web.csrf)."""
    csrf = request.app[CSRF]
    foreign = csrf.foreign(request)
    if foreign is not None:
        log.warning("form_refused", path=request.path, actor=actor.name, reason=foreign)
        raise web.HTTPForbidden(
            text="The form did not come from Kollie's own pages; open Kollie and try again."
        )
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if not csrf.check(request, actor.name, form.get(FIELD)):
        raise web.HTTPForbidden(
            text="The form has expired or did not come from Kollie; reload the page and try again."
        )
    return form


def _redirect(request: web.Request, actor: Actor, location: str, message: str) -> web.HTTPSeeOther:
    """To `location`, whose page will say `message` to this user (web.flash)."""
    redirect = web.HTTPSeeOther(location)
    request.app[FLASH].put(redirect, actor.name, message)
    return redirect


_LIST_PATH = re.compile(r"/(\?[A-Za-z0-9_.~%&=+-]*)?")


def _list_to_return_to(form: Mapping[str, str]) -> str | None:
    """The dashboard list (with its filters and page) a form posted from it goes back to; only
    the index itself, so a form cannot send the browser anywhere else."""
    target = form.get("return_to", "")
    return target if _LIST_PATH.fullmatch(target) else None


def _here(request: web.Request) -> str:
    """This list page with its own parameters (search, filters, sort, page) and nothing else:
    where the forms posted from its rows come back to."""
    kept = [(k, v) for k, v in request.query.items() if k in ("q", "mine", "state", "sort", "page")]
    return f"{request.path}?{urlencode(kept)}" if kept else request.path


def _listing(request: web.Request, s: Services, actor: Actor) -> dict[str, Any]:
    """The index page's environments (see web.dashboard) and the stream position they show."""
    return {
        **dashboard.listing(request.query, actor.name, s.fragments),
        "since": s.hub.sequence,
        "return_to": _here(request),
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
    form = await _form(request, actor)
    name = form.get("name", "").strip()
    bundle = form.get("bundle") or None
    apps: dict[str, str | None] = {}
    for app in s.current_catalog().apps:
        if form.get(f"app_{app}") == "on":
            apps[app] = (form.get(f"prefix_{app}") or "").strip() or None
    try:
        await s.operations.put_environment(name, apps=apps, bundle=bundle, actor=actor, new=True)
    except (OperationError, KubeError) as e:
        refusal = _refusal(e)
        page = _render(
            request,
            "index.html",
            {**_listing(request, s, actor), "errors": refusal.message, "form": dict(form)},
            status=refusal.status,
        )
        page.headers.update(refusal.headers)
        return page
    raise _redirect(request, actor, f"/env/{quote(name)}", f"Environment {name} is being created")


@routes.get("/env/{env}", name="environment")
async def environment(request: web.Request) -> web.Response:
    s = services(request)
    _actor(request, s)
    name = request.match_info["env"]
    page = s.fragments.environment(name)
    if page is None:
        return _render(request, "missing.html", {"name": name}, status=404)
    return _render(
        request, "environment.html", lambda token: {"name": name, "body": page.with_token(token)}
    )


@dataclass(frozen=True)
class FormPost:
    """A form posted on an environment's page, from a signed-in user, its CSRF token checked."""

    services: Services
    actor: Actor
    env: str
    form: dict[str, str]
    path: Mapping[str, str]
    """The route's path parameters (`env`, and `app` where the route has one)."""
    request: web.Request

    def back(self, message: str) -> web.HTTPSeeOther:
        """Back to the list the form was posted from (a quick action on a row), otherwise to
        the environment's page, saying what was done."""
        location = _list_to_return_to(self.form) or f"/env/{quote(self.env)}"
        return _redirect(self.request, self.actor, location, message)


FormAction = Callable[[FormPost], Awaitable[web.HTTPSeeOther]]


def _env_form(path: str, name: str) -> Callable[[FormAction], FormAction]:
    """Serve `action` for the form posted to `path`: a refusal is shown on the environment's
    page with its status; otherwise the browser is redirected where the action says."""

    def register(action: FormAction) -> FormAction:
        async def handler(request: web.Request) -> web.StreamResponse:
            s = services(request)
            actor = _actor(request, s)
            form = await _form(request, actor)
            env = request.match_info["env"]
            try:
                redirect = await action(FormPost(s, actor, env, form, request.match_info, request))
            except (OperationError, KubeError) as e:
                return _refused(request, s, env, _refusal(e))
            raise redirect

        routes.post(path, name=name)(handler)
        return action

    return register


def _refusal(e: OperationError | KubeError) -> ApiError:
    """What a form says when its change was refused, or the cluster could not take it (503
    with Retry-After while the API server is unavailable: nothing to fix, try again)."""
    if isinstance(e, KubeError):
        return from_kube(e)
    return from_refusal(e)


def _refused(request: web.Request, s: Services, env: str, e: ApiError) -> web.Response:
    content = s.fragments.environment(env, errors=e.message)
    if content is None:
        return _render(request, "missing.html", {"name": env}, status=404)
    page = _render(
        request,
        "environment.html",
        lambda token: {"name": env, "body": content.with_token(token)},
        status=e.status,
    )
    page.headers.update(e.headers)
    return page


@_env_form("/env/{env}/apps", "add-app")
async def add_app(post: FormPost) -> web.HTTPSeeOther:
    app = post.form.get("app", "")
    prefix = (post.form.get("prefix") or "").strip() or None
    await post.services.operations.add_app(post.env, app, prefix, actor=post.actor)
    return post.back(f"{app} added or switched")


@_env_form("/env/{env}/bundle", "add-bundle")
async def add_bundle(post: FormPost) -> web.HTTPSeeOther:
    s = post.services
    bundle = s.current_catalog().bundles.get(post.form.get("bundle", ""))
    if bundle is None:
        raise OperationError(f"unknown bundle {post.form.get('bundle')!r}")
    present = {a["name"] for a in (s.renderer.one(post.env) or {"apps": []})["apps"]}
    for app in bundle.apps:
        if app not in present:
            await s.operations.add_app(post.env, app, None, actor=post.actor)
    return post.back(f"Bundle {bundle.name} added")


@_env_form("/env/{env}/keep", "keep")
async def keep(post: FormPost) -> web.HTTPSeeOther:
    kept = post.form.get("keep") == "true"
    await post.services.operations.set_keep(post.env, kept, actor=post.actor)
    return post.back("Kept: it will not expire" if kept else "No longer kept")


@_env_form("/env/{env}/schedule", "schedule")
async def schedule(post: FormPost) -> web.HTTPSeeOther:
    try:
        window = uptime.office_hours(post.form.get("schedule", ""))
    except uptime.InvalidUptime as e:
        raise OperationError(str(e)) from e
    await post.services.operations.set_uptime(post.env, window, actor=post.actor)
    return post.back(f"Up on the schedule {window.schedule}")


@_env_form("/env/{env}/flux-branch", "flux-branch")
async def flux_branch(post: FormPost) -> web.HTTPSeeOther:
    branch = (post.form.get("branch") or "").strip() or None
    await post.services.operations.follow_branch(post.env, branch, actor=post.actor)
    if branch:
        return post.back(f"Apps build from branch {branch}")
    return post.back("Apps build from their default branches")


@_env_form("/env/{env}/apps/{app}/remove", "remove-app")
async def remove_app(post: FormPost) -> web.HTTPSeeOther:
    app = post.path["app"]
    await post.services.operations.remove_app(post.env, app, actor=post.actor)
    return post.back(f"{app} removed")


def _until(form: Mapping[str, str]) -> datetime:
    """The form's `until`, a wall-clock time (as `<input type=datetime-local>` sends it) in the
    form's `zone` (the viewer's, filled in by the page's script; UTC without it)."""
    try:
        zone = ZoneInfo(form.get("zone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, a long name
        raise OperationError(f"unknown time zone {form.get('zone')!r}") from None
    try:
        moment = datetime.fromisoformat(form.get("until", ""))
    except ValueError:
        raise OperationError(
            "the end time must be a date and time, such as 2026-12-01T18:00"
        ) from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


@_env_form("/env/{env}/extend", "extend")
async def extend(post: FormPost) -> web.HTTPSeeOther:
    """Extend by `hours`, or up until `until` (see `_until`); on an environment that follows a
    schedule, the forms say that this replaces the schedule with an end time."""
    hours: float | None = None
    until: datetime | None = None
    if post.form.get("until"):
        until = _until(post.form)
    else:
        try:
            hours = float(post.form.get("hours", ""))
        except ValueError:
            raise OperationError("hours must be a number") from None
    operations = post.services.operations
    if operations.follows_schedule(post.env):
        await operations.end_uptime(post.env, hours=hours, until=until, actor=post.actor)
        if hours is None:
            return post.back("Schedule replaced by an end time")
        return post.back(f"Schedule replaced: up for {hours:g} hours")
    await operations.extend(post.env, hours=hours, until=until, actor=post.actor)
    if hours is None:
        return post.back(f"{post.env} is up until the time you chose")
    return post.back(f"Extended by {hours:g} hours")


@_env_form("/env/{env}/delete", "delete")
async def delete(post: FormPost) -> web.HTTPSeeOther:
    if post.form.get("confirm", "") != post.env:
        raise OperationError(f"type the environment's name ({post.env}) to confirm the deletion")
    await post.services.operations.delete_environment(post.env, actor=post.actor)
    location = _list_to_return_to(post.form) or "/"
    return _redirect(post.request, post.actor, location, f"Environment {post.env} is being deleted")


@routes.get("/env/{env}/delete", name="confirm-delete")
async def confirm_delete(request: web.Request) -> web.Response:
    """The confirmation a row's Delete link leads to (the list opens it as a dialog instead
    when JavaScript runs)."""
    s = services(request)
    _actor(request, s)
    name = request.match_info["env"]
    env = s.renderer.one(name)
    if env is None:
        return _render(request, "missing.html", {"name": name}, status=404)
    back = request.query.get("return_to", "")
    return_to = back if _LIST_PATH.fullmatch(back) else "/"
    return _render(request, "delete.html", {"env": env, "return_to": return_to})
