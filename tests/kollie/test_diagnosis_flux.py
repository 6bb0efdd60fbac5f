"""The later links of the diagnosis: the GitRepository, the Kustomization, the HelmReleases it
applied and the environment asleep, judged from objects shaped as the Flux controllers and
GoKubeDownscaler's windows make them."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.kollie.flux_objects import (
    ENV,
    app_body,
    cache_with,
    diagnosis,
    git_repository,
    helm_release,
    image_policy,
    image_repository,
    kustomization,
    record,
)

RELEASE = (ENV, "payments")
INSTALL_FAILED = (
    "Helm install failed for release pr-1/payments with chart payments@1.4.0: context "
    "deadline exceeded"
)
STALLED_HELM = (
    "health check failed after 2m0s: failed early due to stalled resources: "
    "[HelmRelease/pr-1/payments status: 'Failed']"
)


def _healthy(*objects: dict) -> list[dict]:
    return [record(), image_policy(), image_repository(), git_repository(), *objects]


def test_the_environments_branch_deleted() -> None:
    message = (
        "failed to checkout and determine revision: unable to clone "
        "'https://git.example.com/acme/platform': couldn't find remote ref "
        '"refs/heads/feature-flux"'
    )
    copy = git_repository(
        "platform-pr-1",
        namespace="kollie",
        branch="feature-flux",
        ready=("False", "GitOperationFailed", message),
        env=ENV,
    )
    cache = cache_with(
        record(),
        image_policy(),
        image_repository(),
        copy,
        kustomization(
            source=("GitRepository", "kollie", "platform-pr-1"),
            ready=("False", "ArtifactFailed", "Source artifact not found, retrying in 30s"),
        ),
    )
    found = diagnosis(cache)
    assert found["cause"] == {
        "kind": "GitRepository",
        "namespace": "kollie",
        "name": "platform-pr-1",
        "reason": "GitOperationFailed",
        "message": message,
    }
    assert found["summary"].startswith(
        "This environment follows the Flux repository branch `feature-flux`, which does not "
        "exist (any more)"
    )
    assert "flux get source git platform-pr-1 -n kollie" in found["commands"]


def test_the_catalog_repositorys_credentials_secret_missing() -> None:
    message = (
        "failed to get secret 'flux-system/git-auth': failed to get secret "
        "'flux-system/git-auth': secrets \"git-auth\" not found"
    )
    cache = cache_with(
        record(),
        image_policy(),
        image_repository(),
        git_repository(ready=("False", "AuthenticationFailed", message)),
        kustomization(ready=("False", "ArtifactFailed", "Source artifact not found")),
    )
    found = diagnosis(cache)
    assert found["cause"]["kind"] == "GitRepository"
    assert found["cause"]["reason"] == "AuthenticationFailed"
    assert "the Secret its spec.secretRef names does not exist" in found["summary"]


def test_a_missing_substitution_names_the_variable() -> None:
    message = (
        "post build failed for '~G_v1_ConfigMap/web': envsubst error: variable substitution "
        'failed: variable not set (strict mode): "zone_name"'
    )
    cache = cache_with(
        *_healthy(
            kustomization(
                ready=("False", "BuildFailed", message), stalled=("True", "BuildFailed", message)
            )
        )
    )
    found = diagnosis(cache)
    assert found["cause"]["kind"] == "Kustomization" and found["cause"]["reason"] == "BuildFailed"
    assert found["summary"].startswith(
        "The app's manifests use `${zone_name}`, which no substitution sets"
    )
    assert [s["ok"] for s in found["steps"]] == [True, True, True, False]


def test_a_failed_health_check_gives_way_to_the_helm_release_it_names() -> None:
    cache = cache_with(
        *_healthy(
            kustomization(
                "payments",
                ready=("False", "HealthCheckFailed", STALLED_HELM),
                helm_releases=(RELEASE,),
            ),
            image_policy("payments", repository="payments"),
            image_repository("payments"),
            helm_release(
                ready=("False", "InstallFailed", INSTALL_FAILED),
                released=("False", "InstallFailed", INSTALL_FAILED),
                stalled=("True", "RetriesExceeded", "Failed to install after 3 attempt(s)"),
                failures=3,
            ),
        )
    )
    found = diagnosis(cache, "payments")
    assert found["cause"] == {
        "kind": "HelmRelease",
        "namespace": ENV,
        "name": "payments",
        "reason": "InstallFailed",
        "message": INSTALL_FAILED,
    }
    assert found["summary"] == (
        "Helm could not install release pr-1/payments: context deadline exceeded. "
        "It gave up: Failed to install after 3 attempt(s)."
    )
    assert [s["kind"] for s in found["steps"]] == [
        "ImageRepository",
        "ImagePolicy",
        "GitRepository",
        "Kustomization",
        "HelmRelease",
    ]
    assert found["steps"][3]["ok"] is False
    assert "flux get helmrelease payments -n pr-1" in found["commands"]


def test_without_helm_releases_the_diagnosis_stops_at_the_kustomization_and_says_so() -> None:
    cache = cache_with(
        *_healthy(
            kustomization(
                "payments",
                ready=("False", "HealthCheckFailed", STALLED_HELM),
                helm_releases=(RELEASE,),
            ),
            image_policy("payments", repository="payments"),
        ),
        watch=False,
    )
    found = diagnosis(cache, "payments")
    assert found["cause"]["kind"] == "Kustomization"
    assert found["summary"] == (
        "Flux applied the app, but its health check failed: HelmRelease pr-1/payments is "
        "Failed. (Kollie does not read HelmReleases (KOLLIE_DIAGNOSIS_HELM_RELEASES), so the "
        "diagnosis stops at the Kustomization.)"
    )
    assert found["steps"][-1]["kind"] == "Kustomization"
    assert "flux tree kustomization pr-1-payments -n kollie" in found["commands"]


def test_a_ready_kustomization_whose_helm_release_failed_is_not_ready() -> None:
    upgrade = (
        "Helm upgrade failed for release pr-1/payments with chart payments@1.5.0: "
        "post-upgrade hooks failed"
    )
    cache = cache_with(
        *_healthy(
            kustomization("payments", helm_releases=(RELEASE,)),
            image_policy("payments", repository="payments"),
            image_repository("payments"),
            helm_release(
                ready=("False", "RollbackSucceeded", "Helm rollback to previous release succeeded"),
                released=("False", "UpgradeFailed", upgrade),
                remediated=("True", "RollbackSucceeded", "Helm rollback succeeded"),
                reconciling=("True", "ProgressingWithRetry", "retrying"),
            ),
        )
    )
    body = app_body(cache, "payments")
    assert body["state"] == "Failed" and body["ready"] is False
    assert body["reason"] == "UpgradeFailed"
    assert body["message"] == f"HelmRelease pr-1/payments: {upgrade}"
    found = body["diagnosis"]
    assert found["cause"]["kind"] == "HelmRelease" and found["cause"]["message"] == upgrade
    assert found["summary"] == (
        "Helm could not upgrade release pr-1/payments: post-upgrade hooks failed. "
        "helm-controller rolled it back to the previous release. helm-controller will try again."
    )


def test_a_helm_release_being_installed_keeps_the_app_progressing() -> None:
    cache = cache_with(
        *_healthy(
            kustomization("payments", helm_releases=(RELEASE,)),
            image_policy("payments", repository="payments"),
            image_repository("payments"),
            helm_release(ready=("Unknown", "Progressing", "Fulfilling prerequisites")),
        )
    )
    body = app_body(cache, "payments")
    assert body["state"] == "Progressing"
    assert body["diagnosis"]["cause"]["kind"] == "HelmRelease"
    assert body["diagnosis"]["steps"][-1]["ok"] is None


def test_a_dependency_names_the_other_app() -> None:
    cache = cache_with(
        *_healthy(
            kustomization(
                ready=("False", "DependencyNotReady", "dependency 'kollie/pr-1-api' is not ready")
            )
        )
    )
    found = diagnosis(cache)
    assert (
        found["summary"]
        == "The app waits for app `api`, which is not Ready yet (see its diagnosis)."
    )
    assert found["steps"][-1]["ok"] is None


def test_waiting_for_the_first_image_while_the_policy_has_found_it() -> None:
    cache = cache_with(
        record(),
        image_repository(),
        git_repository(),
        kustomization(image_tag=None),
        image_policy(),
    )
    found = diagnosis(cache)
    assert found["cause"]["kind"] == "Kustomization"
    assert found["summary"] == "Kollie is setting the image tag `feature-x-abc1234-1772400000`."


ASLEEP = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


def test_asleep_explains_a_health_check_that_times_out() -> None:
    timeout = (
        "health check failed after 5m0s: timeout waiting for: "
        "[Deployment/pr-1/web status: 'InProgress']"
    )
    cache = cache_with(*_healthy(kustomization(ready=("False", "HealthCheckFailed", timeout))))
    found = diagnosis(cache, now=ASLEEP)
    assert found["cause"] == {
        "kind": "Environment",
        "namespace": "kollie",
        "name": ENV,
        "reason": "Asleep",
        "message": (
            "outside its uptime window (downscaler_uptime: "
            "2026-03-02T08:00:00Z-2026-03-02T19:00:00Z)"
        ),
    }
    assert found["summary"] == (
        "The environment is asleep: its uptime window ended at 19:00 UTC on Mon 02 Mar, so its "
        "workloads are scaled to zero. Extending it wakes it up."
    )
    assert [s["kind"] for s in found["steps"]][-2:] == ["Kustomization", "Environment"]
    assert found["steps"][-1]["summary"] == "asleep since 19:00 UTC on Mon 02 Mar", (
        "the step in a few words; the summary does not say it twice"
    )
    # Awake, the same state is the health check's.
    assert diagnosis(cache)["cause"]["kind"] == "Kustomization"


def test_asleep_does_not_explain_a_missing_image() -> None:
    cache = cache_with(
        record(),
        kustomization(image_tag=None),
        image_policy(
            latest=None, ready=("False", "Failure", "version list argument cannot be empty")
        ),
        image_repository(tags=["main-abc1234-1"]),
    )
    assert diagnosis(cache, now=ASLEEP)["cause"]["kind"] == "ImagePolicy"


def test_asleep_on_a_schedule_says_when_it_wakes() -> None:
    cache = cache_with(
        record({"schedule": "Mon-Fri 07:00-19:00 Europe/London"}),
        *_healthy(kustomization(ready=("Unknown", "Progressing", "Running health checks")))[1:],
    )
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    found = diagnosis(cache, now=saturday)
    assert found["cause"]["kind"] == "Environment"
    assert found["summary"] == (
        "The environment is asleep outside its schedule (Mon-Fri 07:00-19:00 Europe/London), "
        "so its workloads are scaled to zero; it wakes at 07:00 UTC on Mon 09 Mar, or now if "
        "you extend it."
    )
    assert found["steps"][-1]["summary"] == "asleep outside Mon-Fri 07:00-19:00 Europe/London"


def test_a_schedules_wake_up_time_is_given_in_utc() -> None:
    cache = cache_with(
        record({"schedule": "Mon-Fri 07:00-19:00 Europe/London"}),
        *_healthy(kustomization(ready=("Unknown", "Progressing", "Running health checks")))[1:],
    )
    summer_saturday = datetime(2026, 6, 6, 12, 0, tzinfo=UTC)
    assert "it wakes at 06:00 UTC on Mon 08 Jun" in diagnosis(cache, now=summer_saturday)["summary"]


def test_a_health_check_that_timed_out_names_what_it_waited_for() -> None:
    timeout = (
        "health check failed after 5m0s: timeout waiting for: "
        "[Deployment/pr-1/web status: 'InProgress', Service/pr-1/web status: 'NotFound']"
    )
    cache = cache_with(*_healthy(kustomization(ready=("False", "HealthCheckFailed", timeout))))
    assert diagnosis(cache)["summary"] == (
        "Flux applied the app, but its health check timed out waiting for Deployment pr-1/web "
        "(InProgress); Service pr-1/web (NotFound)."
    )


def test_revisions_in_the_chain_are_short() -> None:
    full = "main@sha1:536687d4508f1cd6e8e30bf7585df8636ec1ff8b"
    source = git_repository()
    source["status"]["artifact"]["revision"] = full
    applied = kustomization("payments", helm_releases=(RELEASE,))
    applied["status"]["lastAppliedRevision"] = full
    cache = cache_with(
        record(),
        image_policy(),
        image_repository(),
        source,
        applied,
        image_policy("payments", repository="payments"),
        image_repository("payments"),
        helm_release(ready=("False", "InstallFailed", INSTALL_FAILED)),
    )
    steps = {s["kind"]: s["summary"] for s in diagnosis(cache, "payments")["steps"]}
    assert steps["GitRepository"] == "revision main@sha1:536687d4"
    assert steps["Kustomization"] == "applied main@sha1:536687d4"
