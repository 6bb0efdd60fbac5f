"""The simulated image-reflector-controller's ImagePolicy (v1.0.4,
internal/controller/imagepolicy_controller.go): the referenced ImageRepository, subject to its
`accessFrom`; the tag its policy picks from the repository's last scan; and with
`digestReflectionPolicy`, the tag's digest from the registry.

Failures (Ready=False):

- no such ImageRepository: `DependencyNotReady`, `failed to get the referred ImageRepository:
  referenced ImageRepository does not exist: imagerepositories.image.toolkit.fluxcd.io
  "<name>" not found`;
- not allowed by `accessFrom`: `AccessDenied`, `failed to get the referred ImageRepository:
  access denied: '<ns>/<name>' can't be accessed due to missing ACL labels on 'accessFrom'`
  (or `... due to ACL labels mismatch on namespace '<ns>'`);
- no scan yet: `DependencyNotReady`, `retrying in 30s error: no tags in database`;
- no tag qualifies: `Failure`, `version list argument cannot be empty` (semver:
  `unable to determine latest version from provided list`);
- the digest cannot be read: `Failed`, `failed fetching digest of <image>:<tag>: failed
  fetching descriptor for "<image>:<tag>": HEAD https://...: unexpected status code ...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesim.errors import not_found
from kubesim.flux import conditions as cond
from kubesim.flux.controller import Result, object_key
from kubesim.flux.image import GROUP, REPOSITORIES, ImageReflector
from kubesim.flux.policies import InvalidPolicy, NoLatest, check_policy, select
from kubesim.flux.registry import InvalidReference, canonical_name, refused_error


def _labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


class ImagePolicyController(ImageReflector):
    plural = "imagepolicies"
    kind = "ImagePolicy"

    def reconcile(self, obj: dict[str, Any]) -> Result:
        started = self.begin(obj)
        if started is None:
            return Result()
        obj, spec = started, started.get("spec") or {}
        status = dict(obj.get("status") or {})
        c = cond.Conditions(obj, self.now())
        reflect = spec.get("digestReflectionPolicy") or "Never"
        if (
            reflect == "Always" and spec.get("interval") is None
        ):  # the v1 CRD's CEL rule rejects this first
            return self._stalled(
                obj,
                status,
                c,
                "IntervalNotConfigured",
                "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
            )
        c.progressing("reconciliation in progress")
        repo, reason, problem = self._repository(obj)
        if repo is None:
            return self.failed(
                obj, status, c, reason, f"failed to get the referred ImageRepository: {problem}"
            )
        image = str((repo.get("spec") or {}).get("image", ""))
        try:
            canonical = canonical_name(image)
            check_policy(spec.get("policy") or {})
            tags = self.database.tags(
                str((repo.get("status") or {}).get("canonicalImageName") or canonical)
            )
            if not tags:
                wait = self.settings.dependency_requeue
                c.mark_false(
                    cond.READY,
                    "DependencyNotReady",
                    f"retrying in {cond.format_duration(wait)} error: no tags in database",
                )
                c.retrying()
                status["conditions"] = c.items()
                self.write_status(obj, self.handled(obj, status))
                return Result(after=wait)
            chosen = select(tags, spec.get("filterTags"), spec.get("policy") or {})
        except InvalidReference as e:
            return self._stalled(obj, status, c, "ImageURLInvalid", str(e))
        except InvalidPolicy as e:
            return self._stalled(obj, status, c, "InvalidPolicy", str(e))
        except NoLatest as e:
            return self.failed(obj, status, c, "Failure", str(e))
        latest: dict[str, str] = {"name": image, "tag": chosen}
        previous = status.get("latestRef")
        if reflect in ("IfNotPresent", "Always"):
            keep = (
                reflect == "IfNotPresent"
                and previous
                and previous.get("name") == image
                and previous.get("tag") == chosen
                and previous.get("digest")
            )
            digest = (
                previous["digest"] if keep and previous else self.registry.digest(canonical, chosen)
            )
            if digest is None or self.registry.refuses(canonical):
                return self.failed(
                    obj,
                    status,
                    c,
                    cond.FAILED,
                    _digest_error(
                        image, canonical, chosen, refused=self.registry.refuses(canonical)
                    ),
                )
            latest["digest"] = digest
        if previous != latest:
            if previous:
                status["observedPreviousRef"] = previous
            status["latestRef"] = latest
        c.delete(cond.RECONCILING)
        c.delete(cond.STALLED)
        c.mark_true(cond.READY, cond.SUCCEEDED, ready_message(status))
        status.update(conditions=c.items(), observedGeneration=obj["metadata"].get("generation"))
        self.write_status(obj, self.handled(obj, status))
        return Result(after=cond.parse_duration(spec.get("interval"), 0.0) or None)

    def _repository(self, obj: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str, str]:
        """The referenced ImageRepository, or (None, reason, message) as the controller reports."""
        ns = obj["metadata"]["namespace"]
        ref = (obj.get("spec") or {}).get("imageRepositoryRef") or {}
        repo_ns, repo_name = str(ref.get("namespace") or ns), str(ref.get("name", ""))
        repo = self.api.store.get(REPOSITORIES, repo_ns, repo_name)
        if repo is None:
            error = not_found("imagerepositories", GROUP, repo_name)
            return (
                None,
                "DependencyNotReady",
                f"referenced ImageRepository does not exist: {error.message}",
            )
        if repo_ns == ns:
            return repo, "", ""
        access = (repo.get("spec") or {}).get("accessFrom")
        if access is None:
            return (
                None,
                "AccessDenied",
                (
                    f"access denied: '{repo_ns}/{repo_name}' can't be accessed due to missing "
                    "ACL labels on 'accessFrom'"
                ),
            )
        namespace = self.api.store.get(("", "namespaces"), "", ns) or {"metadata": {}}
        labels = namespace["metadata"].get("labels") or {}
        if any(_labels_match(s, labels) for s in access.get("namespaceSelectors") or []):
            return repo, "", ""
        return (
            None,
            "AccessDenied",
            (
                f"access denied: '{repo_ns}/{repo_name}' can't be accessed due to ACL labels "
                f"mismatch on namespace '{ns}'"
            ),
        )

    def _stalled(
        self,
        obj: dict[str, Any],
        status: dict[str, Any],
        c: cond.Conditions,
        reason: str,
        message: str,
    ) -> Result:
        c.mark_true(cond.STALLED, reason, message)
        c.mark_false(cond.READY, reason, message)
        c.delete(cond.RECONCILING)
        status.update(conditions=c.items(), observedGeneration=obj["metadata"].get("generation"))
        self.write_status(obj, self.handled(obj, status))
        return Result()

    def refers_to(self, repo: Mapping[str, Any]) -> Any:
        ns, name = object_key(repo)

        def check(policy: dict[str, Any]) -> bool:
            ref = (policy.get("spec") or {}).get("imageRepositoryRef") or {}
            return bool(
                ref.get("name") == name
                and (ref.get("namespace") or policy["metadata"]["namespace"]) == ns
            )

        return check


def ready_message(status: Mapping[str, Any]) -> str:
    """composeImagePolicyReadyMessage of the controller."""
    latest = status["latestRef"]
    message = f"Latest image tag for {latest['name']} resolved to {latest['tag']}"
    if latest.get("digest"):
        message += f" with digest {latest['digest']}"
    previous = status.get("observedPreviousRef")
    if previous and previous != latest:
        message += f" (previously {previous.get('name')}:{previous.get('tag')}"
        if previous.get("digest"):
            message += f"@{previous['digest']}"
        message += ")"
    return message


def _digest_error(image: str, canonical: str, tag: str, *, refused: bool = False) -> str:
    """What a HEAD of a tag the registry no longer has (or refuses to show) gives the controller."""
    host, _, path = canonical.partition("/")
    if refused:
        return (
            f"failed fetching digest of {image}:{tag}: failed fetching descriptor for "
            f'"{canonical}:{tag}": {refused_error(canonical, "HEAD", f"manifests/{tag}")}'
        )
    return (
        f"failed fetching digest of {image}:{tag}: failed fetching descriptor for "
        f'"{canonical}:{tag}": HEAD https://{host}/v2/{path}/manifests/{tag}: '
        "unexpected status code 404 Not Found (HEAD responses "
        "have no body, use GET for details)"
    )
