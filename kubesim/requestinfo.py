"""What a request asks to do, read from its URL alone, as the API server's request-info resolver
(k8s.io/apiserver pkg/endpoints/request/requestinfo.go) does before authorisation.

It runs before routing, so a request for a resource that does not exist is authorised like any
other (403 for a caller without access, 404 only for one with it), and the attributes are the
real server's, quirks included: `GET /api/v1/namespaces/x` is in the namespace "x", so a
RoleBinding in "x" can grant it; a list or watch whose field selector requires one
`metadata.name` names that object, so a `resourceNames` rule can allow it.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubesim.authn import UserInfo
from kubesim.rbac import Request

SPECIAL_VERBS = ("proxy", "watch")
NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def request_info(user: UserInfo, method: str, path: str, query: Mapping[str, str]) -> Request:
    """The authorisation attributes of `method path?query` for `user`."""
    parts = [p for p in path.split("/") if p]
    non_resource = Request(user, method.lower(), path, resource_request=False)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    group = ""
    rest = parts[1:]
    if parts[0] == "apis":
        if len(rest) < 3:
            return non_resource  # /apis/<group>/<version>: a discovery document
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    if rest[0] in SPECIAL_VERBS:
        verb, rest = rest[0], rest[1:]
    else:
        verb = _METHOD_VERBS.get(method, "")
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 and verb != "proxy" else ""
    if not name and verb == "get":
        verb = "watch" if _true(query.get("watch")) else "list"
        name = _name_from_selector(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Request(
        user,
        verb,
        path,
        group=group,
        version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


def _true(value: str | None) -> bool:
    """`?watch=`: anything but false or 0, as the parameter codec reads it (empty is false here, as
    the watch handler reads it)."""
    return value is not None and value.lower() not in ("", "false", "0")


def _name_from_selector(selector: str) -> str:
    """The name a field selector requires (`metadata.name=x` or `==x`, alone or among other
    terms)."""
    for term in selector.split(","):
        field, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and not field.endswith("!") and field.strip() == "metadata.name":
            value = value.strip()
            if value not in ("", ".", "..") and "/" not in value and "%" not in value:
                return value
            return ""
    return ""
