"""RBAC authorisation, following the API server's RBAC authorizer (plugin/pkg/auth/authorizer/rbac).

A request is allowed when a rule of a Role bound in the request's namespace, or of a ClusterRole
bound there or cluster-wide, matches its verb, API group, resource (with subresource), and name.
Roles and bindings are read from the store on every request, so edits apply at once. Members of
`system:masters` are allowed everything; authenticated users may read discovery and OpenAPI, as the
default `system:discovery` and `system:public-info-viewer` ClusterRoles allow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.authn import UserInfo
from kubesim.errors import ApiError
from kubesim.store import Store

ROLES = ("rbac.authorization.k8s.io", "roles")
CLUSTER_ROLES = ("rbac.authorization.k8s.io", "clusterroles")
ROLE_BINDINGS = ("rbac.authorization.k8s.io", "rolebindings")
CLUSTER_ROLE_BINDINGS = ("rbac.authorization.k8s.io", "clusterrolebindings")
SUPERUSERS = "system:masters"
DISCOVERY_PATHS = (
    "/api",
    "/apis",
    "/openapi",
    "/version",
)  # system:discovery, for authenticated users
PUBLIC_INFO_PATHS = (
    "/version",
    "/healthz",
    "/livez",
    "/readyz",
)  # system:public-info-viewer, for anyone
SELF_REVIEWS = {
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
}  # system:basic-user, for authenticated users


@dataclass(frozen=True)
class Request:
    """The authorisation attributes of one request (authorizer.Attributes)."""

    user: UserInfo
    verb: str
    path: str
    resource_request: bool = True
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


class Authorizer:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.denied: list[Request] = []
        """Every request refused, oldest first: the emulator's audit log of denials, for tests."""

    def authorize_create_on_update(self, request: Request) -> None:
        """The patch handler's own check when an apply creates the object: its 403 carries only the
        authorizer's reason, not the "User ... cannot" sentence of the request filter."""
        allowed, reason = self.decide(request)
        if not allowed:
            self.denied.append(request)
            qualified = f"{request.resource}.{request.group}" if request.group else request.resource
            details: dict[str, Any] = {"name": request.name, "kind": request.resource}
            if request.group:
                details["group"] = request.group
            raise ApiError(
                403,
                f'{qualified} "{request.name}" is forbidden: {reason}',
                reason="Forbidden",
                details=details,
            )

    def authorize(self, request: Request) -> None:
        """Return if allowed; raise the API server's 403 otherwise (and keep it in `denied`)."""
        allowed, reason = self.decide(request)
        if not allowed:
            self.denied.append(request)
            raise forbidden(request, reason)

    def allows(self, request: Request) -> bool:
        return self.decide(request)[0]

    def decide(self, request: Request) -> tuple[bool, str]:
        """Allowed or not, and when not, the RBAC authorizer's reason: the bindings of the caller
        whose role could not be read (`RBAC: role.rbac.authorization.k8s.io "x" not found`)."""
        if SUPERUSERS in request.user.groups:
            return True, ""
        if not request.resource_request and _public(request):
            return True, ""
        if (
            request.resource_request
            and request.verb == "create"
            and (request.group, request.resource) in SELF_REVIEWS
            and "system:authenticated" in request.user.groups
        ):
            return True, ""
        problems: list[str] = []
        for rule in self._rules_for(request, problems):
            if _rule_allows(rule, request):
                return True, ""
        unique = list(dict.fromkeys(problems))
        if not unique:
            return False, ""
        return False, "RBAC: " + (unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]")

    def _rules_for(self, request: Request, problems: list[str]) -> Iterator[Mapping[str, Any]]:
        for binding in self.store.iter(CLUSTER_ROLE_BINDINGS):
            if _binds(binding, request.user, namespace=""):
                yield from self._role_rules(binding.get("roleRef") or {}, "", problems)
        if request.namespace:
            for binding in self.store.iter(ROLE_BINDINGS, request.namespace):
                if _binds(binding, request.user, namespace=request.namespace):
                    yield from self._role_rules(
                        binding.get("roleRef") or {}, request.namespace, problems
                    )

    def _role_rules(
        self, ref: Mapping[str, Any], namespace: str, problems: list[str]
    ) -> Iterator[Mapping[str, Any]]:
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ClusterRole":
            role = self.store.get(CLUSTER_ROLES, "", name)
        elif kind == "Role":
            role = self.store.get(ROLES, namespace, name)
        else:
            problems.append(f"unsupported role reference kind: {json.dumps(str(kind or ''))}")
            return
        if role is None:
            # The RBAC authorizer's listers name the resource in the singular.
            problems.append(f'{str(kind).lower()}.rbac.authorization.k8s.io "{name}" not found')
            return
        for rule in role.get("rules") or []:
            if isinstance(rule, Mapping):
                yield rule


def _public(request: Request) -> bool:
    if (
        request.verb != "get"
    ):  # system:discovery grants `get`; HEAD is the verb "head" on these paths
        return False
    paths = PUBLIC_INFO_PATHS + (
        DISCOVERY_PATHS if "system:authenticated" in request.user.groups else ()
    )
    return any(request.path == p or request.path.startswith(p + "/") for p in paths)


def _binds(binding: Mapping[str, Any], user: UserInfo, *, namespace: str) -> bool:
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and name == user.name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount":
            account_namespace = subject.get("namespace") or namespace
            if user.name == f"system:serviceaccount:{account_namespace}:{name}":
                return True
    return False


def _rule_allows(rule: Mapping[str, Any], request: Request) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and request.verb not in verbs:
        return False
    if not request.resource_request:
        return any(
            u == "*" or u == request.path or (u.endswith("*") and request.path.startswith(u[:-1]))
            for u in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and request.group not in groups:
        return False
    if not _resource_matches(rule.get("resources") or [], request.resource, request.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or request.name in names


def _resource_matches(resources: list[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for candidate in resources:
        if candidate in ("*", combined):
            return True
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


def forbidden(request: Request, reason: str = "") -> ApiError:
    """The 403 `Status` of responsewriters.Forbidden: forbiddenMessage's wording, the authorizer's
    reason after it, in apierrors.NewForbidden."""
    user = request.user.name
    if not request.resource_request:
        why = f'User "{user}" cannot {request.verb} path "{request.path}"'
        return ApiError(
            403,
            f"forbidden: {why}: {reason}" if reason else f"forbidden: {why}",
            reason="Forbidden",
            details={},
        )
    resource = (
        f"{request.resource}/{request.subresource}" if request.subresource else request.resource
    )
    where = (
        f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    )
    why = (
        f'User "{user}" cannot {request.verb} resource "{resource}" '
        f'in API group "{request.group}" {where}'
    )
    if reason:
        why = f"{why}: {reason}"
    qualified = f"{request.resource}.{request.group}" if request.group else request.resource
    subject = f'{qualified} "{request.name}"' if request.name else qualified
    details: dict[str, Any] = {"kind": request.resource}
    if request.group:
        details["group"] = request.group
    if request.name:
        details["name"] = request.name
    return ApiError(403, f"{subject} is forbidden: {why}", reason="Forbidden", details=details)
