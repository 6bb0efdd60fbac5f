"""Units of the simulated Flux: durations, conditions, tag policies, substitution, the git host,
the registry and the kustomize build, each with the wording the real controllers use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesim.flux import conditions as cond
from kubesim.flux.apply import inventory_id, parse_inventory_id
from kubesim.flux.build import BuildError, build
from kubesim.flux.githost import GitError, GitHost
from kubesim.flux.policies import InvalidPolicy, NoLatest, parse_range, parse_version, select
from kubesim.flux.registry import InvalidReference, Registry, canonical_name
from kubesim.flux.source import highest_semver
from kubesim.flux.substitution import SubstitutionError, substitute

KOLLIE_FILTER = {"pattern": "^feature-x-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)$", "extract": "$ts"}
NUMERICAL = {"numerical": {"order": "asc"}}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60), ("10m0s", 600), ("1h30m", 5400), ("500ms", 0.5), ("1.5h", 5400), ("0", 0)],
)
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert cond.parse_duration(text, -1) == seconds


@pytest.mark.parametrize("text", ["", "10", "1d", "m1", "1m 2s", None])
def test_malformed_durations_fall_back(text: Any) -> None:
    assert cond.parse_duration(text, 42.0) == 42.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "30s"), (600, "10m0s"), (3600, "1h0m0s"), (90.5, "1m30.5s"), (0.0025, "2.5ms")],
)
def test_go_durations_format(seconds: float, text: str) -> None:
    assert cond.format_duration(seconds) == text


def test_condition_transition_time_moves_only_on_change() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    obj: dict[str, Any] = {"metadata": {"generation": 3}, "status": {}}
    c = cond.Conditions(obj, t0)
    c.mark_false("Ready", "BuildFailed", "broken")
    c.mark_true("Reconciling", "Progressing", "working")
    c.mark_true("ArtifactInStorage", "Succeeded", "stored")
    items = c.items()
    assert [i["type"] for i in items] == ["Reconciling", "Ready", "ArtifactInStorage"]
    assert all(i["observedGeneration"] == 3 for i in items)
    later = cond.Conditions(
        {"metadata": {"generation": 4}, "status": {"conditions": items}}, t0 + timedelta(minutes=1)
    )
    later.mark_false("Ready", "BuildFailed", "broken")
    later.mark_false("ArtifactInStorage", "Failed", "gone")
    later.retrying()
    ready, storage, reconciling = (
        later.get("Ready"),
        later.get("ArtifactInStorage"),
        later.get("Reconciling"),
    )
    assert (
        ready
        and ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
        and ready["observedGeneration"] == 4
    )
    assert storage and storage["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    assert (
        reconciling
        and reconciling["reason"] == "ProgressingWithRetry"
        and reconciling["message"] == "working"
    )


def test_progressing_keeps_a_known_ready_status() -> None:
    obj = {
        "metadata": {"generation": 1},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": "ok",
                    "lastTransitionTime": "x",
                }
            ]
        },
    }
    c = cond.Conditions(obj, datetime.now(UTC))
    c.progressing("reconciliation in progress")
    assert c.is_true("Ready") and c.is_true("Reconciling")
    c.progressing("building artifact", drift=True)
    assert c.is_unknown("Ready")


# ---------------------------------------------------------------- tag policies
def test_numerical_picks_newest_timestamp_of_the_prefix_only() -> None:
    tags = [
        "feature-x-abc1234-1700000000",
        "feature-x-abc1235-999999999",
        "feature-x-def5678-10000000000",
        "feature-x-y-fff0000-20000000000",
        "main-0000000-30000000000",
        "feature-x-latest",
    ]
    assert select(tags, KOLLIE_FILTER, NUMERICAL) == "feature-x-def5678-10000000000"
    assert (
        select(tags, KOLLIE_FILTER, {"numerical": {"order": "desc"}})
        == "feature-x-abc1235-999999999"
    )
    y_filter = {"pattern": "^feature-x-y-(?P<sha>[0-9a-f]{7,40})-(?P<ts>[0-9]+)$", "extract": "$ts"}
    assert select(tags, y_filter, NUMERICAL) == "feature-x-y-fff0000-20000000000"


def test_numerical_errors_are_the_controllers() -> None:
    with pytest.raises(NoLatest, match=r"^version list argument cannot be empty$"):
        select(["main-abc1234-1"], KOLLIE_FILTER, NUMERICAL)
    with pytest.raises(NoLatest, match=r"^failed to parse invalid numeric value 'latest'$"):
        select(["1", "latest"], None, NUMERICAL)
    with pytest.raises(NoLatest, match="invalid numeric value '1_000'"):
        select(["1_000"], None, NUMERICAL)


def test_extract_templates_follow_go_expand() -> None:
    tags = ["v1-build-7", "v1-build-12"]
    assert (
        select(tags, {"pattern": r"^v1-build-(\d+)$", "extract": "$1"}, NUMERICAL) == "v1-build-12"
    )
    assert (
        select(tags, {"pattern": r"^v1-build-(?<n>\d+)$", "extract": "${n}"}, NUMERICAL)
        == "v1-build-12"
    )
    # An unknown group expands to nothing, so every tag extracts to "" and the later one wins.
    assert (
        select(tags, {"pattern": "build", "extract": "$nope"}, {"alphabetical": {}})
        == "v1-build-12"
    )


def test_alphabetical_orders() -> None:
    tags = ["2026-01-02", "2026-01-10", "2025-12-31"]
    assert select(tags, None, {"alphabetical": {"order": "asc"}}) == "2026-01-10"
    assert select(tags, None, {"alphabetical": {"order": "desc"}}) == "2025-12-31"


def test_semver_ranges() -> None:
    tags = ["1.0.0", "v1.2.3", "1.9.0-rc.1", "1.4.0", "2.0.0", "0.9.9", "latest"]
    assert select(tags, None, {"semver": {"range": ">=1.0.0 <2.0.0"}}) == "1.4.0"
    assert select(tags, None, {"semver": {"range": "^1.2"}}) == "1.4.0"
    assert select(tags, None, {"semver": {"range": "~1.2"}}) == "v1.2.3"
    assert select(tags, None, {"semver": {"range": "1.x"}}) == "1.4.0"
    assert select(tags, None, {"semver": {"range": "*"}}) == "2.0.0"
    assert select(tags, None, {"semver": {"range": ">=1.9.0-0 <2.0.0"}}) == "1.9.0-rc.1"
    assert select(tags, None, {"semver": {"range": "<1 || >=1.3, <1.5"}}) == "1.4.0"
    with pytest.raises(NoLatest, match="unable to determine latest version from provided list"):
        select(tags, None, {"semver": {"range": ">=3"}})
    with pytest.raises(InvalidPolicy, match="improper constraint: banana"):
        select(tags, None, {"semver": {"range": "banana"}})


def test_semver_prerelease_precedence() -> None:
    versions = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    parsed = [parse_version(v) for v in versions]
    assert all(p is not None for p in parsed)
    keys = [p.key() for p in parsed if p]
    assert keys == sorted(keys)
    assert not parse_range("^1").allows(parse_version("1.1.0-rc.1"))  # type: ignore[arg-type]


def test_invalid_policies() -> None:
    with pytest.raises(InvalidPolicy, match="error parsing regexp"):
        select(["a"], {"pattern": "(unclosed"}, NUMERICAL)
    with pytest.raises(InvalidPolicy, match="given ImagePolicyChoice object is invalid"):
        select(["a"], None, {})


# ---------------------------------------------------------------- substitution
def test_substitution_defaults_escapes_and_strictness() -> None:
    text = "a: ${x}\nb: ${y:=dflt}\nc: ${z:-other}\nd: $${x}\ne: ${x}-${x}\n"
    out = substitute(text, {"x": "1"}, strict=True)
    assert out == "a: 1\nb: dflt\nc: other\nd: ${x}\ne: 1-1\n"
    with pytest.raises(
        SubstitutionError,
        match=r'^variable substitution failed: variable not set \(strict mode\): "image_tag"$',
    ):
        substitute("image: web:${image_tag}", {"x": "1"}, strict=True)
    assert substitute("image: web:${image_tag}", {"x": "1"}, strict=False) == "image: web:"
    with pytest.raises(SubstitutionError, match="'bad-name' var name is invalid"):
        substitute("a", {"bad-name": "1"}, strict=True)


# ---------------------------------------------------------------- git host
def test_git_checkout_revisions_and_errors() -> None:
    git = GitHost()
    repo = git.add_repository(
        "https://git.example.com/acme/platform",
        branches={"main": None, "dev": None},
        paths={"./apps/web": [{"kind": "ConfigMap"}]},
    )
    main = repo.branches["main"]
    git.tag("https://git.example.com/acme/platform", "v1.2.0")
    git.tag("https://git.example.com/acme/platform", "v1.10.0", ref="dev")
    url = "https://git.example.com/acme/platform"

    def rev(ref: dict[str, Any] | None) -> str:
        return git.checkout(url, ref, semver=highest_semver).revision

    assert rev({"branch": "main"}) == f"main@sha1:{main}"
    assert rev({"tag": "v1.2.0"}) == f"v1.2.0@sha1:{main}"
    assert rev({"semver": ">=1.0.0"}) == f"v1.10.0@sha1:{repo.branches['dev']}"
    assert rev({"commit": main}) == f"sha1:{main}"
    assert rev({"branch": "main", "commit": main}) == f"main@sha1:{main}"
    assert rev({"name": "refs/heads/dev"}) == f"refs/heads/dev@sha1:{repo.branches['dev']}"
    with pytest.raises(
        GitError,
        match=(
            r"^unable to clone 'https://git.example.com/acme/platform': "
            r"couldn't find remote ref \"refs/heads/master\"$"
        ),
    ):
        rev(None)
    with pytest.raises(GitError, match="repository not found"):
        git.checkout("https://git.example.com/acme/nope", {"branch": "main"}, semver=highest_semver)
    with pytest.raises(GitError, match="no match found for semver: >=2"):
        rev({"semver": ">=2"})
    new = git.push(url, "main", paths={"./apps/api": "kind: ConfigMap\n", "./apps/web": None})
    commit = git.checkout(url, {"branch": "main"}, semver=highest_semver).commit
    assert commit.sha == new != main and set(commit.files) == {"apps/api"}


def test_git_host_announces_changes() -> None:
    git = GitHost()
    seen: list[str] = []
    unsubscribe = git.subscribe(seen.append)
    git.add_repository("https://g/x", branches=["main"])
    git.push("https://g/x", "feature", paths={"a": []})
    unsubscribe()
    git.push("https://g/x", "main")
    assert seen == ["https://g/x", "https://g/x"]
    with pytest.raises(KeyError):
        git.push("https://g/unknown", "main")


# ---------------------------------------------------------------- registry
def test_registry_names_digests_and_subscribers() -> None:
    assert canonical_name("nginx") == "index.docker.io/library/nginx"
    assert canonical_name("docker.io/acme/web") == "index.docker.io/acme/web"
    assert canonical_name("localhost:5000/web") == "localhost:5000/web"
    for bad in ("Registry.example.com/Acme", "https://r/x", ""):
        with pytest.raises(InvalidReference):
            canonical_name(bad)
    registry = Registry(clock=lambda: 1000.0)
    pushes: list[str] = []
    registry.subscribe(lambda p: pushes.append(f"{p.image}:{p.tag}"))
    first = registry.push("registry.example.com/acme/web", "main-abc1234-1")
    again = registry.push("registry.example.com/acme/web", "main-abc1234-1")
    assert (
        first.digest != again.digest
        and first.digest.startswith("sha256:")
        and len(first.digest) == 71
    )
    assert Registry().push("registry.example.com/acme/web", "main-abc1234-1").digest == first.digest
    assert pushes == ["registry.example.com/acme/web:main-abc1234-1"] * 2
    assert registry.tags("registry.example.com/acme/api") is None
    assert registry.delete_tag("registry.example.com/acme/web", "main-abc1234-1")
    assert registry.tags("registry.example.com/acme/web") == {}
    with pytest.raises(InvalidReference):
        registry.push("registry.example.com/acme/web", "-bad")


# ---------------------------------------------------------------- build
def _kustomization(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "kollie", "uid": "u-1"},
        "spec": {"path": "./apps/web", **spec},
    }


FILES = {
    "apps/web": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: "
    "${environment}\n"
    'data:\n  tag: "${image_tag}"\n  count: ${count:=3}\n---\n'
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${environment}\n"
}


def test_build_substitutes_keeping_quoted_strings() -> None:
    def no_vars(kind: str, name: str) -> None:
        return None

    out = build(
        _kustomization(postBuild={"substitute": {"environment": "pr-1", "image_tag": "123"}}),
        FILES,
        no_vars,
        strict=True,
    )
    assert [o["kind"] for o in out.objects] == ["Namespace", "ConfigMap"]
    assert out.objects[1]["data"] == {"tag": "123", "count": 3}
    assert out.digest.startswith("sha256:")


def test_build_errors_carry_the_controllers_wording() -> None:
    def no_vars(kind: str, name: str) -> None:
        return None

    with pytest.raises(BuildError) as missing:
        build(
            _kustomization(postBuild={"substitute": {"environment": "pr-1"}}),
            FILES,
            no_vars,
            strict=True,
        )
    assert missing.value.reason == "BuildFailed"
    assert missing.value.message == (
        "post build failed for '~G_v1_ConfigMap/web': envsubst error: variable "
        'substitution failed: variable not set (strict mode): "image_tag"'
    )
    with pytest.raises(BuildError) as path:
        build(_kustomization(path="./apps/nowhere"), FILES, no_vars, strict=True)
    assert path.value.reason == "ArtifactFailed"
    assert path.value.message.startswith("kustomization path not found: stat /tmp/kustomization-")
    assert path.value.message.endswith("/apps/nowhere: no such file or directory")
    with pytest.raises(
        BuildError, match=r"substitute from 'ConfigMap/vars' error: configmaps \"vars\" not found"
    ):
        build(
            _kustomization(postBuild={"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]}),
            FILES,
            no_vars,
            strict=True,
        )


def test_build_without_variables_leaves_text_alone_and_reads_substitute_from() -> None:
    def variables(kind: str, name: str) -> dict[str, Any] | None:
        return (
            {"data": {"environment": "from-cm", "image_tag": "t"}}
            if (kind, name) == ("ConfigMap", "vars")
            else None
        )

    out = build(_kustomization(postBuild={"substitute": {}}), FILES, variables, strict=True)
    assert out.objects[0]["metadata"]["name"] == "${environment}"
    out = build(
        _kustomization(
            postBuild={
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "vars"},
                    {"kind": "Secret", "name": "absent", "optional": True},
                ],
                "substitute": {"image_tag": "wins"},
            }
        ),
        FILES,
        variables,
        strict=True,
    )
    assert (
        out.objects[1]["metadata"]["namespace"] == "from-cm"
        and out.objects[1]["data"]["tag"] == "wins"
    )


def test_build_applies_target_namespace_prefix_and_common_metadata() -> None:
    files = {
        "apps/web": "apiVersion: v1\nkind: ConfigMap\nmetadata: "
        "{name: web, namespace: elsewhere}\n",
        "apps/web/extra": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
    }
    out = build(
        _kustomization(
            targetNamespace="pr-1", namePrefix="pr-", commonMetadata={"labels": {"a": "b"}}
        ),
        files,
        lambda kind, name: None,
        strict=True,
    )
    namespace, configmap = out.objects
    assert namespace["metadata"] == {"name": "team", "labels": {"a": "b"}}
    assert configmap["metadata"] == {"name": "pr-web", "namespace": "pr-1", "labels": {"a": "b"}}


def test_inventory_ids_round_trip() -> None:
    assert (
        inventory_id("", "system:reader", "rbac.authorization.k8s.io", "ClusterRole")
        == "_system__reader_rbac.authorization.k8s.io_ClusterRole"
    )
    assert parse_inventory_id("_system__reader_rbac.authorization.k8s.io_ClusterRole") == (
        "",
        "system:reader",
        "rbac.authorization.k8s.io",
        "ClusterRole",
    )
    assert parse_inventory_id("pr-1_web__ConfigMap") == ("pr-1", "web", "", "ConfigMap")
