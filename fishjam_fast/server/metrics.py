"""The agent server's Prometheus metrics, read from the supervisor at each scrape.

Every metric is named ``fishjam_fast_server_*``; per-worker ones carry a ``worker``
label (the worker's slot, kept across restarts; its counters continue across them).
Nothing here holds a secret: no token appears in a name, a label or a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .supervisor import Supervisor

__all__ = ["METRIC_NAMES", "ServerMetrics"]

PREFIX = "fishjam_fast_server_"

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Dispatch latency buckets, seconds."""

_WORKER_COUNTERS = {
    # worker counter -> (metric name, help)
    "reconnects": ("agent_reconnects", "Agent sessions' reconnections after a lost connection"),
    "messages_sent": ("agent_messages_sent", "Messages (audio chunks, ...) agents sent"),
    "bytes_sent": ("agent_bytes_sent", "Bytes agents sent"),
    "messages_received": (
        "agent_messages_received",
        "Messages (audio chunks, ...) agents received",
    ),
    "bytes_received": ("agent_bytes_received", "Bytes agents received"),
}

METRIC_NAMES = (
    "jobs_active",
    "jobs_waiting",
    "jobs_started_total",
    "jobs_failed_total",
    "jobs_refused_total",
    "jobs_replaced_total",
    "workers_ready",
    "worker_load",
    "worker_event_loop_lag_seconds",
    "worker_restarts_total",
    "agents_connected",
    *(f"{name}_total" for name, _ in _WORKER_COUNTERS.values()),
    "notification_gaps_total",
    "dispatch_latency_seconds",
)
"""Every metric's name, less :data:`PREFIX`."""


class _Collector(Collector):
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        supervisor = self._metrics.supervisor
        if supervisor is None:
            return
        workers = supervisor.workers

        def gauge(name: str, help: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, help, labels=["worker"])

        def counter(
            name: str, help: str, labels: tuple[str, ...] = ("worker",)
        ) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, help, labels=list(labels))

        active = gauge("jobs_active", "Jobs placed on the worker (starting or running)")
        load = gauge("worker_load", "Worker CPU use over the load window, fraction of a core")
        lag = gauge("worker_event_loop_lag_seconds", "Longest event-loop lag in the last report")
        agents = gauge("agents_connected", "Agent sessions connected")
        started = counter("jobs_started", "Jobs handed to the worker")
        failed = counter("jobs_failed", "Jobs that failed (entrypoint raised, no agent peer)")
        restarts = counter("worker_restarts", "Times the worker process was restarted")
        traffic = {k: counter(n, h) for k, (n, h) in _WORKER_COUNTERS.items()}
        for w in workers:
            label = [str(w.index)]
            active.add_metric(label, len(w.jobs))
            load.add_metric(label, w.cpu)
            lag.add_metric(label, w.lag)
            agents.add_metric(label, w.agents)
            started.add_metric(label, supervisor.started[w.index])
            failed.add_metric(label, supervisor.failed[w.index])
            restarts.add_metric(label, w.restarts)
            for name, family in traffic.items():
                family.add_metric(label, w.total(name))
        yield from (active, load, lag, agents, started, failed, restarts, *traffic.values())
        yield GaugeMetricFamily(
            PREFIX + "jobs_waiting", "Jobs waiting for a worker with room", value=supervisor.waiting
        )
        yield GaugeMetricFamily(
            PREFIX + "workers_ready",
            "Worker processes ready to take jobs",
            value=sum(1 for w in workers if w.ready),
        )
        refused = counter("jobs_refused", "Jobs refused, by reason", ("reason",))
        # fleet_*: a job request in the fleet's Redis stream no box took in time
        reasons: tuple[str, ...] = ("full", "queue_full", "wait_timeout", "draining")
        if self._metrics.fleet:
            reasons += ("fleet_full", "fleet_wait_timeout")
        for reason in reasons:
            refused.add_metric([reason], supervisor.refused[reason])
        yield refused
        yield CounterMetricFamily(
            PREFIX + "jobs_replaced",
            "Jobs placed again after their worker died",
            value=supervisor.replaced,
        )
        yield CounterMetricFamily(
            PREFIX + "notification_gaps",
            "Times the notification socket reconnected (followed by a REST reconciliation)",
            value=self._metrics.notification_gaps,
        )


class ServerMetrics:
    """The metrics of one server, in their own registry (several servers, e.g. in
    tests, do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.supervisor: Supervisor | None = None
        self.notification_gaps = 0
        self.fleet = False  # on Redis: the fleet's refusal reasons are shown too
        self.dispatch_latency = Histogram(
            PREFIX + "dispatch_latency_seconds",
            "Job submitted (a person joined, or explicit dispatch) -> its agent authenticated",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Collector(self))
