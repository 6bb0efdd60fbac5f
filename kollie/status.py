"""An app's status as a Flux user reads it, from its Kustomization and ImagePolicy.

States: Ready, Progressing, Failed, Suspended, Deleting. `ready` is True for Ready, False for
Failed, and None while the outcome is not known yet (Progressing, Suspended, Deleting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kollie.fluxviews import HelmReleaseView, helm_release_problem, helm_release_state
from kollie.naming import tag_has_prefix
from kollie.projections import ImagePolicyView, KustomizationView

State = Literal["Ready", "Progressing", "Failed", "Suspended", "Deleting"]

# Reasons for Ready=False that mean "waiting", not "broken" (fluxcd/pkg/apis/meta).
_WAITING_REASONS = {"Progressing", "DependencyNotReady", "ProgressingWithRetry"}


@dataclass(frozen=True, slots=True)
class AppStatus:
    state: State
    reason: str
    message: str

    @property
    def ready(self) -> bool | None:
        if self.state == "Ready":
            return True
        if self.state == "Failed":
            return False
        return None


def _policy_status(policy: ImagePolicyView | None, prefix: str) -> AppStatus | None:
    """Why an app is not running yet when the cause is its image; None when the image is fine."""
    if policy is None:
        return AppStatus(
            "Progressing", "ImagePolicyMissing", "Waiting for the ImagePolicy to be created"
        )
    if policy.latest_tag and (not prefix or tag_has_prefix(policy.latest_tag, prefix)):
        return None
    if (
        policy.ready is not None
        and policy.ready.status == "False"
        and policy.ready.reason not in _WAITING_REASONS
    ):
        return AppStatus("Failed", policy.ready.reason or "ImagePolicyFailed", policy.ready.message)
    return AppStatus(
        "Progressing", "WaitingForImage", f"Waiting for an image tagged {prefix}-<sha>-<timestamp>"
    )


def branch_image_tag(k: KustomizationView) -> str | None:
    """The image tag the app runs for its branch prefix. A suspended Kustomization may still
    hold the tag of the prefix it followed before (the tag belongs to image follow's patch, so
    the apply that switched the prefix leaves it): that is no image of the new branch."""
    stale = k.suspended and k.image_tag and k.prefix and not tag_has_prefix(k.image_tag, k.prefix)
    return None if stale else k.image_tag


def app_status(
    kustomization: KustomizationView | None,
    policy: ImagePolicyView | None,
    releases: Sequence[HelmReleaseView] = (),
) -> AppStatus:
    """The app's state; `releases` are the HelmReleases its Kustomization applied, as far as
    Kollie reads them: a Kustomization is Ready once it applied them, the app once they are."""
    status = _kustomization_status(kustomization, policy)
    if status.state != "Ready":
        return status
    states = [(helm_release_state(r), r) for r in releases]
    for wanted, state in (("failing", "Failed"), ("pending", "Progressing")):
        release = next((r for s, r in states if s == wanted), None)
        if release is not None:
            problem = helm_release_problem(release)
            reason = problem.reason if problem and problem.reason else "Progressing"
            message = problem.message if problem else "Waiting for helm-controller"
            return AppStatus(
                "Failed" if state == "Failed" else "Progressing",
                reason,
                f"HelmRelease {release.namespace}/{release.name}: {message}",
            )
    return status


def _kustomization_status(
    kustomization: KustomizationView | None, policy: ImagePolicyView | None
) -> AppStatus:
    if kustomization is None:
        return _policy_status(policy, "") or AppStatus(
            "Progressing", "KustomizationMissing", "Waiting for the Kustomization to be created"
        )
    k = kustomization
    if k.deleting:
        return AppStatus("Deleting", "Deleting", "Flux is removing this app's objects")
    tag = branch_image_tag(k)
    if tag is None:
        waiting = _policy_status(policy, k.prefix)
        if waiting is not None:
            return waiting
    if k.suspended and tag is not None:
        return AppStatus("Suspended", "Suspended", "Reconciliation is suspended")
    if k.suspended:
        return AppStatus("Progressing", "WaitingForImage", "Waiting for the image tag to be set")
    # Flux moves status.observedGeneration only on success; a failed reconcile of a new generation
    # shows on the Ready condition's own observedGeneration, so that is what says "current".
    current = (
        k.ready is not None
        and max(k.ready.observed_generation, k.observed_generation) >= k.generation
    )
    if k.ready is None or not current:
        return AppStatus(
            "Progressing", "Progressing", "Waiting for Flux to reconcile the latest change"
        )
    if k.ready.status == "True":
        return AppStatus("Ready", k.ready.reason or "ReconciliationSucceeded", k.ready.message)
    if k.ready.status == "False" and not k.stalled and k.ready.reason in _WAITING_REASONS:
        return AppStatus("Progressing", k.ready.reason, k.ready.message)
    if k.ready.status == "False":
        return AppStatus("Failed", k.ready.reason or "ReconciliationFailed", k.ready.message)
    return AppStatus("Progressing", k.ready.reason or "Progressing", k.ready.message)
