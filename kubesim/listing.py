"""LIST semantics: selectors, `limit` and `continue` tokens that pin the first page's
resourceVersion (410 once it has been compacted away, offering a token that goes on at the
latest version), and `remainingItemCount`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from kubesim import errors
from kubesim.errors import ApiError
from kubesim.resources import ResourceType
from kubesim.selectors import FieldRequirement, Requirement, fields_match, labels_match
from kubesim.store import Store

LATEST = -1
"""The resourceVersion of a continue token that lists at the latest version (apiserver's -1)."""
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


@dataclass(frozen=True)
class ListResult:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def list_objects(
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    *,
    labels: tuple[Requirement, ...] = (),
    fields: tuple[FieldRequirement, ...] = (),
    limit: int = 0,
    continue_token: str = "",
) -> ListResult:
    start_after: tuple[str, str] | None = None
    rv = store.resource_version
    if continue_token:
        rv, start_after = _decode_continue(continue_token)
        if rv == LATEST:
            rv = store.resource_version
        elif rv < store.compacted_rv:
            # etcd3 store `handleCompactedErrorForPaging`: 410, with a token that goes on at
            # the latest resourceVersion for a client that accepts an inconsistent list.
            raise ApiError(
                410,
                INCONSISTENT_CONTINUE,
                reason="Expired",
                list_meta={"continue": _encode_continue(LATEST, start_after)},
            )
    items: list[dict[str, Any]] = []
    more = False
    scope = namespace if rt.namespaced else None
    for obj in store.iter(rt.gr, scope, after=start_after):
        if not labels_match(labels, obj) or not fields_match(fields, obj):
            continue
        if limit and len(items) >= limit:
            more = True
            break
        items.append(obj)
    if not more or not items:
        return ListResult(items, str(rv))
    meta = items[-1]["metadata"]
    last_key = (meta.get("namespace", ""), meta["name"])
    # As the API server: the number of remaining items is known only without selectors.
    remaining = None if labels or fields else store.count_after(rt.gr, scope, last_key)
    return ListResult(items, str(rv), _encode_continue(rv, last_key), remaining)


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}"}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ns, _, name = data["start"].partition("/")
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError) as e:
        raise errors.bad_request("continue key is not valid: illegal base64 data") from e
