"""Asking the API server about access: impersonation (`kubectl --as`), SelfSubjectAccessReview
(`kubectl auth can-i`) and SelfSubjectReview (`kubectl auth whoami`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesim.authn import ADMIN, ANONYMOUS, UserInfo, service_account_user
from kubesim.errors import ApiError
from kubesim.rbac import Authorizer, Request

SA_PREFIX = "system:serviceaccount:"


def impersonate(
    authorizer: Authorizer | None,
    caller: UserInfo,
    headers: Mapping[str, str],
    groups: list[str],
    path: str,
) -> UserInfo:
    """The user a request acts as: `Impersonate-User`/`-Group` if the caller may impersonate
    them."""
    name = headers.get("Impersonate-User")
    if not name:
        if groups:
            raise ApiError(
                400,
                "requested impersonation of groups without impersonating a user",
                reason="BadRequest",
            )
        return caller
    checks: list[Request] = []
    target_groups = list(groups)
    if name.startswith(SA_PREFIX) and name.count(":") == 3:
        namespace, account = name[len(SA_PREFIX) :].split(":")
        checks.append(
            Request(
                caller,
                "impersonate",
                path,
                resource="serviceaccounts",
                namespace=namespace,
                name=account,
            )
        )
        if not groups:  # a ServiceAccount's groups are known
            target_groups = list(service_account_user(namespace, account).groups[:2])
    else:
        checks.append(Request(caller, "impersonate", path, resource="users", name=name))
    checks += [Request(caller, "impersonate", path, resource="groups", name=g) for g in groups]
    uid = headers.get("Impersonate-Uid", "")
    if uid:
        checks.append(
            Request(
                caller,
                "impersonate",
                path,
                group="authentication.k8s.io",
                resource="uids",
                name=uid,
            )
        )
    for header, value in headers.items():
        if header.lower().startswith("impersonate-extra-"):
            key = header[len("impersonate-extra-") :].lower()
            checks.append(
                Request(
                    caller,
                    "impersonate",
                    path,
                    group="authentication.k8s.io",
                    resource="userextras",
                    subresource=key,
                    name=value,
                )
            )
    if authorizer is not None:
        for check in checks:
            authorizer.authorize(check)
    # As the impersonation filter does: system:authenticated is added unless a group says otherwise.
    if name == ANONYMOUS.name:
        if "system:unauthenticated" not in target_groups:
            target_groups.append("system:unauthenticated")
    elif not {"system:authenticated", "system:unauthenticated"} & set(target_groups):
        target_groups.append("system:authenticated")
    return UserInfo(name, tuple(target_groups), uid)


def access_review(
    authorizer: Authorizer | None, user: UserInfo, body: Any, path: str
) -> dict[str, Any]:
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise ApiError(400, "spec is required", reason="BadRequest")
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if bool(resource) == bool(non_resource):
        raise ApiError(
            422,
            'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec: Invalid value: '
            '"null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
            reason="Invalid",
        )
    if resource:
        request = Request(
            user,
            str(resource.get("verb", "")),
            path,
            group=str(resource.get("group", "")),
            version=str(resource.get("version", "")),
            resource=str(resource.get("resource", "")),
            subresource=str(resource.get("subresource", "")),
            namespace=str(resource.get("namespace", "")),
            name=str(resource.get("name", "")),
        )
    else:
        attributes = non_resource if isinstance(non_resource, dict) else {}
        request = Request(
            user,
            str(attributes.get("verb", "")),
            str(attributes.get("path", "")),
            resource_request=False,
        )
    allowed, reason = (True, "") if authorizer is None else authorizer.decide(request)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }


def self_review(user: UserInfo | None) -> dict[str, Any]:
    who = user or ADMIN
    info: dict[str, Any] = {"username": who.name, "groups": list(who.groups)}
    if who.uid:
        info["uid"] = who.uid
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": info},
    }
