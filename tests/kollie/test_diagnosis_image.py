"""The image links of the diagnosis: the catalog's ImageRepository and the app's ImagePolicy,
judged from objects shaped as image-reflector-controller writes them."""

from __future__ import annotations

from kollie.cache import IMAGE_REPOSITORIES
from tests.kollie.flux_objects import (
    app_body,
    cache_with,
    diagnosis,
    git_repository,
    image_policy,
    image_repository,
    kustomization,
    record,
)

NO_MATCH = ("False", "Failure", "version list argument cannot be empty")
WAITING = kustomization(image_tag=None)
MAIN_TAGS = [f"main-{c * 7}-17724{i}0000" for i, c in enumerate("abcdef")]


def test_a_ready_app_has_no_diagnosis() -> None:
    cache = cache_with(record(), kustomization(), image_policy(), image_repository())
    body = app_body(cache)
    assert body["state"] == "Ready" and body["diagnosis"] is None


def test_no_tag_of_the_prefix_at_all_names_the_newest_tags() -> None:
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=NO_MATCH),
        image_repository(tags=MAIN_TAGS),
    )
    found = diagnosis(cache)
    assert found["cause"] == {
        "kind": "ImagePolicy",
        "namespace": "kollie",
        "name": "pr-1-web",
        "reason": "Failure",
        "message": "version list argument cannot be empty",
    }
    assert found["summary"].startswith(
        "No tag of registry.example.com/acme/web starts with `feature-x-`: CI has not pushed"
    )
    assert "newest tags: `main-fffffff-1772450000`, `main-eeeeeee-1772440000`" in found["summary"]
    assert [(s["kind"], s["ok"]) for s in found["steps"]] == [
        ("ImageRepository", True),
        ("ImagePolicy", False),
    ]
    assert "flux get image policy pr-1-web -n kollie" in found["commands"]
    assert any("lastScanResult.latestTags" in c for c in found["commands"])


def test_a_tag_without_its_timestamp_is_named_with_what_is_wrong() -> None:
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=NO_MATCH),
        image_repository(tags=[*MAIN_TAGS, "feature-x-0a1b2c3"]),
    )
    summary = diagnosis(cache)["summary"]
    assert summary.startswith("CI pushed `feature-x-0a1b2c3` to registry.example.com/acme/web")
    assert "it has no `-<timestamp>` after the commit" in summary


def test_another_branch_sharing_the_start_of_the_prefix_is_not_taken_for_a_bad_tag() -> None:
    # `feature-x-y-<sha>-<ts>` belongs to the branch `feature-x-y`, not to `feature-x`.
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=NO_MATCH),
        image_repository(tags=[*MAIN_TAGS, "feature-x-y-abc1234-1772400000"]),
    )
    summary = diagnosis(cache)["summary"]
    assert "CI pushed" not in summary
    assert "starts with `feature-x-`" in summary


def test_ten_listed_of_many_tags_are_not_enough_to_be_sure() -> None:
    listed = [f"zeta-{i:07x}-1772400000" for i in range(10)]
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=NO_MATCH),
        image_repository(tags=listed, count=250),
    )
    summary = diagnosis(cache)["summary"]
    assert summary.startswith(
        "None of the 10 tags Flux lists for registry.example.com/acme/web starts with "
        "`feature-x-` (it lists 10 of 250"
    )


def test_ten_listed_tags_that_sort_below_the_prefix_are_enough_to_be_sure() -> None:
    # Flux lists the first ten in descending order: anything left out sorts below "aaa-…".
    listed = [f"aaa-{i:07x}-1772400000" for i in range(10)]
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=NO_MATCH),
        image_repository(tags=listed, count=250),
    )
    assert "CI has not pushed an image of this branch" in diagnosis(cache)["summary"]


def test_access_denied_by_access_from() -> None:
    message = (
        "failed to get the referred ImageRepository: access denied: 'flux-system/web' can't "
        "be accessed due to missing ACL labels on 'accessFrom'"
    )
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=("False", "AccessDenied", message)),
        image_repository(tags=MAIN_TAGS),
    )
    found = diagnosis(cache)
    assert found["cause"]["kind"] == "ImagePolicy" and found["cause"]["reason"] == "AccessDenied"
    assert "spec.accessFrom must select that namespace" in found["summary"]
    assert found["cause"]["message"] == message


def test_a_missing_image_repository_is_the_cause() -> None:
    message = (
        "failed to get the referred ImageRepository: referenced ImageRepository does not "
        'exist: imagerepositories.image.toolkit.fluxcd.io "web" not found'
    )
    cache = cache_with(
        record(), WAITING, image_policy(latest=None, ready=("False", "DependencyNotReady", message))
    )
    found = diagnosis(cache)
    assert found["cause"] == {
        "kind": "ImageRepository",
        "namespace": "flux-system",
        "name": "web",
        "reason": "NotFound",
        "message": 'imagerepositories.image.toolkit.fluxcd.io "web" not found',
    }
    assert found["steps"] == [
        {
            "kind": "ImageRepository",
            "namespace": "flux-system",
            "name": "web",
            "ok": False,
            "summary": "does not exist",
        }
    ]


