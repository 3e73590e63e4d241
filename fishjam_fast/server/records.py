"""What the supervisor knows of each job and each worker process, and its refusals.

Plain records, no behaviour beyond a counter sum: the supervisor (jobs), the worker
pool (processes), placement and the metrics read them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..errors import AgentError
from ..rest import AgentPeer
from .ipc import Channel
from .job import JobRequest

__all__ = ["JobInfo", "ServerDrainingError", "ServerFullError", "WorkerInfo"]


class ServerFullError(AgentError):
    """Every worker is full and the job was refused (``when_full="refuse"``, a full
    waiting queue, or ``job_wait_timeout`` passed)."""


class ServerDrainingError(AgentError):
    """The server is draining (SIGTERM or ``stop()``) and takes no new job."""


@dataclass
class JobInfo:
    """A job as the supervisor tracks it (a snapshot is in :meth:`Supervisor.jobs`).

    Attributes:
        id: The job's id.
        request: What asked for it.
        state: ``"waiting"`` (for a worker with room), ``"starting"`` (agent peer being
            created), ``"running"``, ``"ending"``.
        worker: The worker's index, or None while waiting.
        agent_peer_id: The agent peer's id once created.
        attempt: 1, then one more each time its worker died under it.
        connected: Whether its agent authenticated (in this attempt).
        submitted_at: ``time.monotonic()`` when it was submitted.
        connected_at: ``time.monotonic()`` when its agent first authenticated, or None.
        stages: The first attempt's steps from submission to its agent authenticated,
            ``time.monotonic()`` each (system-wide on Linux, so the worker's are
            comparable): ``placed`` (a worker chosen), ``peer`` (agent peer created over
            REST), ``handed`` (the start message sent), ``received`` (the worker read it),
            ``connected`` (its agent authenticated, as the worker saw it).
    """

    id: str
    request: JobRequest
    state: str = "waiting"
    worker: int | None = None
    agent_peer_id: str | None = None
    attempt: int = 1
    connected: bool = False
    # private bookkeeping
    peer: AgentPeer | None = field(default=None, repr=False)
    submitted_at: float = field(default=0.0, repr=False)
    connected_at: float | None = field(default=None, repr=False)
    stages: dict[str, float] = field(default_factory=dict, repr=False)
    wait_deadline: float = field(default=0.0, repr=False)
    cancel_requested: bool = field(default=False, repr=False)
    # set by release(): the job ends here but its agent peer is kept for another box
    keep_peer: bool = field(default=False, repr=False)


@dataclass
class WorkerInfo:
    """A worker process as the supervisor sees it.

    Attributes:
        index: Its slot (0..workers-1), kept across restarts.
        pid: Its process id.
        ready: Whether it ran prewarm and takes jobs.
        cpu: Its CPU use over the load window (fraction of a core), as last reported.
        lag: The longest event-loop lag in its last report interval, in seconds.
        agents: Its connected agent sessions, as last reported.
        restarts: How many times this slot's process was restarted.
    """

    index: int
    pid: int | None = None
    ready: bool = False
    cpu: float = 0.0
    lag: float = 0.0
    agents: int = 0
    restarts: int = 0
    jobs: dict[str, JobInfo] = field(default_factory=dict, repr=False)
    counters: dict[str, int] = field(default_factory=dict, repr=False)
    retired: dict[str, int] = field(default_factory=dict, repr=False)
    last_report: float = field(default=0.0, repr=False)
    started_at: float = field(default=0.0, repr=False)
    failures: int = field(default=0, repr=False)
    error: str = field(default="", repr=False)
    process: Any = field(default=None, repr=False)
    channel: Channel | None = field(default=None, repr=False)
    reader: asyncio.Task[None] | None = field(default=None, repr=False)
    ready_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def total(self, name: str) -> int:
        """A worker counter summed over every process this slot ran."""
        return self.retired.get(name, 0) + self.counters.get(name, 0)
