"""The later links of an app's chain: the GitRepository its Kustomization builds from, the
Kustomization, the HelmReleases it applied, and the environment asleep outside its window."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

from kollie.diagnosis_links import (
    Chain,
    Finding,
    GitSource,
    Link,
    commands,
    current_tag,
    failing,
    short_revision,
)
from kollie.fluxviews import HelmReleaseView, helm_release_problem, helm_release_state
from kollie.projections import Condition, KustomizationView
from kollie.reftables import Lookup
from kollie.status import branch_image_tag

_UNSET = re.compile(r'variable not set \(strict mode\): "([^"]+)"')
_CHECKED = re.compile(r"\[([^\]]*)\]")
_ENTRY = re.compile(r"^(\w+)/(?:([^/\s]+)/)?([^/\s]+) status: '(\w+)'$")
_DEPENDENCY = re.compile(r"dependency '([^/']+)/([^']+)'")


def flux_links(chain: Chain) -> Iterator[Link]:
    k = chain.kustomization
    if k is not None:
        yield source_link(chain, k)
    yield kustomization_link(chain)
    for key, lookup in chain.helm_releases:
        yield helm_release_link(key, lookup)


def environment_link(chain: Chain) -> Link | None:
    """The environment's own link, when it sleeps: it explains whatever waits for workloads."""
    sleep = chain.sleep
    if sleep is None or not sleep.asleep:
        return None
    # The step says the state in a few words; the summary (the cause) says what it means.
    if sleep.schedule:
        wakes = f"it wakes at {_when(sleep.wakes_at)}" if sleep.wakes_at else "it stays asleep"
        summary = (
            f"The environment is asleep outside its schedule ({sleep.schedule}), so its "
            f"workloads are scaled to zero; {wakes}, or now if you extend it."
        )
        step = f"asleep outside {sleep.schedule}"
    elif sleep.wakes_at is not None:
        summary = (
            f"The environment is asleep until its uptime window starts at {_when(sleep.wakes_at)}."
        )
        step = f"asleep until {_when(sleep.wakes_at)}"
    else:
        summary = (
            f"The environment is asleep: its uptime window ended at {_when(sleep.until)}, so "
            "its workloads are scaled to zero. Extending it wakes it up."
        )
        step = f"asleep since {_when(sleep.until)}"
    look = (
        f"kubectl get deployments -n {chain.env}",
        f"kubectl get configmap {chain.env} -n {chain.namespace} -o yaml",
    )
    message = f"outside its uptime window (downscaler_uptime: {chain.window})"
    finding = Finding(summary, "Asleep", message, look)
    return Link("Environment", chain.namespace, chain.env, False, step, look, finding)


def _when(moment: datetime | None) -> str:
    """A moment in UTC, in words every reader shares: the diagnosis is the same text for every
    viewer, the API and the CLI (the page's uptime card words it in the viewer's zone)."""
    if moment is None:
        return "an unknown time"
    return moment.astimezone(UTC).strftime("%H:%M UTC on %a %d %b")


# ------------------------------------------------------------------- GitRepository
def source_link(chain: Chain, k: KustomizationView) -> Link:
    kind, namespace, name = k.source_kind or "GitRepository", k.source_namespace, k.source_name
    look = commands(kind, namespace, name)
    lookup = chain.source
    if lookup is None:
        return Link(kind, namespace, name, None, f"Kollie does not follow {kind} sources", look)
    # A source failing after it stored an artifact leaves a Ready Kustomization on the last
    # revision: only a Kustomization that is not Ready is explained by its source.
    explains = k.ready is None or k.ready.status != "True"

    def link(ok: bool | None, summary: str, finding: Finding | None = None) -> Link:
        return Link(kind, namespace, name, ok, summary, look, finding if explains else None)

    if not lookup.known:
        return link(None, lookup.note)
    source = lookup.view
    if source is None:
        return link(
            False,
            "does not exist",
            Finding(
                f"The GitRepository {namespace}/{name} that the app's Kustomization builds from "
                "does not exist.",
                "NotFound",
                f'gitrepositories.source.toolkit.fluxcd.io "{name}" not found',
                look,
            ),
        )
    ready = source.ready
    if ready is not None and failing(ready):
        reconcile = f"flux reconcile source git {name} -n {namespace}"
        return link(
            False,
            f"{ready.reason}: {ready.message}",
            Finding(
                _fetch_failure(chain, source, ready),
                ready.reason,
                ready.message,
                (*look, reconcile),
            ),
        )
    if ready is not None and ready.status == "True":
        return link(True, f"revision {short_revision(source.revision) or 'unknown'}")
    message = ready.message if ready else "not fetched yet"
    return link(
        None,
        f"fetching: {message}",
        Finding(
            f"Flux is still fetching GitRepository {namespace}/{name}.",
            ready.reason if ready else "Progressing",
            message,
            look,
            broken=False,
        ),
    )


