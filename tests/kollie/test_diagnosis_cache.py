"""What a diagnosis costs the cache: a change of an object outside the environments marks
changed only the environments whose rendering read it, HelmReleases reach the environment of
the Kustomization that applied them, and sleep is looked at again when it begins."""

from __future__ import annotations

from kollie.cache import GIT_SOURCES, HELM_RELEASES, IMAGE_REPOSITORIES
from kollie.views import EnvironmentRenderer
from tests.kollie.flux_objects import (
    ENV,
    NOW,
    NS,
    app_body,
    cache_with,
    git_repository,
    helm_release,
    image_policy,
    image_repository,
    kustomization,
    record,
)

NO_MATCH = ("False", "Failure", "version list argument cannot be empty")
WEB = ("flux-system", "web")


def test_a_rescan_marks_changed_only_the_environments_it_explains() -> None:
    cache = cache_with(
        record(),
        kustomization(image_tag=None),
        image_policy(latest=None, ready=NO_MATCH),
        record(env="ready"),
        kustomization(env="ready"),
        image_policy(env="ready"),
        image_repository(tags=["main-abc1234-1"]),
        git_repository(),
    )
    renderer = EnvironmentRenderer(cache, namespace=NS, clock=lambda: NOW)
    waiting, ready = renderer.rendering(ENV), renderer.rendering("ready")
    assert waiting is not None and ready is not None
    assert "newest tags: `main-abc1234-1`" in waiting.body["apps"][0]["diagnosis"]["summary"]

    cache.upsert(IMAGE_REPOSITORIES, image_repository(tags=["main-abc1234-1", "main-def5678-2"]))

    assert cache.version(ENV) > waiting.version
    assert cache.version("ready") == ready.version
    fresh = renderer.rendering(ENV)
    assert fresh is not None and "`main-def5678-2`" in fresh.body["apps"][0]["diagnosis"]["summary"]


def test_an_environment_that_became_ready_no_longer_follows_the_repository() -> None:
    cache = cache_with(
        record(),
        kustomization(image_tag=None),
        image_policy(latest=None, ready=NO_MATCH),
        image_repository(tags=["main-abc1234-1"]),
        git_repository(),
    )
    renderer = EnvironmentRenderer(cache, namespace=NS, clock=lambda: NOW)
    renderer.rendering(ENV)
    cache.upsert("kustomizations", kustomization())
    cache.upsert("imagepolicies", image_policy())
    ready = renderer.rendering(ENV)
    assert ready is not None and ready.body["apps"][0]["diagnosis"] is None

    cache.upsert(IMAGE_REPOSITORIES, image_repository(tags=["main-def5678-2"]))
    cache.upsert(GIT_SOURCES, git_repository(branch="other"))
    assert cache.version(ENV) == ready.version


def test_a_helm_release_reaches_the_environment_of_its_kustomization() -> None:
    cache = cache_with(
        record(),
        kustomization("payments", helm_releases=((ENV, "payments"),)),
        image_policy("payments", repository="payments"),
        image_repository("payments"),
        git_repository(),
    )
    assert app_body(cache, "payments")["state"] == "Ready"
    before = cache.version(ENV)
    failed = "Helm install failed for release pr-1/payments with chart payments@1.4.0: boom"
    cache.upsert(
        HELM_RELEASES,
        helm_release(
            ready=("False", "InstallFailed", failed), released=("False", "InstallFailed", failed)
        ),
    )
    assert cache.version(ENV) > before
    assert app_body(cache, "payments")["state"] == "Failed"


def test_the_first_helm_release_list_tells_the_apps_that_list_some() -> None:
    cache = cache_with(
        record(),
        kustomization("payments", helm_releases=((ENV, "payments"),)),
        image_policy("payments", repository="payments"),
        watch=False,
    )
    cache.watch_refs(HELM_RELEASES)
    before = cache.version(ENV)
    cache.replace(HELM_RELEASES, {})
    assert cache.version(ENV) > before


def test_a_repository_listed_as_missing_tells_its_dependents() -> None:
    cache = cache_with(
        record(),
        kustomization(image_tag=None),
        image_policy(latest=None, ready=NO_MATCH),
        watch=False,
    )
    cache.watch_refs(IMAGE_REPOSITORIES)
    renderer = EnvironmentRenderer(cache, namespace=NS, clock=lambda: NOW)
    first = renderer.rendering(ENV)
    assert first is not None
    assert first.body["apps"][0]["diagnosis"]["steps"][0]["summary"] == "Kollie has not read it yet"
    cache.replace_one(IMAGE_REPOSITORIES, WEB, None)
    assert cache.version(ENV) > first.version
    fresh = renderer.rendering(ENV)
    assert fresh is not None
    assert fresh.body["apps"][0]["diagnosis"]["cause"]["kind"] == "ImageRepository"


def test_sleep_is_looked_at_again_when_it_begins() -> None:
    health = (
        "health check failed after 5m0s: timeout waiting for: "
        "[Deployment/pr-1/web status: 'InProgress']"
    )
    cache = cache_with(
        record(),
        kustomization(ready=("False", "HealthCheckFailed", health)),
        image_policy(),
        image_repository(),
        git_repository(),
        record(env="ready"),
        kustomization(env="ready"),
        image_policy(env="ready"),
    )
    renderer = EnvironmentRenderer(cache, namespace=NS, clock=lambda: NOW)
    assert renderer.rendering("ready") is not None
    awake = renderer.rendering(ENV)
    assert awake is not None
    assert awake.body["apps"][0]["diagnosis"]["cause"]["kind"] == "Kustomization"
    until = 1772478000.0  # 2026-03-02T19:00:00Z, the end of the window
    assert cache.due_rechecks(until - 1) == until
    assert cache.version(ENV) == awake.version
    assert cache.due_rechecks(until) is None, "only the failing environment waits for a time"
    assert cache.version(ENV) > awake.version
