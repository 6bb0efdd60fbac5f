"""What the dashboard's index shows: the viewer's own environments and the failing ones first,
then every environment a page at a time; or, with filters, the matching ones.

Built from the environment index and the rows rendered once per change, so opening the page
costs the same at 10,000 environments as at 10: a few slices and a join.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from web.fragments import Fragments

PAGE_SIZE = 50
"""Rows per page of the full list and of search results."""
SHOWN_MINE = 50
SHOWN_FAILING = 20
STATES = ("Ready", "Progressing", "Failed", "Suspended", "Deleting")
SORTS = ("name", "newest", "owner")


def _page(query: Mapping[str, str], total: int) -> tuple[int, int]:
    """(the page asked for, clamped to what exists; the number of pages)."""
    pages = max(1, math.ceil(total / PAGE_SIZE))
    try:
        page = int(query.get("page", "1"))
    except ValueError:
        page = 1
    return min(max(page, 1), pages), pages


def listing(query: Mapping[str, str], viewer: str, fragments: Fragments) -> dict[str, Any]:
    """The index page's context for a viewer and the page's query string."""
    index = fragments.index
    text = query.get("q", "").strip()
    mine = query.get("mine") == "1"
    state = query.get("state", "") if query.get("state") in STATES else ""
    sort = query.get("sort", "name") if query.get("sort") in SORTS else "name"
    context: dict[str, Any] = {
        "query": text,
        "mine": mine,
        "state": state,
        "sort": sort,
        "states": STATES,
        "sorts": SORTS,
        "counts": fragments.counts(),
        # Any filter or sort asked for shows one list of what matches, in that order.
        "filtered": bool(text or mine or state or "sort" in query),
    }
    if context["filtered"]:
        names = list(index.search(text=text, state=state, owner=viewer if mine else None))
        if sort == "newest":
            names.sort(key=lambda n: index.summary(n).created_at, reverse=True)
        elif sort == "owner":
            names.sort(key=lambda n: (index.summary(n).owner, n))
        page, pages = _page(query, len(names))
        shown = names[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        kept = {k: v for k, v in query.items() if k in ("q", "mine", "state", "sort") and v}
        return {
            **context,
            "rows": fragments.rows(shown),
            "total": len(names),
            "page": page,
            "pages": pages,
            "query_string": urlencode(kept) + "&" if kept else "",
        }
    page, pages = _page(query, len(index))
    owned = index.owned_by(viewer)
    failing = index.failing()
    return {
        **context,
        "rows": fragments.rows(index.names((page - 1) * PAGE_SIZE, page * PAGE_SIZE)),
        "page": page,
        "pages": pages,
        "mine_rows": fragments.rows(owned[:SHOWN_MINE]),
        "mine_rows_count": min(len(owned), SHOWN_MINE),
        "mine_total": len(owned),
        "failing_rows": fragments.rows(failing[:SHOWN_FAILING]),
        "failing_rows_count": min(len(failing), SHOWN_FAILING),
        "failing_total": len(failing),
    }
