"""The links of an app's chain, each judged from its projection: the image links here, the
source, Kustomization, HelmRelease and environment links in `kollie.diagnosis_flux`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kollie.diagnosis_sleep import Sleep
from kollie.diagnosis_tags import evidence, sentence
from kollie.fluxviews import HelmReleaseView, ImageRepositoryView
from kollie.naming import tag_has_prefix
from kollie.projections import Condition, ImagePolicyView, Key, KustomizationView
from kollie.reftables import Lookup
from kollie.status import AppStatus, branch_image_tag

WAITING_REASONS = frozenset({"Progressing", "ProgressingWithRetry", "DependencyNotReady"})
"""Ready=False reasons that mean "not yet" rather than "broken" (fluxcd/pkg/apis/meta)."""


class GitSource(Protocol):
    """What the diagnosis reads of a GitRepository (the catalog's, or an environment's copy)."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def branch(self) -> str: ...

    @property
    def ready(self) -> Condition | None: ...

    @property
    def revision(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Chain:
    """Everything known about one app's chain, gathered from the cache."""

    env: str
    app: str
    namespace: str
    """Kollie's namespace (the app's Kustomization and ImagePolicy live there)."""
    status: AppStatus
    kustomization: KustomizationView | None
    policy: ImagePolicyView | None
    image_repository: Lookup[ImageRepositoryView] | None = None
    """The ImageRepository the ImagePolicy names (None: no ImagePolicy to name one)."""
    source_kind: str = "GitRepository"
    source: Lookup[GitSource] | None = None
    """The Kustomization's source (None: no Kustomization, or not a GitRepository)."""
    helm_releases: tuple[tuple[Key, Lookup[HelmReleaseView]], ...] = ()
    """The HelmReleases the Kustomization's inventory lists, as far as Kollie reads them."""
    sleep: Sleep | None = None
    window: str = ""
    """The uptime window as written into `downscaler_uptime`."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What a link says about the app's state, when it explains it."""

    summary: str
    reason: str
    message: str
    commands: tuple[str, ...]
    broken: bool = True
    """False: under way (it may resolve by itself)."""
    deeper_wins: bool = False
    """A broken link further down the chain explains it better (a failed health check)."""
    waits_for_workloads: bool = False
    """An environment asleep would explain it (scaled-down workloads never become ready)."""


@dataclass(frozen=True, slots=True)
class Link:
    kind: str
    namespace: str
    name: str
    ok: bool | None
    summary: str
    commands: tuple[str, ...]
    finding: Finding | None = None


def commands(kind: str, namespace: str, name: str) -> tuple[str, ...]:
    """Where to look further at one object, with the flux CLI and kubectl."""
    where = f"{name} -n {namespace}"
    looks = {
        "ImageRepository": (f"flux get image repository {where}",),
        "ImagePolicy": (f"flux get image policy {where}",),
        "GitRepository": (f"flux get source git {where}",),
        "Kustomization": (
            f"flux get kustomization {where}",
            f"flux events --for Kustomization/{where}",
        ),
        "HelmRelease": (
            f"flux get helmrelease {where}",
            f"flux events --for HelmRelease/{where}",
        ),
    }.get(kind, ())
    return (*looks, f"kubectl describe {kind.lower()} {where}")


def short_revision(revision: str) -> str:
    """A Flux revision as people read it: `main@sha1:536687d4` for `main@sha1:` and 40 hex
    digits (as the pages show it; the object holds the full one)."""
    head, sep, tail = revision.rpartition(":") if ":" in revision else revision.rpartition("/")
    return f"{head}{sep}{tail[:8]}" if sep and len(tail) > 12 else revision


def failing(ready: Condition | None, *, stalled: bool = False) -> bool:
    """Ready=False for a reason that is not a wait (or Stalled)."""
    return (
        ready is not None
        and ready.status == "False"
        and (stalled or ready.reason not in WAITING_REASONS)
    )


def current_tag(chain: Chain) -> str | None:
    """The tag the ImagePolicy picked for the app's prefix (not one left from an earlier
    prefix while Flux has yet to evaluate the new one)."""
    policy, k = chain.policy, chain.kustomization
    tag = policy.latest_tag if policy else None
    if not tag or (k is not None and k.prefix and not tag_has_prefix(tag, k.prefix)):
        return None
    return tag


def waiting_for_image(chain: Chain) -> bool:
    """Whether the app still needs its first image: only then do the image links explain."""
    k = chain.kustomization
    return k is None or branch_image_tag(k) is None


# ------------------------------------------------------------------- ImageRepository
def image_repository_link(chain: Chain, lookup: Lookup[ImageRepositoryView]) -> Link:
    ref = chain.policy.repository if chain.policy else None
    namespace, name = ref or ("", "")
    look = commands("ImageRepository", namespace, name)

    def link(ok: bool | None, summary: str, finding: Finding | None = None) -> Link:
        explains = finding if finding and waiting_for_image(chain) else None
        return Link("ImageRepository", namespace, name, ok, summary, look, explains)

    repo = lookup.view
    if not lookup.known:
        return link(None, lookup.note)
    if repo is None:
        message = f'imagerepositories.image.toolkit.fluxcd.io "{name}" not found'
        return link(
            False,
            "does not exist",
            Finding(
                f"The ImageRepository {namespace}/{name} that the catalog names for "
                f"{chain.app} does not exist, so Flux looks for no image of it.",
                "NotFound",
                message,
                (f"kubectl get imagerepositories -n {namespace}", *look),
            ),
        )
    ready = repo.ready
    reconcile = f"flux reconcile image repository {name} -n {namespace}"
    if repo.suspended:
        return link(
            None,
            "suspended: Flux does not scan it",
            Finding(
                f"The ImageRepository {namespace}/{name} is suspended, so Flux finds no new "
                f"image of {repo.image}.",
                "Suspended",
                "spec.suspend is true",
                (*look, f"flux resume image repository {name} -n {namespace}"),
            ),
        )
    if ready is not None and failing(ready):
        return link(
            False,
            f"{ready.reason}: {ready.message}",
            Finding(
                _scan_failure(repo, ready),
                ready.reason,
                ready.message,
                (*look, reconcile),
            ),
        )
    if ready is not None and ready.status == "True":
        return link(True, f"scanned {repo.image}: {repo.tag_count} tags")
    message = ready.message if ready else "not scanned yet"
    return link(
        None,
        f"scanning {repo.image}: {message}",
        Finding(
            f"Flux has not scanned {repo.image} yet.",
            ready.reason if ready else "Progressing",
            message,
            look,
            broken=False,
        ),
    )


def _scan_failure(repo: ImageRepositoryView, ready: Condition) -> str:
    message = ready.message
    where = f"{repo.namespace}/{repo.name}"
    if ready.reason == "AuthenticationFailed":
        return (
            f"Flux cannot authenticate to the registry of {repo.image} "
            f"(ImageRepository {where}): {message}. Check the Secret its spec.secretRef names."
        )
    if "UNAUTHORIZED" in message or "401 Unauthorized" in message or "DENIED" in message:
        return (
            f"The registry refuses Flux's credentials for {repo.image}, so Flux cannot list "
            f"its tags. Renew the pull credentials of ImageRepository {where}."
        )
    if "NAME_UNKNOWN" in message:
        return f"The registry has no repository {repo.image} (ImageRepository {where})."
    if ready.reason == "ImageURLInvalid":
        return f"The image name of ImageRepository {where} is not valid: {message}."
    return f"Flux cannot scan {repo.image} (ImageRepository {where}): {message}."


# ------------------------------------------------------------------- ImagePolicy
def image_policy_link(chain: Chain) -> Link:
    name = f"{chain.env}-{chain.app}"
    look = commands("ImagePolicy", chain.namespace, name)
    prefix = chain.kustomization.prefix if chain.kustomization else ""
    form = f"`{prefix}-<sha>-<timestamp>`"

    def link(ok: bool | None, summary: str, finding: Finding | None = None) -> Link:
        explains = finding if finding and waiting_for_image(chain) else None
        return Link("ImagePolicy", chain.namespace, name, ok, summary, look, explains)

    policy = chain.policy
    if policy is None:
        return link(
            None,
            "not created yet",
            Finding(
                "Kollie has not created the app's ImagePolicy yet.",
                "ImagePolicyMissing",
                chain.status.message,
                look,
                broken=False,
            ),
        )
    if current_tag(chain) is not None:
        return link(True, f"picks {policy.latest_tag}")
    ready = policy.ready
    evaluated = ready is not None and (
        max(ready.observed_generation, policy.observed_generation) >= policy.generation
    )
    if policy.latest_tag and not evaluated:
        # The prefix just changed: the tag it shows is the old prefix's.
        text = f"Flux has not looked for images tagged {form} yet."
        message = ready.message if ready else ""
        return link(None, "not evaluated yet", Finding(text, "Progressing", message, look, False))
    if ready is None or not failing(ready, stalled=_stalled(policy)):
        message = ready.message if ready else "not evaluated yet"
        first_scan = ready is not None and "no tags in database" in message
        summary = (
            "Waiting for Flux's first scan of the image repository."
            if first_scan
            else f"Flux has not picked an image tagged {form} yet."
        )
        return link(
            None,
            message,
            Finding(summary, ready.reason if ready else "Progressing", message, look, False),
        )
    return link(False, f"{ready.reason}: {ready.message}", _policy_failure(chain, ready, look))


def _stalled(policy: ImagePolicyView) -> bool:
    return any(c.type == "Stalled" and c.status == "True" for c in policy.conditions)


def _policy_failure(chain: Chain, ready: Condition, look: tuple[str, ...]) -> Finding:
    ref = chain.policy.repository if chain.policy else None
    repo_ns, repo_name = ref or ("", "")
    prefix = chain.kustomization.prefix if chain.kustomization else ""
    message = ready.message
    if ready.reason == "AccessDenied":
        summary = (
            f"The ImageRepository {repo_ns}/{repo_name} does not let ImagePolicies in "
            f"namespace '{chain.namespace}' use it: its spec.accessFrom must select that "
            "namespace."
        )
        return Finding(summary, ready.reason, message, (*look, *_repo_look(repo_ns, repo_name)))
    if "does not exist" in message:
        summary = (
            f"The ImageRepository {repo_ns}/{repo_name} the app's ImagePolicy names does not exist."
        )
        return Finding(summary, ready.reason, message, (*look, *_repo_look(repo_ns, repo_name)))
    if "version list argument cannot be empty" in message or "unable to determine" in message:
        lookup = chain.image_repository
        repo = lookup.view if lookup else None
        tags = (
            f"kubectl get imagerepository {repo_name} -n {repo_ns} "
            "-o jsonpath='{.status.lastScanResult.latestTags}'"
        )
        if repo is not None and prefix:
            found = evidence(prefix, repo)
            return Finding(
                sentence(found, repo.image),
                ready.reason,
                message,
                (*look, tags),
                broken=not found.matching,
            )
        summary = f"No image tag matches `{prefix}-<sha>-<timestamp>`." + (
            f" ({lookup.note}.)" if lookup is not None and lookup.note else ""
        )
        return Finding(summary, ready.reason, message, (*look, tags))
    summary = f"The ImagePolicy cannot pick an image: {message}"
    return Finding(summary, ready.reason, message, look)


def _repo_look(namespace: str, name: str) -> tuple[str, ...]:
    return (f"kubectl get imagerepository {name} -n {namespace} -o yaml",)
