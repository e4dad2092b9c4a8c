"""Prometheus metrics of one node, kept in a registry of its own.

A registry per node, not the process-wide default, lets tests run several nodes in one
process without their counts mixing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Request latency buckets in seconds, from a fast cached read to a peer time-out.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class _GaugeCallbacks(Collector):
    """Read gauges from callbacks at scrape time, so that no code path updates them."""

    def __init__(self) -> None:
        self._gauges: list[tuple[str, str, str, Callable[[], Mapping[str, float]]]] = []

    def add(
        self,
        name: str,
        documentation: str,
        label: str,
        read: Callable[[], Mapping[str, float]],
    ) -> None:
        self._gauges.append((name, documentation, label, read))

    def collect(self) -> Iterable[Metric]:
        for name, documentation, label, read in self._gauges:
            family = GaugeMetricFamily(name, documentation, labels=[label])
            for value_label, value in read().items():
                family.add_metric([value_label], value)
            yield family


class NodeMetrics:
    """Request, gossip and pool metrics of one node."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Histogram(
            "seventweets_http_request_duration_seconds",
            "Time to serve an HTTP request, by route, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.gossip_rounds = Counter(
            "seventweets_gossip_rounds",
            "Gossip rounds this node started.",
            registry=self.registry,
        )
        self.gossip_exchange_failures = Counter(
            "seventweets_gossip_exchange_failures",
            "Gossip exchanges with a peer that failed or timed out.",
            registry=self.registry,
        )
        self.gossip_sent_bytes = Counter(
            "seventweets_gossip_sent_bytes",
            "Bytes of the request bodies of the gossip exchanges this node started.",
            registry=self.registry,
        )
        self.gossip_received_bytes = Counter(
            "seventweets_gossip_received_bytes",
            "Bytes of the reply bodies of the gossip exchanges this node started, "
            "as sent on the wire (compressed when the peer compressed them).",
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._gauges = _GaugeCallbacks()
        self.registry.register(self._gauges)

    def observe_request(
        self, route: str, method: str, status: int, seconds: float
    ) -> None:
        # Any client can send an invented method; one label for all of them keeps the
        # number of series bounded.
        if method not in KNOWN_METHODS:
            method = "other"
        # Histogram.labels() validates and locks on every call; the children are reused.
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._requests.labels(route, method, str(status))
            self._request_children[key] = child
        child.observe(seconds)

    def add_gauge(
        self,
        name: str,
        documentation: str,
        label: str,
        read: Callable[[], Mapping[str, float]],
    ) -> None:
        """Publish a gauge whose labelled values ``read`` returns at each scrape."""
        self._gauges.add(name, documentation, label, read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
