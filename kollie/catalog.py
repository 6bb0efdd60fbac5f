"""The catalog: which apps can be deployed, how, and in which bundles (DESIGN §3).

Loaded from one YAML file and checked as a whole: every problem is reported with its place
(`apps[2].name: ...`), and an invalid file never replaces the last good catalog.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml

from kollie.naming import MAX_APP, InvalidName, check_prefix, label_problem, subdomain_problem

log = structlog.get_logger("kollie.catalog")


class CatalogError(ValueError):
    """The catalog file is unreadable or invalid; `problems` lists every issue found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid catalog: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ObjectRef:
    name: str
    namespace: str = "flux-system"


@dataclass(frozen=True)
class AppTemplate:
    """How to deploy one application into an environment."""

    name: str
    git_repository: ObjectRef
    path: str
    image_repository: ObjectRef
    default_prefix: str = "main"
    substitutions: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    timeout: str = "5m"
    interval: str = "5m"
    description: str = ""
    service_account_name: str | None = None
    """The ServiceAccount (in Kollie's namespace) kustomize-controller applies this app as: the
    app's own, else the catalog's default; None leaves it to the controller's default."""
    wait: bool = False
    """Flux waits for everything the app applies to be ready (the Kustomization's `wait`,
    judged by kstatus within `timeout`) before the app counts as Ready."""


@dataclass(frozen=True)
class Bundle:
    name: str
    apps: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class AutoCreateRule:
    """Create an environment with `bundle` when a pushed tag's prefix matches `prefix`."""

    prefix: re.Pattern[str]
    bundle: str
    add_pushed_apps: bool = False
    """`addPushedApps`: a push of an app on a matching prefix also joins environments that
    already follow that prefix (added, or switched from another prefix). Off by default: a push
    otherwise only moves apps an environment already runs on the prefix."""


@dataclass(frozen=True)
class Catalog:
    apps: Mapping[str, AppTemplate]
    bundles: Mapping[str, Bundle]
    substitutions: Mapping[str, str] = field(default_factory=dict)
    auto_create: tuple[AutoCreateRule, ...] = ()
    service_account_name: str | None = None
    """The default of every app's `service_account_name`."""

    def app(self, name: str) -> AppTemplate | None:
        return self.apps.get(name)

    def apps_for_image_repository(self, namespace: str, name: str) -> list[AppTemplate]:
        return [
            a
            for a in self.apps.values()
            if a.image_repository.name == name and a.image_repository.namespace == namespace
        ]


EMPTY = Catalog(apps={}, bundles={})

