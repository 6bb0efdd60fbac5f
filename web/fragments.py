"""The dashboard's HTML of each environment, rendered once per change and reused.

A row is rendered when an environment changes (or the catalog does: rows show prefixes that
differ from the catalog's defaults), kept until the next change, and joined into every page
and every `rows` event that needs it. Nothing in a row depends on the viewer or on the clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import jinja2
import orjson
from markupsafe import Markup

from kollie.catalog import Catalog
from kollie.listing import EnvironmentIndex
from kollie.views import Rendering, kept_json


@dataclass(frozen=True, slots=True)
class _Row:
    version: int
    catalog: Catalog
    html: Markup
    event: bytes


@dataclass(frozen=True, slots=True)
class EnvironmentPage:
    """An environment page's content, with a placeholder where each viewer's form token goes."""

    version: int
    catalog: Catalog
    html: Markup
    placeholder: str

    def with_token(self, token: str) -> Markup:
        return Markup(self.html.replace(self.placeholder, token))


class Fragments:
    def __init__(
        self, templates: jinja2.Environment, index: EnvironmentIndex, catalog: Callable[[], Catalog]
    ) -> None:
        self.index = index
        self.catalog = catalog
        self._row_template = templates.get_template("_row.html")
        self._page_template = templates.get_template("_environment.html")
        self._rows: dict[str, _Row] = {}
        self._pages: dict[str, EnvironmentPage] = {}
        # Unguessable, so no text from the cluster (a branch name) can ever be taken for it.
        self._placeholder = secrets.token_hex(16)

    def _row(self, rendering: Rendering) -> _Row:
        name = rendering.body["name"]
        catalog = self.catalog()
        cached = self._rows.get(name)
        if cached is not None and cached.version == rendering.version and cached.catalog is catalog:
            return cached
        defaults = {app.name: app.default_prefix for app in catalog.apps.values()}
        html = Markup(
            self._row_template.render(
                env=rendering.body, worst=rendering.summary.worst, defaults=defaults
            )
        )
        row = _Row(rendering.version, catalog, html, kept_json({"name": name, "html": html}))
        self._rows[name] = row
        return row

    def rows(self, names: list[str]) -> Markup:
        """The rows of these environments, in this order, as one piece of HTML."""
        renderings = self.index.renderings(names)
        return Markup("").join(self._row(r).html for r in renderings)

    def row_event(self, name: str) -> bytes | None:
        """The `rows` stream's data for an environment: its name and its row."""
        rendering = self.index.renderer.rendering(name)
        if rendering is None:
            self._rows.pop(name, None)
            return None
        return self._row(rendering).event

    def environment(self, name: str, *, errors: str | None = None) -> EnvironmentPage | None:
        """An environment's page content (None: no such environment). With `errors`, rendered
        for this answer only (the form's refusal shows beside the forms)."""
        rendering = self.index.renderer.rendering(name)
        if rendering is None:
            self._pages.pop(name, None)
            return None
        catalog = self.catalog()
        cached = self._pages.get(name)
        if (
            errors is None
            and cached is not None
            and cached.version == rendering.version
            and cached.catalog is catalog
        ):
            return cached
        history = [
            {
                "time": e.time,
                "reason": e.reason,
                "message": e.message,
                "actor": e.actor,
                "via": e.via,
                "app": e.app,
            }
            for e in self.index.cache.history(name, 50)
        ]
        html = self._page_template.render(
            env=rendering.body,
            history=history,
            errors=errors,
            catalog=catalog,
            csrf_token=self._placeholder,
        )
        page = EnvironmentPage(rendering.version, catalog, Markup(html), self._placeholder)
        if errors is None:
            self._pages[name] = page
        return page

    def counts(self) -> dict[str, object]:
        return {"environments": len(self.index), "apps": self.index.app_states()}

    def counts_event(self) -> bytes:
        return orjson.dumps(self.counts())
