from __future__ import annotations

from typing import Any

from kollie.projections import Condition, ImagePolicyView, KustomizationView
from kollie.status import app_status


def ks(**changes: Any) -> KustomizationView:
    base: dict[str, Any] = {
        "env": "e",
        "app": "web",
        "name": "e-web",
        "uid": "u",
        "prefix": "main",
        "generation": 2,
        "observed_generation": 2,
        "ready": Condition(
            "Ready", "True", "ReconciliationSucceeded", "Applied revision: main@sha1:abc"
        ),
        "reconciling": False,
        "stalled": False,
        "suspended": False,
        "image_tag": "main-abc1234-1",
        "uptime": "x",
        "last_applied_revision": "main@sha1:abc",
        "last_attempted_revision": "main@sha1:abc",
        "source_kind": "GitRepository",
        "source_name": "platform",
        "source_namespace": "flux-system",
        "deleting": False,
        "created_at": "",
    }
    base.update(changes)
    return KustomizationView(**base)


def policy(**changes: Any) -> ImagePolicyView:
    base: dict[str, Any] = {
        "env": "e",
        "app": "web",
        "name": "e-web",
        "generation": 1,
        "observed_generation": 1,
        "ready": Condition("Ready", "True", "Succeeded", ""),
        "latest_image": "r/web",
        "latest_tag": "main-abc1234-1",
        "latest_digest": "sha256:1",
    }
    base.update(changes)
    return ImagePolicyView(**base)


def test_ready() -> None:
    s = app_status(ks(), policy())
    assert (s.state, s.ready) == ("Ready", True)


def test_not_yet_reconciled_generation_is_progressing() -> None:
    s = app_status(ks(observed_generation=1), policy())
    assert (s.state, s.ready) == ("Progressing", None)


def test_failure_of_a_new_generation_is_failed_not_progressing() -> None:
    # Real Flux leaves status.observedGeneration at the last success and stamps the Ready
    # condition with the generation it failed on.
    failed = ks(
        generation=3,
        observed_generation=2,
        ready=Condition(
            "Ready", "False", "BuildFailed", "var substitution failed", observed_generation=3
        ),
    )
    assert app_status(failed, policy()).state == "Failed"
    stale = ks(
        generation=3,
        observed_generation=2,
        ready=Condition("Ready", "True", "ReconciliationSucceeded", "", observed_generation=2),
    )
    assert app_status(stale, policy()).state == "Progressing"


def test_waiting_reasons_are_progressing_and_failures_fail() -> None:
    waiting = ks(
        ready=Condition(
            "Ready", "False", "DependencyNotReady", "dependency 'kollie/e-api' is not ready"
        )
    )
    assert app_status(waiting, policy()).state == "Progressing"
    failed = ks(ready=Condition("Ready", "False", "BuildFailed", "kustomization path not found"))
    s = app_status(failed, policy())
    assert (s.state, s.ready, s.message) == ("Failed", False, "kustomization path not found")
    stalled = ks(ready=Condition("Ready", "False", "DependencyNotReady", "x"), stalled=True)
    assert app_status(stalled, policy()).state == "Failed"


def test_image_states() -> None:
    waiting = app_status(ks(image_tag=None, suspended=True), policy(latest_tag=None, ready=None))
    assert (
        waiting.state == "Progressing"
        and "feature" not in waiting.message
        and "main-" in waiting.message
    )
    no_match = policy(
        latest_tag=None,
        ready=Condition(
            "Ready",
            "False",
            "ReconciliationFailed",
            "unable to determine latest version from provided list",
        ),
    )
    s = app_status(ks(image_tag=None, suspended=True), no_match)
    assert (s.state, s.reason) == ("Failed", "ReconciliationFailed")


def test_suspended_and_deleting() -> None:
    assert app_status(ks(suspended=True), policy()).state == "Suspended"
    assert app_status(ks(deleting=True), policy()).state == "Deleting"
    assert app_status(None, None).state == "Progressing"