_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def str_field(
        self,
        where: str,
        data: Mapping[str, Any],
        key: str,
        *,
        required: bool = True,
        default: str = "",
    ) -> str:
        value = data.get(key, None)
        if value is None:
            if required:
                self.problems.append(f"{where}.{key}: required")
            return default
        if not isinstance(value, str):
            self.problems.append(f"{where}.{key}: must be a string")
            return default
        return value

    def mapping(self, where: str, value: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problems.append(f"{where}: must be a mapping")
            return {}
        return value

    def substitutions(self, where: str, value: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, item in self.mapping(where, value).items():
            if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                self.problems.append(
                    f"{where}.{key}: substitution names are letters, digits and '_'"
                )
            elif isinstance(item, (dict, list)) or item is None:
                self.problems.append(f"{where}.{key}: must be a string, number or boolean")
            else:
                out[key] = str(item).lower() if isinstance(item, bool) else str(item)
        return out

    def service_account(self, where: str, data: Mapping[str, Any]) -> str | None:
        """An optional ServiceAccount name; `where` is empty at the catalog's top level."""
        place = f"{where}.serviceAccountName" if where else "serviceAccountName"
        name = data.get("serviceAccountName")
        if name is None:
            return None
        problem = (
            subdomain_problem(name, what="the ServiceAccount name")
            if isinstance(name, str)
            else "must be a string"
        )
        if problem:
            self.problems.append(f"{place}: {problem}")
            return None
        return str(name)

    def ref(self, where: str, value: Any) -> ObjectRef:
        data = self.mapping(where, value)
        if not data:
            self.problems.append(f"{where}: required")
            return ObjectRef("")
        name = self.str_field(where, data, "name")
        namespace = self.str_field(where, data, "namespace", required=False, default="flux-system")
        return ObjectRef(name, namespace)


def parse_catalog(data: Any) -> Catalog:
    """Check a decoded catalog document; raises CatalogError listing every problem."""
    c = _Checker()
    root = c.mapping("catalog", data)
    common = c.substitutions("substitutions", root.get("substitutions"))
    default_account = c.service_account("", root)
    apps: dict[str, AppTemplate] = {}
    raw_apps = root.get("apps") or []
    if not isinstance(raw_apps, list):
        c.problems.append("apps: must be a list")
        raw_apps = []
    for i, raw in enumerate(raw_apps):
        where = f"apps[{i}]"
        item = c.mapping(where, raw)
        name = c.str_field(where, item, "name")
        problem = label_problem(name, what="app name", max_length=MAX_APP) if name else None
        if problem:
            c.problems.append(f"{where}.name: {problem}")
        if name in apps:
            c.problems.append(f"{where}.name: duplicate app {name!r}")
        prefix = c.str_field(where, item, "defaultPrefix", required=False, default="main")
        try:
            check_prefix(prefix)
        except InvalidName as e:
            c.problems.append(f"{where}.defaultPrefix: {e}")
        depends = item.get("dependsOn") or []
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            c.problems.append(f"{where}.dependsOn: must be a list of app names")
            depends = []
        wait = item.get("wait", False)
        if not isinstance(wait, bool):
            c.problems.append(f"{where}.wait: must be true or false")
            wait = False
        durations = {}
        for key in ("timeout", "interval"):
            value = c.str_field(where, item, key, required=False, default="5m")
            if not _DURATION.match(value):
                c.problems.append(f"{where}.{key}: {value!r} is not a duration like 5m or 1h30m")
            durations[key] = value
        template = AppTemplate(
            name=name,
            git_repository=c.ref(f"{where}.gitRepository", item.get("gitRepository")),
            path=c.str_field(where, item, "path"),
            image_repository=c.ref(f"{where}.imageRepository", item.get("imageRepository")),
            default_prefix=prefix,
            substitutions=c.substitutions(f"{where}.substitutions", item.get("substitutions")),
            depends_on=tuple(depends),
            timeout=durations["timeout"],
            interval=durations["interval"],
            description=c.str_field(where, item, "description", required=False),
            service_account_name=c.service_account(where, item) or default_account,
            wait=wait,
        )
        apps.setdefault(name, template)
    for i, app in enumerate(apps.values()):
        for dep in app.depends_on:
            if dep not in apps:
                c.problems.append(f"apps[{i}].dependsOn: unknown app {dep!r}")
    bundles: dict[str, Bundle] = {}
    raw_bundles = root.get("bundles") or []
    if not isinstance(raw_bundles, list):
        c.problems.append("bundles: must be a list")
        raw_bundles = []
    for i, raw in enumerate(raw_bundles):
        where = f"bundles[{i}]"
        item = c.mapping(where, raw)
        name = c.str_field(where, item, "name")
        if name in bundles:
            c.problems.append(f"{where}.name: duplicate bundle {name!r}")
        members = item.get("apps") or []
        if not isinstance(members, list) or not members:
            c.problems.append(f"{where}.apps: must be a non-empty list of app names")
            members = []
        for member in members:
            if not isinstance(member, str):
                c.problems.append(f"{where}.apps: {member!r} is not an app name")
            elif member not in apps:
                c.problems.append(f"{where}.apps: unknown app {member!r}")
        bundles[name] = Bundle(
            name,
            tuple(str(m) for m in members),
            c.str_field(where, item, "description", required=False),
        )
    rules: list[AutoCreateRule] = []
    raw_rules = root.get("autoCreate") or []
    if not isinstance(raw_rules, list):
        c.problems.append("autoCreate: must be a list")
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        where = f"autoCreate[{i}]"
        item = c.mapping(where, raw)
        pattern = c.str_field(where, item, "prefix")
        bundle = c.str_field(where, item, "bundle")
        if bundle and bundle not in bundles:
            c.problems.append(f"{where}.bundle: unknown bundle {bundle!r}")
        add_pushed_apps = item.get("addPushedApps", False)
        if not isinstance(add_pushed_apps, bool):
            c.problems.append(f"{where}.addPushedApps: must be true or false")
            add_pushed_apps = False
        try:
            rules.append(AutoCreateRule(re.compile(pattern), bundle, add_pushed_apps))
        except re.error as e:
            c.problems.append(f"{where}.prefix: invalid regular expression: {e}")
    if c.problems:
        raise CatalogError(c.problems)
    return Catalog(
        apps=apps,
        bundles=bundles,
        substitutions=common,
        auto_create=tuple(rules),
        service_account_name=default_account,
    )


def load_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError([f"cannot read {path}: {e.strerror or e}"]) from e
    except UnicodeDecodeError as e:
        raise CatalogError([f"{path}: not UTF-8 text ({e.reason} at byte {e.start})"]) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError([f"{path}: not valid YAML: {e}"]) from e
    return parse_catalog(data)


class CatalogSource:
    """The last good catalog of a file, reloaded when the file's content changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._current: Catalog = EMPTY
        self._digest: str | None = None
        self.last_error: CatalogError | None = None

    @property
    def current(self) -> Catalog:
        return self._current

    def reload_if_changed(self) -> bool:
        """Reload if the content changed; True when a new catalog took effect."""
        try:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError as e:
            self.last_error = CatalogError([f"cannot read {self.path}: {e.strerror or e}"])
            return False
        if digest == self._digest:
            return False
        self._digest = digest
        try:
            self._current = load_catalog(self.path)
        except CatalogError as e:
            self.last_error = e
            return False
        self.last_error = None
        return True

    async def poll(self, interval: float) -> None:
        """Reload every `interval` seconds until cancelled. A catalog that fails to load is
        logged and the last good one stays in effect."""
        while True:
            await asyncio.sleep(interval)
            try:
                changed = self.reload_if_changed()
            except Exception:
                log.exception("catalog_reload_failed", path=str(self.path))
                continue
            if changed:
                log.info(
                    "catalog_reloaded",
                    apps=len(self.current.apps),
                    bundles=len(self.current.bundles),
                )
            elif self.last_error is not None:
                log.error("catalog_invalid", problems=self.last_error.problems)
