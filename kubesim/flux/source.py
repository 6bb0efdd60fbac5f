"""The simulated source-controller: GitRepository artifacts from the simulated git host."""

from __future__ import annotations

import hashlib
from typing import Any

from kubesim.flux.common import Key, Reconciler, now_rfc3339, parse_duration, set_condition
from kubesim.flux.githost import GitHost

GROUP = "source.toolkit.fluxcd.io"


class GitRepositoryReconciler(Reconciler):
    group = GROUP
    plural = "gitrepositories"
    manager = "source-controller"

    def __init__(self, *args: Any, git: GitHost, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.git = git

    def reconcile(self, key: Key) -> None:
        obj = self.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return
        status = dict(obj.get("status") or {})
        url = str(spec.get("url", ""))
        ref = spec.get("ref") or {}
        branch = str(ref.get("branch") or "master")
        repo = self.git.repositories.get(url)
        interval = parse_duration(spec.get("interval"), 60.0)
        self.schedule(key, after=interval)
        if repo is None:
            self.finish(obj, status, ready=False, reason="GitOperationFailed",
                        message=f"failed to checkout and determine revision: unable to clone '{url}': "
                                "repository not found")
            return
        sha = repo.branches.get(branch)
        if ref.get("commit"):
            sha = str(ref["commit"]) if ref["commit"] in repo.branches.values() else None
        if sha is None:
            self.finish(obj, status, ready=False, reason="GitOperationFailed",
                        message=f"failed to checkout and determine revision: unable to clone '{url}': "
                                f"couldn't find remote ref \"refs/heads/{branch}\"")
            return
        revision = f"{branch}@sha1:{sha}"
        ns, name = key
        old = status.get("artifact") or {}
        if old.get("revision") != revision:
            status["artifact"] = {
                "path": f"gitrepository/{ns}/{name}/{sha}.tar.gz",
                "url": f"http://source-controller.flux-system.svc.cluster.local./gitrepository/{ns}/{name}/{sha}.tar.gz",
                "revision": revision,
                "digest": "sha256:" + hashlib.sha256(revision.encode()).hexdigest(),
                "lastUpdateTime": now_rfc3339(self.clock()),
                "size": 4096,
            }
        message = f"stored artifact for revision '{revision}'"
        generation = int(obj["metadata"].get("generation", 1))
        status["conditions"] = set_condition(status.get("conditions") or [], type="ArtifactInStorage", status="True",
                                             reason="Succeeded", message=message, generation=generation,
                                             now=now_rfc3339(self.clock()))
        self.finish(obj, status, ready=True, reason="Succeeded", message=message)

    def on_push(self, url: str, branch: str) -> None:
        self.schedule_all(lambda o: (o.get("spec") or {}).get("url") == url)
