"""Kollie: ephemeral test environments on Kubernetes with Flux."""

__version__ = "0.1.0"