def _fetch_failure(chain: Chain, source: GitSource, ready: Condition) -> str:
    where = f"GitRepository {source.namespace}/{source.name}"
    message = ready.message
    if "couldn't find remote ref" in message:
        if source.namespace == chain.namespace:
            return (
                f"This environment follows the Flux repository branch `{source.branch}`, which "
                "does not exist (any more), so Flux cannot fetch it. Push the branch again, or "
                "switch the environment back to the default branch."
            )
        return (
            f"The branch `{source.branch}` of {where} does not exist (any more), so Flux "
            "cannot fetch the app's manifests."
        )
    if ready.reason == "AuthenticationFailed" and "failed to get secret" in message:
        return (
            f"Flux cannot read the git credentials of {where}: the Secret its spec.secretRef "
            "names does not exist."
        )
    if ready.reason == "AuthenticationFailed":
        return f"Flux cannot authenticate to the git repository of {where}: {message}"
    return f"Flux cannot fetch {where}: {message}"


# ------------------------------------------------------------------- Kustomization
def kustomization_link(chain: Chain) -> Link:
    name = f"{chain.env}-{chain.app}"
    look = commands("Kustomization", chain.namespace, name)
    k = chain.kustomization

    def link(ok: bool | None, summary: str, finding: Finding) -> Link:
        return Link("Kustomization", chain.namespace, name, ok, summary, look, finding)

    if k is None:
        text = "Kollie has not created the app's Kustomization yet."
        return link(None, "not created yet", Finding(text, "KustomizationMissing", "", look, False))
    if k.deleting:
        text = "Flux is removing this app's objects."
        return link(None, "being deleted", Finding(text, "Deleting", text, look, False))
    if k.suspended and branch_image_tag(k) is None:
        tag = current_tag(chain)
        text = (
            f"Kollie is setting the image tag `{tag}`."
            if tag
            else "The app waits for its first image: its Kustomization stays suspended until an "
            f"image tagged `{k.prefix}-<sha>-<timestamp>` exists."
        )
        return link(
            None,
            "suspended until its first image",
            Finding(text, "WaitingForImage", chain.status.message, look, False),
        )
    if k.suspended:
        text = "The app's Kustomization is suspended: Flux does not apply it."
        resume = f"flux resume kustomization {name} -n {chain.namespace}"
        return link(
            None, "suspended", Finding(text, "Suspended", "spec.suspend is true", (*look, resume))
        )
    ready = k.ready
    current = (
        ready is not None and max(ready.observed_generation, k.observed_generation) >= k.generation
    )
    if ready is None or not current:
        text = "Flux has not reconciled the latest change yet."
        message = ready.message if ready else ""
        return link(
            None,
            "not reconciled yet",
            Finding(text, "Progressing", message, look, False, waits_for_workloads=True),
        )
    if ready.status == "True":
        applied = f"applied {short_revision(k.last_applied_revision)}"
        return Link("Kustomization", chain.namespace, name, True, applied, look)
    return link(
        False if failing(ready, stalled=k.stalled) else None,
        f"{ready.reason}: {ready.message}",
        _kustomization_finding(chain, k, ready, look),
    )


def _kustomization_finding(
    chain: Chain, k: KustomizationView, ready: Condition, look: tuple[str, ...]
) -> Finding:
    reason, message = ready.reason, ready.message
    if reason == "BuildFailed":
        unset = _UNSET.search(message)
        text = (
            f"The app's manifests use `${{{unset.group(1)}}}`, which no substitution sets: add "
            f"`{unset.group(1)}` to the catalog's substitutions, or give it a default in the "
            f"manifests (`${{{unset.group(1)}:=value}}`)."
            if unset
            else f"Flux cannot build the app's manifests: {message}"
        )
        return Finding(text, reason, message, look)
    if reason == "HealthCheckFailed" or "health check" in message.lower():
        tree = f"flux tree kustomization {k.name} -n {chain.namespace}"
        return Finding(
            _health_sentence(chain, message),
            reason,
            message,
            (*look, tree),
            broken=failing(ready, stalled=k.stalled),
            deeper_wins=True,
            waits_for_workloads=True,
        )
    if reason == "DependencyNotReady":
        dependency = _DEPENDENCY.search(message)
        other = dependency.group(2) if dependency else "another app"
        if other.startswith(f"{chain.env}-"):
            other = f"app `{other[len(chain.env) + 1 :]}`"
        text = f"The app waits for {other}, which is not Ready yet (see its diagnosis)."
        return Finding(text, reason, message, look, broken=False)
    if reason == "ArtifactFailed":
        text = f"The Kustomization has no source artifact to build from: {message}"
        return Finding(text, reason, message, look)
    if not failing(ready, stalled=k.stalled):
        text = f"Flux is working on it: {message}"
        return Finding(text, reason, message, look, broken=False, waits_for_workloads=True)
    return Finding(f"Flux could not apply the app ({reason}): {message}", reason, message, look)


