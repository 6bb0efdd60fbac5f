"""Prometheus metrics, one registry per application (tests run several in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "kollie_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "kollie_http_request_duration_seconds", "HTTP request latency", ["route"], registry=r
        )
        self.watch_restarts = Gauge(
            "kollie_watch_restarts", "Watch streams re-opened, per informer", ["kind"], registry=r
        )
        self.watch_relists = Gauge(
            "kollie_watch_relists", "Full relists, per informer", ["kind"], registry=r
        )
        self.watch_errors = Gauge(
            "kollie_watch_errors", "Failed list/watch calls, per informer", ["kind"], registry=r
        )
        self.cache_objects = Gauge(
            "kollie_cache_objects", "Objects in the cache, per kind", ["kind"], registry=r
        )
        self.environments = Gauge(
            "kollie_environments", "Environments known to this replica", registry=r
        )
        self.leader = Gauge(
            "kollie_leader", "1 while this replica holds the leader Lease", registry=r
        )
        self.writes = Counter(
            "kollie_cluster_writes",
            "Writes Kollie made to the cluster",
            ["operation", "outcome"],
            registry=r,
        )
        self.webhooks = Counter(
            "kollie_webhook_deliveries",
            "Registry webhook deliveries",
            ["source", "outcome"],
            registry=r,
        )
        self.sse_clients = Gauge(
            "kollie_sse_clients", "Connected server-sent-event streams", registry=r
        )
        self.sse_dropped = Gauge(
            "kollie_sse_dropped",
            "Streams dropped because their client fell behind (browsers reconnect)",
            registry=r,
        )