def test_refused_registry_credentials() -> None:
    message = (
        "scan failed: GET https://registry.example.com/v2/acme/web/tags/list?n=1000: "
        "UNAUTHORIZED: authentication required; [map[Action:pull Class: Name:acme/web "
        "Type:repository]]"
    )
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=("False", "DependencyNotReady", "no tags in database")),
        image_repository(ready=("False", "ReadOperationFailed", message)),
    )
    found = diagnosis(cache)
    assert found["cause"]["kind"] == "ImageRepository"
    assert found["cause"]["reason"] == "ReadOperationFailed"
    assert found["summary"].startswith(
        "The registry refuses Flux's credentials for registry.example.com/acme/web"
    )
    assert "flux reconcile image repository web -n flux-system" in found["commands"]


def test_a_missing_credentials_secret() -> None:
    message = 'failed to configure authentication options: secrets "regcred" not found'
    cache = cache_with(
        record(),
        WAITING,
        image_policy(latest=None, ready=None),
        image_repository(ready=("False", "AuthenticationFailed", message)),
    )
    found = diagnosis(cache)
    assert found["cause"]["reason"] == "AuthenticationFailed"
    assert "Check the Secret its spec.secretRef names" in found["summary"]


def test_a_failing_scan_does_not_explain_an_app_that_has_its_image() -> None:
    message = "scan failed: GET …: UNAUTHORIZED: authentication required"
    build = 'post build failed: variable not set (strict mode): "zone_name"'
    cache = cache_with(
        record(),
        kustomization(
            ready=("False", "BuildFailed", build), stalled=("True", "BuildFailed", build)
        ),
        image_policy(),
        image_repository(ready=("False", "ReadOperationFailed", message)),
        git_repository(),
    )
    found = diagnosis(cache)
    assert found["cause"]["kind"] == "Kustomization"
    assert found["steps"][0] == {
        "kind": "ImageRepository",
        "namespace": "flux-system",
        "name": "web",
        "ok": False,
        "summary": f"ReadOperationFailed: {message}",
    }


def test_waiting_for_the_first_scan_is_under_way_not_broken() -> None:
    cache = cache_with(
        record(),
        WAITING,
        image_policy(
            latest=None,
            ready=("False", "DependencyNotReady", "retrying in 30s error: no tags in database"),
        ),
        image_repository(tags=MAIN_TAGS),
    )
    found = diagnosis(cache)
    assert found["cause"]["kind"] == "ImagePolicy"
    assert found["summary"] == "Waiting for Flux's first scan of the image repository."
    assert found["steps"][-1]["ok"] is None


def test_without_the_catalog_sources_the_policy_message_speaks_and_says_what_is_missing() -> None:
    cache = cache_with(record(), WAITING, image_policy(latest=None, ready=NO_MATCH), watch=False)
    found = diagnosis(cache)
    assert found["steps"][0]["kind"] == "ImageRepository" and found["steps"][0]["ok"] is None
    assert "KOLLIE_DIAGNOSIS_SOURCES" in found["steps"][0]["summary"]
    assert found["summary"].startswith("No image tag matches `feature-x-<sha>-<timestamp>`.")
    assert "KOLLIE_DIAGNOSIS_SOURCES" in found["summary"]


def test_an_unreadable_image_repository_says_why() -> None:
    cache = cache_with(record(), WAITING, image_policy(latest=None, ready=NO_MATCH))
    cache.forget_ref(IMAGE_REPOSITORIES, ("flux-system", "web"))
    cache.ref_error(IMAGE_REPOSITORIES, ("flux-system", "web"), "403 Forbidden")
    step = diagnosis(cache)["steps"][0]
    assert step["ok"] is None and step["summary"] == "Kollie cannot read it: 403 Forbidden"


def test_switching_to_a_branch_without_images_is_not_taken_for_a_suspension() -> None:
    # Switching the prefix suspends the Kustomization but leaves the old prefix's image_tag
    # (image follow's patch owns it), and the ImagePolicy keeps its old latestRef while its new
    # generation fails (Flux moves status.observedGeneration only on success).
    switched = kustomization(prefix="feature-x", image_tag="main-abc1234-1772400000")
    switched["spec"]["suspend"] = True
    policy = image_policy(latest="main-abc1234-1772400000", ready=NO_MATCH)
    policy["metadata"]["generation"] = 2
    policy["status"]["observedGeneration"] = 1
    policy["status"]["conditions"][0]["observedGeneration"] = 2
    cache = cache_with(record(), switched, policy, image_repository(tags=MAIN_TAGS))
    body = app_body(cache)
    assert (body["state"], body["reason"]) == ("Failed", "Failure")
    assert body["diagnosis"]["cause"]["kind"] == "ImagePolicy"
    assert "starts with `feature-x-`" in body["diagnosis"]["summary"]
    # Before Flux has looked at the new prefix at all, it is under way.
    policy["status"]["conditions"][0]["observedGeneration"] = 1
    policy["status"]["conditions"][0]["status"] = "True"
    cache = cache_with(record(), switched, policy, image_repository(tags=MAIN_TAGS))
    found = app_body(cache)["diagnosis"]
    assert (
        found["summary"]
        == "Flux has not looked for images tagged `feature-x-<sha>-<timestamp>` yet."
    )
