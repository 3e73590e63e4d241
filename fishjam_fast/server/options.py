"""``ServerOptions``: every knob of the agent server, validated in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = ["DEFAULT_DRAIN_TIMEOUT", "ServerOptions", "usable_cores"]

DEFAULT_DRAIN_TIMEOUT = 30.0
"""Seconds running jobs get to end after SIGTERM before they are cancelled."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerOptions:
    """How the agent server runs; every wait has a deadline and every queue a bound.

    Attributes:
        workers: Worker processes, or ``"auto"`` for one per usable core.
        max_jobs: Most jobs one worker runs at once.
        max_load: A worker whose CPU use (fraction of one core, averaged over
            ``load_window`` seconds) reaches this takes no new job.
        when_full: ``"wait"``: a job finding every worker full waits up to
            ``job_wait_timeout`` for room, then is refused; ``"refuse"``: refused at once.
            With ``redis_url`` the same holds for a job request in the fleet's stream:
            unread by any box for ``job_wait_timeout`` (``"wait"``), or while every live
            box is full (``"refuse"``), it is refused (metric ``jobs_refused`` with
            reason ``fleet_wait_timeout`` or ``fleet_full``, and a log line).
        job_wait_timeout: Seconds a job may wait for a worker with room.
        max_waiting: Most jobs waiting at once; more are refused.
        drain_timeout: Seconds running jobs get to end on SIGTERM (or ``stop()``)
            before they are cancelled.
        metrics_host: Address of the HTTP port (``/metrics``, ``/health``,
            ``POST /dispatch``); 127.0.0.1 unless told otherwise.
        metrics_port: Its port; 0 picks a free one, None serves no HTTP port.
        dispatch_token: Bearer token ``POST /dispatch`` requires; None disables the
            route (every request is refused with 401).
        max_body_size: Largest ``POST /dispatch`` (and webhook) body, in bytes.
        webhook_secret: With the webhook source: the secret Fishjam signs webhook bodies
            with (``x-fishjam-signature-256``); unsigned or wrongly signed bodies are
            refused with 401. None accepts unsigned bodies.
        reconcile_interval: Seconds between periodic REST reconciliations (None: only
            at start and after a notification gap; the webhook source has no gaps to
            notice, so set it there).
        worker_start_timeout: Seconds a worker may take to start and run ``prewarm``.
        worker_timeout: A worker that sends no load report for this long is killed
            and restarted.
        report_interval: Seconds between a worker's load reports.
        load_window: Seconds of CPU use the load averages over.
        rest_timeout: Seconds one REST request to Fishjam may take.
        max_message_size: Largest message on the supervisor-worker channel, in bytes.
        agent_options: Keyword options for every job's :class:`fishjam_fast.Agent`
            (``reconnect``, ``max_queue``, ...); must be picklable.
        use_uvloop: Run the workers (and ``run()``) on uvloop where installed.
        redis_url: ``redis://host:6379/0``: boxes sharing this Redis share the rooms
            (one agent per room across them, failover, handover on SIGTERM); None
            runs one box alone.
        lease_ttl: With ``redis_url``: seconds a box's lease on a room lasts without
            renewal; a dead or cut-off box's rooms move after at most this long.
        redis_prefix: With ``redis_url``: the prefix of every Redis key (separate
            fleets sharing one Redis use different prefixes).
        on_shutdown: With ``redis_url``, what SIGTERM (or ``stop()``) does with this
            box's rooms: ``"handover"`` (default): each agent stops at once and another
            box takes its room, keeping its agent peer; ``"drain"``: running jobs get
            ``drain_timeout`` seconds to end here while this box keeps renewing their
            leases (no other box takes them meanwhile), then the rest are handed over.
            Either way the box takes no new job. The last box alive drains.
    """

    workers: int | Literal["auto"] = "auto"
    max_jobs: int = 1000
    max_load: float = 0.9
    when_full: Literal["wait", "refuse"] = "wait"
    job_wait_timeout: float = 10.0
    max_waiting: int = 10_000
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9464
    dispatch_token: str | None = None
    max_body_size: int = 64 * 1024
    webhook_secret: str | None = None
    reconcile_interval: float | None = None
    worker_start_timeout: float = 60.0
    worker_timeout: float = 10.0
    report_interval: float = 0.5
    load_window: float = 5.0
    rest_timeout: float = 10.0
    max_message_size: int = 1024 * 1024
    agent_options: dict[str, Any] = field(default_factory=dict)
    use_uvloop: bool = True
    redis_url: str | None = None
    lease_ttl: float = 3.0
    redis_prefix: str = "fishjam_fast"
    on_shutdown: Literal["handover", "drain"] = "handover"

    def __post_init__(self) -> None:
        if self.workers != "auto" and (
            not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1
        ):
            raise ValueError(f"workers must be 'auto' or at least 1, not {self.workers!r}")
        if self.on_shutdown not in ("handover", "drain"):
            raise ValueError(f"on_shutdown must be 'handover' or 'drain', not {self.on_shutdown!r}")
        if self.when_full not in ("wait", "refuse"):
            raise ValueError(f"when_full must be 'wait' or 'refuse', not {self.when_full!r}")
        for name in ("max_jobs", "max_waiting", "max_body_size", "max_message_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1, not {value!r}")
        for name in (
            "max_load",
            "job_wait_timeout",
            "worker_start_timeout",
            "worker_timeout",
            "report_interval",
            "load_window",
            "rest_timeout",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        if not isinstance(self.drain_timeout, int | float) or self.drain_timeout < 0:
            raise ValueError(
                f"drain_timeout must be zero or positive seconds, not {self.drain_timeout!r}"
            )
        if self.worker_timeout <= self.report_interval:
            raise ValueError(
                f"worker_timeout ({self.worker_timeout}) must exceed report_interval "
                f"({self.report_interval})"
            )
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port must be 0..65535 or None, not {self.metrics_port!r}")
        if self.dispatch_token is not None and not self.dispatch_token:
            raise ValueError("dispatch_token must be None (route disabled) or non-empty")
        if self.webhook_secret is not None and not self.webhook_secret:
            raise ValueError("webhook_secret must be None (unsigned accepted) or non-empty")
        if self.redis_url is not None:
            from .leases import check_cluster_options

            check_cluster_options(self.redis_url, self.lease_ttl, self.redis_prefix)
        if self.reconcile_interval is not None and not self.reconcile_interval > 0:
            raise ValueError(
                f"reconcile_interval must be positive or None, not {self.reconcile_interval!r}"
            )

    @property
    def worker_count(self) -> int:
        """The number of worker processes (``"auto"`` resolved)."""
        return usable_cores() if self.workers == "auto" else int(self.workers)

    @classmethod
    def names(cls) -> frozenset[str]:
        """The option names (for keyword overrides)."""
        return frozenset(f.name for f in fields(cls))

    def __repr__(self) -> str:
        # the dispatch token is a secret: never in a log line or a traceback
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("dispatch_token", "webhook_secret"):
            if shown[secret] is not None:
                shown[secret] = "***"
        if shown["redis_url"] is not None and "@" in shown["redis_url"]:
            shown["redis_url"] = "***"  # it may carry a password
        return "ServerOptions(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