def _health_sentence(chain: Chain, message: str) -> str:
    """What the health check names, in words; whether Kollie can look at the HelmReleases."""
    listed = _CHECKED.search(message)
    named = []
    for entry in listed.group(1).split(", ") if listed else []:
        m = _ENTRY.match(entry.strip())
        if m:
            kind, namespace, name, status = m.groups()
            named.append((kind, f"{namespace}/{name}" if namespace else name, status))
    if not named:
        return f"The app's health check did not pass: {message}"
    if "timeout waiting for" in message:
        waited = "; ".join(f"{kind} {where} ({status})" for kind, where, status in named)
        text = f"Flux applied the app, but its health check timed out waiting for {waited}."
    else:
        failed = "; ".join(f"{kind} {where} is {status}" for kind, where, status in named)
        text = f"Flux applied the app, but its health check failed: {failed}."
    unread = next((lookup.note for _, lookup in chain.helm_releases if not lookup.known), "")
    if unread and any(kind == "HelmRelease" for kind, _, _ in named):
        text += f" ({unread}, so the diagnosis stops at the Kustomization.)"
    return text


# ------------------------------------------------------------------- HelmRelease
def helm_release_link(key: tuple[str, str], lookup: Lookup[HelmReleaseView]) -> Link:
    namespace, name = key
    look = commands("HelmRelease", namespace, name)
    if not lookup.known:
        return Link("HelmRelease", namespace, name, None, lookup.note, look)
    release = lookup.view
    if release is None:
        text = "not found (the Kustomization's inventory lists it)"
        return Link("HelmRelease", namespace, name, None, text, look)
    state = helm_release_state(release)
    problem = helm_release_problem(release)
    message = problem.message if problem else ""
    if state == "ready":
        return Link("HelmRelease", namespace, name, True, message or "Ready", look)
    reason = problem.reason if problem and problem.reason else "Progressing"
    if state == "pending":
        text = f"helm-controller is working on release {namespace}/{name}: {message or 'waiting'}"
        finding = Finding(text, reason, message, look, broken=False, waits_for_workloads=True)
        return Link("HelmRelease", namespace, name, None, message or "in progress", look, finding)
    reconcile = f"flux reconcile helmrelease {name} -n {namespace} --force"
    finding = Finding(
        _helm_failure(release, reason, message),
        reason,
        message,
        (*look, reconcile),
        waits_for_workloads=True,
    )
    return Link("HelmRelease", namespace, name, False, f"{reason}: {message}", look, finding)


def _helm_failure(release: HelmReleaseView, reason: str, message: str) -> str:
    where = f"{release.namespace}/{release.name}"
    if reason in ("InstallFailed", "UpgradeFailed"):
        action = "install" if reason == "InstallFailed" else "upgrade"
        error = message.partition(": ")[2] or message
        text = f"Helm could not {action} release {where}: {error}."
        remediated = release.remediated
        if remediated is not None and remediated.status == "True":
            text += {
                "RollbackSucceeded": " helm-controller rolled it back to the previous release.",
                "UninstallSucceeded": " helm-controller uninstalled it again.",
            }.get(remediated.reason, "")
        stalled = release.stalled
        if stalled is not None and stalled.status == "True":
            text += f" It gave up: {stalled.message}."
        elif release.reconciling:
            text += " helm-controller will try again."
        return text
    if reason in ("ArtifactFailed", "SourceNotReady"):
        return f"helm-controller cannot get the chart of release {where}: {message}"
    if reason == "ValuesError":
        return f"helm-controller cannot compose the values of release {where}: {message}"
    if reason in ("RollbackFailed", "UninstallFailed"):
        return f"Helm's remediation of release {where} failed too: {message}"
    if reason == "TestFailed":
        return f"The Helm tests of release {where} failed: {message}"
    return f"helm-controller reports {reason} for release {where}: {message}"
