"""The chart rendered by real Helm: valid Kubernetes objects, secure pods, least-privilege RBAC,
values that are checked, and settings that match what Kollie reads."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from kollie.catalog import parse_catalog
from kollie.config import Settings
from tests.chart.conftest import CHART, NAMESPACE, Render, find, one, render_chart

DEMO_CATALOG = yaml.safe_load(
    (Path(__file__).parents[2] / "kollie" / "demo" / "catalog.yaml").read_text()
)
# The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
NOT_IN_KUBERNETES_SCHEMAS = {"ServiceMonitor"}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "demo catalog": {"catalog": DEMO_CATALOG},
    "everything on": {
        "catalog": DEMO_CATALOG,
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "host": "kollie.example.com",
            "trustProxyHeaders": True,
            "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://$host/oauth2/auth"},
            "tls": [{"secretName": "kollie-tls", "hosts": ["kollie.example.com"]}],
        },
        "networkPolicy": {
            "enabled": True,
            "apiServerCIDRs": ["10.0.0.1/32"],
            "ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}],
        },
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "secrets": {
            "apiTokens": [{"name": "github-actions", "token": "t" * 32}],
            "webhookSecret": "w" * 24,
            "webhookSecrets": [{"source": "harbor", "secret": "h" * 20}],
            "csrfSecret": "c" * 40,
        },
        "image": {"digest": "sha256:" + "a" * 64},
        "rbac": {"ownerReferencesPermissionEnforcement": True},
        "config": {
            "leaseExclusionList": ["staging-like"],
            "admins": ["alice@example.com"],
            "ownerOnly": True,
            "limits": {"waits": 3, "environments": 5},
        },
    },
    "minimal": {
        "replicaCount": 1,
        "podDisruptionBudget": {"enabled": False},
        "config": {"urlDiscovery": False},
        "secrets": {"existingSecret": "kollie-secrets"},
        "topologySpreadConstraints": [],
    },
    "no rbac, own service account": {
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "ops"},
    },
}


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_manifest_is_a_valid_kubernetes_object(
    render: Render, values: dict[str, Any]
) -> None:
    docs = render(values)
    assert {"Deployment", "Service", "ConfigMap"} <= {d["kind"] for d in docs}
    for doc in docs:
        if doc["kind"] in NOT_IN_KUBERNETES_SCHEMAS:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        namespaced = doc["kind"] not in {"ClusterRole", "ClusterRoleBinding"}
        assert ("namespace" in doc["metadata"]) == namespaced, doc["metadata"]


def test_lint_is_clean(chart: Any) -> None:
    result = helm.lint(CHART, {"catalog": DEMO_CATALOG}, strict=True, namespace=NAMESPACE)
    info = 1  # Helm's support.InfoSev; warnings and errors are above it
    assert result["errors"] == [] and all(m["severity"] <= info for m in result["messages"]), result


def test_the_pod_is_locked_down(render: Render) -> None:
    deployment = one(render(), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert (
        sc["capabilities"] == {"drop": ["ALL"]}
        and sc["runAsNonRoot"] is True
        and sc["privileged"] is False
    )
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["args"][0] == "serve"
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp"}, "only /tmp is writable"
    catalog_mount = next(m for m in container["volumeMounts"] if m["name"] == "catalog")
    assert "subPath" not in catalog_mount, "a subPath mount would never see catalog edits"


def test_the_chart_accepts_every_catalog_field_kollie_reads(render: Render) -> None:
    full_app = {
        "name": "web",
        "description": "Web",
        "gitRepository": {"name": "platform", "namespace": "flux-system"},
        "path": "./apps/web",
        "imageRepository": {"name": "web", "namespace": "flux-system"},
        "defaultPrefix": "main",
        "dependsOn": [],
        "substitutions": {"tier": "front"},
        "timeout": "10m",
        "interval": "1h30m",
        "serviceAccountName": "web.deployer",
    }
    catalog = {
        "substitutions": {"zone_name": "test.example.com"},
        "apps": [
            full_app,
            {k: v for k, v in full_app.items() if k != "serviceAccountName"} | {"name": "api"},
        ],
        "bundles": [{"name": "all", "description": "All", "apps": ["web"]}],
        "autoCreate": [{"prefix": "^feature-", "bundle": "all"}],
        "serviceAccountName": "kollie-apps",
    }
    text = one(render({"catalog": catalog}), "ConfigMap", "kollie-catalog")["data"]["catalog.yaml"]
    parsed = parse_catalog(yaml.safe_load(text))
    assert parsed.apps["web"].timeout == "10m" and parsed.apps["web"].interval == "1h30m"
    assert parsed.apps["web"].service_account_name == "web.deployer"
    assert parsed.apps["api"].service_account_name == "kollie-apps"


def test_catalog_config_map_is_the_catalog_kollie_reads(render: Render) -> None:
    docs = render({"catalog": DEMO_CATALOG})
    config_map = one(docs, "ConfigMap", "kollie-catalog")
    text = config_map["data"]["catalog.yaml"]
    catalog = parse_catalog(yaml.safe_load(text))
    assert sorted(catalog.apps) == sorted(a["name"] for a in DEMO_CATALOG["apps"])
    env = _env(one(docs, "Deployment"))
    assert env["KOLLIE_CATALOG"] == "/etc/kollie/catalog/catalog.yaml"


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_settings_the_chart_passes_are_valid_for_kollie(render: Render) -> None:
    values = VALUE_SETS["everything on"]
    env = _env(one(render(values), "Deployment"))
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    plain["KOLLIE_API_TOKENS_FILE"] = ""  # mounted from the Secret at run time
    plain["KOLLIE_WEBHOOK_SECRETS_FILE"] = ""
    settings = Settings.from_env(plain)
    assert settings.namespace == NAMESPACE and settings.owner_only and settings.trust_proxy_headers
    assert settings.public_url == "https://kollie.example.com", "the Ingress serves TLS"
    assert settings.limits.waits == 3 and settings.limits.environments == 5
    assert settings.limits.event_streams == 20, "the chart's default, as Kollie's"
    assert settings.admins == {"alice@example.com"} and settings.lease_exclusion_list == {
        "staging-like"
    }
    assert env["KOLLIE_WEBHOOK_SECRET"]["secretKeyRef"]["key"] == "webhook-secret"
    assert env["KOLLIE_CSRF_SECRET"]["secretKeyRef"]["key"] == "csrf-secret"


def test_every_kollie_setting_is_configurable_and_documented(render: Render) -> None:
    kollie = Path(__file__).parents[2] / "kollie"
    source = "".join((kollie / module).read_text() for module in ("config.py", "limits.py"))
    variables = set(re.findall(r"\bKOLLIE_[A-Z_]+", source))
    env = _env(one(render(), "Deployment"))
    assert variables <= set(env), f"not set by the chart: {variables - set(env)}"
    guide = (Path(__file__).parents[2] / "docs" / "install.md").read_text()
    assert not {v for v in variables if f"`{v}`" not in guide}, "every variable in docs/install.md"


def test_secrets_are_created_or_referenced(render: Render) -> None:
    docs = render(VALUE_SETS["everything on"])
    secret = one(docs, "Secret")
    assert secret["stringData"]["api-tokens"].strip() == "github-actions:" + "t" * 32
    assert (
        secret["stringData"]["webhook-secret"] == "w" * 24
        and secret["stringData"]["csrf-secret"] == "c" * 40
    )
    generated = one(render(), "Secret")["stringData"]["csrf-secret"]
    assert len(generated) == 64 and "webhook-secret" not in one(render(), "Secret")["stringData"]
    docs = render(VALUE_SETS["minimal"])
    assert not find(docs, "Secret")
    env = _env(one(docs, "Deployment"))
    assert env["KOLLIE_WEBHOOK_SECRET"]["secretKeyRef"]["name"] == "kollie-secrets"


def _mounted_secret_files(deployment: dict[str, Any]) -> set[str]:
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    return {item["path"] for item in volume["secret"]["items"]}


def test_a_webhook_secret_per_source_is_mounted_as_the_file_kollie_reads(
    render: Render, tmp_path: Path
) -> None:
    docs = render(VALUE_SETS["everything on"])
    lines = one(docs, "Secret")["stringData"]["webhook-secrets"]
    deployment = one(docs, "Deployment")
    path = _env(deployment)["KOLLIE_WEBHOOK_SECRETS_FILE"]
    assert path == "/etc/kollie/secrets/webhook-secrets"
    assert "webhook-secrets" in _mounted_secret_files(deployment)
    (tmp_path / "webhook-secrets").write_text(lines)
    settings = Settings.from_env({"KOLLIE_WEBHOOK_SECRETS_FILE": str(tmp_path / "webhook-secrets")})
    assert settings.webhook_secrets == {"harbor": "h" * 20}
    # Without per-source secrets nothing is mounted and the variable is empty (Kollie: unset).
    for values in ({}, VALUE_SETS["minimal"]):
        deployment = one(render(values), "Deployment")
        assert _env(deployment)["KOLLIE_WEBHOOK_SECRETS_FILE"] == ""
        assert _mounted_secret_files(deployment) == {"api-tokens"}
    existing = {"secrets": {"existingSecret": "mine", "existingSecretHasWebhookSecrets": True}}
    deployment = one(render(existing), "Deployment")
    assert _env(deployment)["KOLLIE_WEBHOOK_SECRETS_FILE"] == "/etc/kollie/secrets/webhook-secrets"
    assert _mounted_secret_files(deployment) == {"api-tokens", "webhook-secrets"}


def _rules(
    docs: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    role = next(d for d in find(docs, kind, name) if d["metadata"].get("namespace") == namespace)
    return list(role["rules"])


def test_rbac_is_least_privilege(render: Render) -> None:
    docs = render(
        {
            "catalog": {
                **DEMO_CATALOG,
                "apps": [
                    *DEMO_CATALOG["apps"],
                    {
                        "name": "billing",
                        "gitRepository": {"name": "billing-repo", "namespace": "team-b"},
                        "path": "./deploy",
                        "imageRepository": {"name": "billing", "namespace": "team-b"},
                    },
                ],
            }
        }
    )
    rbac = [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    for doc in rbac:
        for rule in doc.get("rules", []):
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (doc["metadata"]["name"], rule)
    own = {
        (r["apiGroups"][0], res, tuple(r.get("resourceNames", ())), verb)
        for r in _rules(docs, "Role", "kollie", NAMESPACE)
        for res in r["resources"]
        for verb in r["verbs"]
    }
    flux_verbs = {"list", "watch", "create", "patch", "delete"}
    expected = (
        {("", "configmaps", (), v) for v in flux_verbs}
        | {("", "events", (), v) for v in ("list", "watch", "create")}
        | {("coordination.k8s.io", "leases", (), "create")}
        | {("coordination.k8s.io", "leases", ("kollie-leader",), v) for v in ("get", "update")}
        | {
            (g, r, (), v)
            for g, r in (
                ("kustomize.toolkit.fluxcd.io", "kustomizations"),
                ("image.toolkit.fluxcd.io", "imagepolicies"),
                ("source.toolkit.fluxcd.io", "gitrepositories"),
            )
            for v in flux_verbs
        }
    )
    assert own == expected
    assert _rules(docs, "Role", "kollie-kollie-catalog", "flux-system") == [
        {
            "apiGroups": ["source.toolkit.fluxcd.io"],
            "resources": ["gitrepositories"],
            "resourceNames": ["platform"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["image.toolkit.fluxcd.io"],
            "resources": ["imagerepositories"],
            "resourceNames": sorted(a["name"] for a in DEMO_CATALOG["apps"]),
            "verbs": ["get", "patch", "list", "watch"],
        },
    ]
    assert _rules(docs, "Role", "kollie-kollie-catalog", "team-b") == [
        {
            "apiGroups": ["source.toolkit.fluxcd.io"],
            "resources": ["gitrepositories"],
            "resourceNames": ["billing-repo"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["image.toolkit.fluxcd.io"],
            "resources": ["imagerepositories"],
            "resourceNames": ["billing"],
            "verbs": ["get", "patch", "list", "watch"],
        },
    ]
    binding = next(
        d
        for d in find(docs, "RoleBinding", "kollie-kollie-catalog")
        if d["metadata"]["namespace"] == "team-b"
    )
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kollie", "namespace": NAMESPACE}
    ]
    assert _rules(docs, "ClusterRole", "kollie-kollie-ingresses") == [
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["list", "watch"]}
    ]
    assert _rules(docs, "ClusterRole", "kollie-kollie-namespaces") == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
    ]
    assert {d["metadata"]["name"] for d in find(docs, "ClusterRole")} == {
        "kollie-kollie-ingresses",
        "kollie-kollie-namespaces",
    }


def test_the_diagnosis_grants_follow_their_values(render: Render) -> None:
    def kollie_env(docs: list[dict[str, Any]]) -> dict[str, str]:
        container = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value", "") for e in container["env"]}

    off = render({"catalog": DEMO_CATALOG, "diagnosis": {"catalogSources": False}})
    assert [r["verbs"] for r in _rules(off, "Role", "kollie-kollie-catalog", "flux-system")] == [
        ["get"],
        ["get", "patch"],
    ]
    assert kollie_env(off)["KOLLIE_DIAGNOSIS_SOURCES"] == "false"
    assert not find(off, "ClusterRole", "kollie-kollie-helmreleases")
    assert kollie_env(off)["KOLLIE_DIAGNOSIS_HELM_RELEASES"] == "false"
    on = render({"catalog": DEMO_CATALOG, "diagnosis": {"helmReleases": True}})
    assert _rules(on, "ClusterRole", "kollie-kollie-helmreleases") == [
        {
            "apiGroups": ["helm.toolkit.fluxcd.io"],
            "resources": ["helmreleases"],
            "verbs": ["list", "watch"],
        }
    ]
    binding = find(on, "ClusterRoleBinding", "kollie-kollie-helmreleases")[0]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kollie", "namespace": NAMESPACE}
    ]
    assert kollie_env(on)["KOLLIE_DIAGNOSIS_HELM_RELEASES"] == "true"


def test_optional_parts_follow_their_values(render: Render) -> None:
    minimal = render(VALUE_SETS["minimal"])
    assert [r["metadata"]["name"] for r in find(minimal, "ClusterRole")] == [
        "kollie-kollie-namespaces"
    ]
    assert not find(minimal, "PodDisruptionBudget")
    assert _env(one(minimal, "Deployment"))["KOLLIE_URL_DISCOVERY"] == "false"
    assert "topologySpreadConstraints" not in one(minimal, "Deployment")["spec"]["template"]["spec"]
    full = render(VALUE_SETS["everything on"])
    ingress = one(full, "Ingress", "kollie")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"]
    assert ingress["spec"]["tls"][0]["secretName"] == "kollie-tls"
    machine = one(full, "Ingress", "kollie-machine")
    assert "annotations" not in machine["metadata"], (
        "no browser login in front of /api and /webhooks"
    )
    assert [p["path"] for p in machine["spec"]["rules"][0]["http"]["paths"]] == [
        "/api",
        "/webhooks",
    ]
    alone = render({"ingress": {"enabled": True, "machinePaths": {"enabled": False}}})
    assert [i["metadata"]["name"] for i in find(alone, "Ingress")] == ["kollie"]
    api_server = one(full, "NetworkPolicy")["spec"]["egress"][1]
    assert api_server["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert [p["port"] for p in api_server["ports"]] == [443, 6443]
    assert one(full, "ServiceMonitor")["spec"]["endpoints"][0]["path"] == "/metrics"
    image = one(full, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/kollie-dev/kollie@sha256:" + "a" * 64
    assert {
        "apiGroups": [""],
        "resources": ["configmaps/finalizers"],
        "verbs": ["update"],
    } in _rules(full, "Role", "kollie", NAMESPACE)
    own = render(VALUE_SETS["no rbac, own service account"])
    assert not [
        d for d in own if d["apiVersion"].startswith("rbac.") or d["kind"] == "ServiceAccount"
    ]
    assert one(own, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"replicaCount": 0}, "replicaCount"),
    ({"replicas": 3}, "replicas"),
    ({"config": {"envTTL": "a week"}}, "envTTL"),
    ({"config": {"logLevel": "verbose"}}, "logLevel"),
    ({"config": {"officeHours": "weekdays"}}, "officeHours"),
    ({"secrets": {"apiTokens": [{"name": "ci", "token": "short"}]}}, "token"),
    ({"secrets": {"csrfSecret": "too-short"}}, "csrfSecret"),
    ({"secrets": {"webhookSecrets": [{"source": "dockrhub", "secret": "s" * 20}]}}, "source"),
    ({"secrets": {"webhookSecrets": [{"source": "harbor", "secret": "short"}]}}, "secret"),
    ({"secrets": {"webhookSecret": "short"}}, "webhookSecret"),
    (
        {
            "catalog": {
                "apps": [
                    {
                        "name": "Web",
                        "path": "./x",
                        "gitRepository": {"name": "g"},
                        "imageRepository": {"name": "i"},
                    }
                ]
            }
        },
        "name",
    ),
    ({"catalog": {"apps": [{"name": "web", "path": "./x"}]}}, "gitRepository"),
    ({"catalog": {"serviceAccountName": "Flux_Apps"}}, "serviceAccountName"),
    ({"image": {"digest": "latest"}}, "digest"),
    ({"config": {"publicURL": "https://kollie.example.com/dashboard"}}, "publicURL"),
    ({"service": {"port": 70000}}, "port"),
    ({"config": {"shutdownTimeout": 30}}, "terminationGracePeriodSeconds"),
    ({"config": {"shutdownDelay": -1}}, "shutdownDelay"),
]


@pytest.mark.parametrize(("values", "named"), BAD_VALUES, ids=[n for _, n in BAD_VALUES])
def test_wrong_values_are_rejected_with_a_message_naming_them(
    chart: Any, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmError) as e:
        render_chart(chart, values)
    assert named in str(e.value), str(e.value)


def test_notes_tell_the_next_step(chart: Any) -> None:
    _, notes = render_chart(chart, {})
    assert "rollout status deployment/kollie" in notes and "port-forward service/kollie" in notes
    assert "catalog has no apps" in notes and "Registry webhooks are off" in notes
    _, notes = render_chart(chart, VALUE_SETS["everything on"])
    assert "https://kollie.example.com/" in notes and "catalog has no apps" not in notes
    assert "Registry webhooks are off" not in notes


def test_parent_charts_openshift_and_several_releases(render: Render) -> None:
    assert render({"global": {"imageRegistry": "mirror.example.com"}}), (
        "a parent chart's globals are accepted"
    )
    restricted = {"podSecurityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None}}
    pod = one(render(restricted), "Deployment")["spec"]["template"]["spec"]
    assert "runAsUser" not in pod["securityContext"], "OpenShift assigns the user"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    names = [
        {
            d["metadata"]["name"]
            for d in render({"catalog": DEMO_CATALOG}, namespace=ns)
            if d["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
            and d["metadata"].get("namespace") != ns
        }
        for ns in ("kollie-a", "kollie-b")
    ]
    assert names[0] and not names[0] & names[1], (
        "releases in two namespaces share no object outside them"
    )


PROXY_PODS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
}
TRUSTED = {
    "ingress": {"enabled": True, "trustProxyHeaders": True},
    "config": {"publicURL": "https://kollie.example.com"},
}

OPEN_TO_ANY_POD: list[tuple[dict[str, Any], str]] = [
    ({}, "any pod can reach it"),
    ({"networkPolicy": {"enabled": True}}, "any pod can reach it"),
    ({"networkPolicy": {"enabled": False, "ingressFrom": [PROXY_PODS]}}, "any pod can reach it"),
    (
        {
            "networkPolicy": {
                "enabled": True,
                "ingressFrom": [PROXY_PODS, {"namespaceSelector": {}}],
            }
        },
        "ingressFrom[1] admits every pod of every namespace",
    ),
    (
        {
            "networkPolicy": {
                "enabled": True,
                "ingressFrom": [{"namespaceSelector": {"matchLabels": {}}, "podSelector": {}}],
            }
        },
        "ingressFrom[0] admits every pod of every namespace",
    ),
    (
        {"networkPolicy": {"enabled": True, "ingressFrom": [{"podSelector": {}}]}},
        "ingressFrom[0] admits every pod of namespace kollie",
    ),
    (
        {"networkPolicy": {"enabled": True, "ingressFrom": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}},
        "ingressFrom[0] admits every address",
    ),
]


@pytest.mark.parametrize(
    ("values", "message"), OPEN_TO_ANY_POD, ids=[m for _, m in OPEN_TO_ANY_POD]
)
def test_trusted_proxy_headers_need_a_network_policy_admitting_only_the_proxy(
    chart: Any, values: dict[str, Any], message: str
) -> None:
    """With trusted proxy headers, any pod that reaches Kollie could name itself with
    X-Auth-Request-Email: the chart refuses to render unless only the proxy can."""
    with pytest.raises(helm.HelmError) as e:
        render_chart(chart, {**TRUSTED, **values})
    assert message in str(e.value), str(e.value)
    assert "networkPolicy.ingressFrom to your auth proxy's pods" in str(e.value)


def test_trusted_proxy_headers_need_the_dashboards_address(chart: Any) -> None:
    """Kollie takes the headers only on requests sent to the dashboard's host (KOLLIE_PUBLIC_URL):
    the ingress controller also serves Ingresses that route other hosts to Kollie."""
    admitted = {"networkPolicy": {"enabled": True, "ingressFrom": [PROXY_PODS]}}
    trusted = {"ingress": {"enabled": True, "trustProxyHeaders": True}, **admitted}
    with pytest.raises(helm.HelmError) as e:
        render_chart(chart, trusted)
    assert "set config.publicURL (or ingress.tls)" in str(e.value), str(e.value)
    tls = [{"secretName": "kollie-tls", "hosts": ["kollie.example.com"]}]
    for values in (
        {**trusted, "config": {"publicURL": "https://kollie.example.com"}},
        {**trusted, "ingress": {**trusted["ingress"], "host": "kollie.example.com", "tls": tls}},
    ):
        docs, _ = render_chart(chart, values)
        env = {
            e["name"]: e.get("value")
            for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["KOLLIE_PUBLIC_URL"] == "https://kollie.example.com"
        assert env["KOLLIE_TRUST_PROXY_HEADERS"] == "true"


def test_notes_name_who_may_send_identity_headers(chart: Any) -> None:
    values = {
        **TRUSTED,
        "networkPolicy": {"enabled": True, "ingressFrom": [PROXY_PODS]},
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
    docs, notes = render_chart(chart, values)
    assert one(docs, "NetworkPolicy")["spec"]["ingress"][0]["from"] == [PROXY_PODS]
    assert "Kollie believes the X-Auth-Request-Email header" in notes
    assert "kubernetes.io/metadata.name: ingress-nginx" in notes
    assert "Prometheus scrapes /metrics on the same port" in notes
    _, notes = render_chart(chart, {"networkPolicy": {"enabled": True}})
    assert "X-Auth-Request-Email" not in notes, "no warning when the headers are not trusted"


def _checksum(chart: Any, secrets: dict[str, Any]) -> str:
    docs, _ = render_chart(chart, {"secrets": secrets})
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    return str(annotations["checksum/secrets"])


def _csrf_key(chart: Any, secrets: dict[str, Any]) -> str:
    return str(
        one(render_chart(chart, {"secrets": secrets})[0], "Secret")["stringData"]["csrf-secret"]
    )


def test_the_secrets_checksum_cannot_be_recomputed_from_the_secret_values(chart: Any) -> None:
    """Whoever may read the Deployment must not be able to test guesses of the secrets against
    the pod annotation: it is salted with the Secret's own random CSRF key."""
    secrets = {
        "apiTokens": [{"name": "ci", "token": "t" * 32}],
        "webhookSecret": "hunter2-hunter2-hunter2",
    }
    merged = chart.merge_values({"secrets": secrets})["secrets"]
    unsalted = hashlib.sha256(
        json.dumps(merged, separators=(",", ":"), sort_keys=True).encode()
    ).hexdigest()
    first = _checksum(chart, secrets)
    assert first != unsalted
    assert _checksum(chart, secrets) != first, "a first install salts with a new random key"
    salted = {**secrets, "csrfSecret": "k" * 40}
    assert _checksum(chart, salted) == _checksum(chart, salted), "stable while nothing changes"
    assert _checksum(chart, salted) != _checksum(chart, {**salted, "csrfSecret": "j" * 40})
    other = {**salted, "webhookSecret": "hunter3-hunter3-hunter3"}
    assert _checksum(chart, other) != _checksum(chart, salted), "a changed secret rolls the pods"
    assert _csrf_key(chart, salted) == "k" * 40
    assert len(_csrf_key(chart, secrets)) == 64


def test_the_public_url_is_the_ingress_over_tls_or_as_set(render: Render) -> None:
    assert _env(one(render(), "Deployment"))["KOLLIE_PUBLIC_URL"] == ""
    plain = {"ingress": {"enabled": True, "host": "kollie.example.com"}}
    assert _env(one(render(plain), "Deployment"))["KOLLIE_PUBLIC_URL"] == "", (
        "TLS may end anywhere in front: not guessed"
    )
    behind_lb = {**plain, "config": {"publicURL": "https://kollie.example.com"}}
    assert _env(one(render(behind_lb), "Deployment"))["KOLLIE_PUBLIC_URL"] == (
        "https://kollie.example.com"
    )
