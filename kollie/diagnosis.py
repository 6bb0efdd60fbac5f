""" "Why isn't my app ready?": the chain an app runs through, walked link by link, and the first
link that explains its state (DESIGN §5).

The chain: the catalog's ImageRepository (does Flux see the branch's images?) → the app's
ImagePolicy (does one match?) → the GitRepository its Kustomization builds from → the
Kustomization → the HelmReleases it applied; and the environment itself, asleep outside its
uptime window. Each link gives a step (`ok`: True fine, False broken, None under way or unknown)
and, when it explains the app's state, a finding. The cause is the first broken finding, else
the first one under way; a Kustomization's failed health check gives way to a broken
HelmRelease it waited for, and sleep explains what waits for workloads.

Pure: it works on projections gathered by `kollie.diagnosis_chain`, never on the cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kollie.diagnosis_flux import environment_link, flux_links
from kollie.diagnosis_links import Chain, Link, image_policy_link, image_repository_link

__all__ = ["Cause", "Chain", "Diagnosis", "Step", "diagnose"]


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    namespace: str
    name: str
    ok: bool | None
    summary: str


@dataclass(frozen=True, slots=True)
class Cause:
    kind: str
    namespace: str
    name: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    summary: str
    cause: Cause
    steps: tuple[Step, ...]
    commands: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "cause": {
                "kind": self.cause.kind,
                "namespace": self.cause.namespace,
                "name": self.cause.name,
                "reason": self.cause.reason,
                "message": self.cause.message,
            },
            "steps": [
                {
                    "kind": s.kind,
                    "namespace": s.namespace,
                    "name": s.name,
                    "ok": s.ok,
                    "summary": s.summary,
                }
                for s in self.steps
            ],
            "commands": list(self.commands),
        }


def links(chain: Chain) -> Iterator[Link]:
    """The chain's links in order, as far as the app has them."""
    if chain.image_repository is not None:
        yield image_repository_link(chain, chain.image_repository)
    yield image_policy_link(chain)
    yield from flux_links(chain)


def diagnose(chain: Chain) -> Diagnosis | None:
    """Why the app is not Ready; None when it is."""
    if chain.status.state == "Ready":
        return None
    walked = list(links(chain))
    at = _cause_index(walked)
    asleep = environment_link(chain)
    if at is None:
        if asleep is None:
            return _unexplained(chain, walked)
        return _diagnosis(asleep, [*walked, asleep])
    finding = walked[at].finding
    if asleep is not None and finding is not None and finding.waits_for_workloads:
        return _diagnosis(asleep, [*walked[: at + 1], asleep])
    return _diagnosis(walked[at], walked[: at + 1])


def _diagnosis(cause: Link, followed: list[Link]) -> Diagnosis:
    finding = cause.finding
    assert finding is not None, "a cause is a link with a finding"
    return Diagnosis(
        summary=finding.summary,
        cause=Cause(cause.kind, cause.namespace, cause.name, finding.reason, finding.message),
        steps=tuple(_step(link) for link in followed),
        commands=finding.commands,
    )


def _cause_index(walked: list[Link]) -> int | None:
    broken = _first(walked, broken=True)
    if broken is not None:
        found = walked[broken].finding
        if found is not None and found.deeper_wins:
            deeper = _first(walked[broken + 1 :], broken=True)
            if deeper is not None:
                return broken + 1 + deeper
        return broken
    return _first(walked, broken=False)


def _first(walked: list[Link], *, broken: bool) -> int | None:
    return next((i for i, w in enumerate(walked) if w.finding and w.finding.broken is broken), None)


def _step(link: Link) -> Step:
    return Step(link.kind, link.namespace, link.name, link.ok, link.summary)


def _unexplained(chain: Chain, walked: list[Link]) -> Diagnosis:
    """No link explains the state: report the app's own status, with the steps seen."""
    status = chain.status
    kind, namespace, name = _own(chain)
    return Diagnosis(
        summary=f"Kollie sees no broken link; Flux reports: {status.message or status.reason}",
        cause=Cause(kind, namespace, name, status.reason, status.message),
        steps=tuple(_step(w) for w in walked),
        commands=tuple(_commands_of(walked, kind, name)),
    )


def _own(chain: Chain) -> tuple[str, str, str]:
    name = f"{chain.env}-{chain.app}"
    return ("Kustomization" if chain.kustomization else "ImagePolicy", chain.namespace, name)


def _commands_of(walked: list[Link], kind: str, name: str) -> Iterator[str]:
    for link in walked:
        if link.kind == kind and link.name == name:
            yield from link.commands
