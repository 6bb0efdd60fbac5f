"""kubesim: a Kubernetes API server emulator with simulated Flux controllers.

It serves the Kubernetes REST API over HTTP from an in-memory store so that real clients
(kubectl, kubernetes-asyncio, the official `kubernetes` client) can be used against it, and it
never imports Kollie: tests that use it cannot pass by sharing a bug with the code under test.
"""

from kubesim.cluster import PACKAGED_CRDS, SimCluster

__all__ = ["PACKAGED_CRDS", "SimCluster"]
