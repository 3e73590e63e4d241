"""The supervisor: worker processes, job placement, restarts, and the agent peers' lives.

It starts ``workers`` processes (``multiprocessing``'s *spawn* start method: a clean
interpreter, nothing inherited from a running event loop, the management token never
on a command line), places each job on the worker with the fewest jobs (ties: the
lowest CPU load it reported), creates the job's agent peer over REST and hands the
worker its id, token and URL; it deletes the peer when the job ends. A worker that dies
or stops reporting is restarted, and its jobs are placed again on the live workers:
with the same agent peer where it still exists, else a new one, and none where the
room is gone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ..errors import AgentError
from ..rest import AgentPeer, AsyncFishjamClient, FishjamApiError, Room
from .ipc import Channel, ChannelClosed, ChannelError
from .job import JobRequest
from .options import ServerOptions
from .worker import COUNTERS, worker_main

__all__ = ["JobInfo", "ServerDrainingError", "ServerFullError", "Supervisor", "WorkerInfo"]

logger = logging.getLogger("fishjam_fast.server")

RESTART_BACKOFF = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before restarting a worker that died again soon after its last start."""

TOKEN_VARIABLE = "FISHJAM_MANAGEMENT_TOKEN"
"""The environment variable the management token may come from (kept from workers)."""

STABLE_SECONDS = 30.0
"""A worker that lived this long restarts at once the next time it dies."""


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


class Supervisor:
    """Runs the worker processes and the jobs on them (one per :class:`AgentServer`)."""

    def __init__(
        self,
        entry: str | Callable[..., Any],
        prewarm: str | Callable[..., Any] | None,
        options: ServerOptions,
        rest: AsyncFishjamClient,
        *,
        log_level: int | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._entry = entry
        self._prewarm = prewarm
        self._options = options
        self._rest = rest
        self._log_level = log_level
        self._on_event = on_event or (lambda kind, data: None)
        self._context = multiprocessing.get_context("spawn")
        self.workers = [WorkerInfo(i) for i in range(options.worker_count)]
        self._jobs: dict[str, JobInfo] = {}
        self._by_key: dict[str, JobInfo] = {}
        self._waiting: collections.deque[JobInfo] = collections.deque()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._draining = False
        self._stopping = False
        self._closed = False
        self._drain_deadline = 0.0
        self._changed = asyncio.Event()
        self.refused: collections.Counter[str] = collections.Counter()
        self.started: collections.Counter[int] = collections.Counter()
        self.failed: collections.Counter[int] = collections.Counter()
        self.replaced = 0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Starts every worker and waits until each is ready (``worker_start_timeout``).

        Raises:
            TimeoutError: A worker was not ready in time.
            RuntimeError: A worker could not load the entrypoint or prewarm.
        """
        for worker in self.workers:
            self._spawn(worker)
        self._background(self._watchdog())
        try:
            async with asyncio.timeout(self._options.worker_start_timeout):
                await asyncio.gather(*(w.ready_event.wait() for w in self.workers))
        except TimeoutError:
            raise TimeoutError(
                f"workers not ready within worker_start_timeout="
                f"{self._options.worker_start_timeout:g} s"
            ) from None
        broken = [w for w in self.workers if not w.ready]
        if broken:
            raise RuntimeError(
                f"worker {broken[0].index} cannot run jobs: {broken[0].error or 'it died'}"
            )

    def _spawn(self, worker: WorkerInfo) -> None:
        parent, child = socket.socketpair()
        config = {
            "max_message_size": self._options.max_message_size,
            "report_interval": self._options.report_interval,
            "load_window": self._options.load_window,
            "agent_options": self._options.agent_options,
            "use_uvloop": self._options.use_uvloop,
            "log_level": self._log_level,
        }
        process = self._context.Process(
            target=worker_main,
            args=(child, worker.index, self._entry, self._prewarm, config),
            name=f"fishjam_fast-worker-{worker.index}",
            daemon=True,
        )
        # the management token stays in the supervisor: not in a worker's environment
        saved = os.environ.pop(TOKEN_VARIABLE, None)
        try:
            process.start()
        finally:
            if saved is not None:
                os.environ[TOKEN_VARIABLE] = saved
        child.close()
        worker.process = process
        worker.pid = process.pid
        worker.ready = False
        worker.ready_event = asyncio.Event()
        worker.counters = {}
        worker.started_at = worker.last_report = time.monotonic()
        worker.reader = self._background(self._read_worker(worker, parent, process))

    async def _read_worker(self, worker: WorkerInfo, sock: socket.socket, process: Any) -> None:
        channel = await Channel.open(sock, self._options.max_message_size)
        worker.channel = channel
        cause = "its channel closed"
        try:
            while True:
                message = await channel.receive()
                if worker.process is not process:
                    return  # an older process of this slot
                try:
                    self._handle(worker, message)
                except (KeyError, TypeError, ValueError) as exc:
                    raise ChannelError(f"{message!r:.200}: {exc!r}") from None
        except ChannelClosed:
            pass
        except ChannelError as exc:
            cause = f"it sent a malformed message ({exc})"
        finally:
            channel.close()
        if worker.process is process:
            await self._worker_died(worker, cause)

    def _handle(self, worker: WorkerInfo, message: dict[str, Any]) -> None:
        kind = message["t"]
        worker.last_report = time.monotonic()
        if kind == "load":
            worker.cpu = float(message.get("cpu", 0.0))
            worker.lag = float(message.get("lag", 0.0))
            worker.agents = int(message.get("agents", 0))
            counters = message.get("counters")
            if isinstance(counters, dict):
                worker.counters = {k: int(v) for k, v in counters.items() if k in COUNTERS}
            self._pump()
        elif kind == "connected":
            job = self._jobs.get(message.get("job", ""))
            if job is not None and not job.connected:
                job.connected = True
                if job.connected_at is None:  # the first attempt's dispatch latency
                    job.connected_at = time.monotonic()
                    latency = job.connected_at - job.submitted_at
                    self._on_event("latency", {"seconds": latency})
            self._changed.set()
        elif kind == "ended":
            job = self._jobs.get(message.get("job", ""))
            if job is not None and job.worker == worker.index:
                outcome = str(message.get("outcome", "ok"))
                self._finish(job, outcome, str(message.get("error", "")))
        elif kind == "ready":
            worker.ready = True
            worker.ready_event.set()
            logger.info("worker %d ready (pid %s)", worker.index, worker.pid)
            self._pump()
        elif kind == "broken":
            worker.error = str(message.get("error"))
            logger.error("worker %d cannot run jobs: %s", worker.index, worker.error)
            worker.ready_event.set()  # start() reports it
        elif kind == "stopped":
            pass

    async def _worker_died(self, worker: WorkerInfo, cause: str) -> None:
        process = worker.process
        worker.process = None
        worker.ready = False
        worker.ready_event.set()
        if process is not None and process.is_alive():
            process.kill()
        if process is not None:
            await asyncio.get_running_loop().run_in_executor(None, process.join, 5.0)
        exitcode = getattr(process, "exitcode", None)
        for name, value in worker.counters.items():
            worker.retired[name] = worker.retired.get(name, 0) + value
        worker.counters = {}
        worker.cpu = worker.lag = 0.0
        worker.agents = 0
        orphans = list(worker.jobs.values())
        worker.jobs.clear()
        if self._stopping:  # close() stopped it: its jobs are over
            for job in orphans:
                job.worker = None
                self._finish(job, "cancelled", "")
            return
        logger.error(
            "worker %d (pid %s) died: %s, exit code %s; %d jobs to place again",
            worker.index,
            worker.pid,
            cause,
            exitcode,
            len(orphans),
        )
        self._on_event("worker_died", {"worker": worker.index})
        for job in orphans:
            job.worker = None
            job.connected = False
        # a starting job is placed again by _start_job, which sees its worker gone
        self._background(self._recover([j for j in orphans if j.state != "starting"]))
        lived = time.monotonic() - worker.started_at
        worker.failures = 0 if lived >= STABLE_SECONDS else worker.failures + 1
        delay = RESTART_BACKOFF[min(worker.failures, len(RESTART_BACKOFF) - 1)]
        if not self._draining:
            self._background(self._restart(worker, delay))

    async def _restart(self, worker: WorkerInfo, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._closed or self._draining or worker.process is not None:
            return
        worker.restarts += 1
        self._spawn(worker)

    async def _recover(self, jobs: list[JobInfo]) -> None:
        """Places the jobs of a dead worker again: with the same agent peer where it still
        exists, a new one where it does not, none where the room is gone. One REST
        listing of the rooms serves them all."""
        try:
            rooms: dict[str, Room] | None = {r.id: r for r in await self._rest.list_rooms()}
        except FishjamApiError as exc:
            logger.warning("cannot list the rooms (%s): the jobs keep their agent peers", exc)
            rooms = None  # Fishjam unreachable: keep the peers, the agents retry
        for job in reversed(jobs):  # appendleft: the first job placed first
            if job.id not in self._jobs:
                continue
            if job.cancel_requested:
                self._finish(job, "cancelled", "")
                continue
            room = rooms.get(job.request.room_id) if rooms is not None else None
            if rooms is not None and room is None:
                self._finish(job, "room_gone", "")
                continue
            if room is not None and job.peer is not None:
                if all(p.id != job.peer.id for p in room.peers):
                    job.peer = None
                    job.agent_peer_id = None
            job.attempt += 1
            job.state = "waiting"
            job.wait_deadline = time.monotonic() + self._options.job_wait_timeout
            self.replaced += 1
            self._waiting.appendleft(job)
        self._pump()

    def _watchdog_check(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            process = worker.process
            if process is None:
                continue
            limit = (
                self._options.worker_timeout if worker.ready else self._options.worker_start_timeout
            )
            if now - worker.last_report > limit:
                logger.error(
                    "worker %d (pid %s) sent nothing for %.1f s: killing it",
                    worker.index,
                    worker.pid,
                    now - worker.last_report,
                )
                process.kill()  # its channel closes: _read_worker handles the death
                worker.last_report = now
        deadline_passed = [j for j in self._waiting if j.wait_deadline <= now]
        for job in deadline_passed:
            self._waiting.remove(job)
            self._refuse(job, "wait_timeout")

    async def _watchdog(self) -> None:
        while not self._closed:
            self._watchdog_check()
            await asyncio.sleep(min(0.25, self._options.report_interval))

    async def drain(self, timeout: float) -> None:
        """Takes no new job, gives running jobs ``timeout`` seconds to end, cancels the
        rest, waits for their agent peers to be deleted, and stops the workers."""
        self._draining = True
        while self._waiting:
            self._refuse(self._waiting.popleft(), "draining")
        self._drain_deadline = time.monotonic() + timeout
        await self._wait_jobs_gone()
        if self._jobs:
            logger.warning("drain: cancelling %d jobs after %.1f s", len(self._jobs), timeout)
            for job in list(self._jobs.values()):
                self.cancel(job.id)
            self._drain_deadline = time.monotonic() + 10.0
            await self._wait_jobs_gone()
        await self.close()

    async def _wait_jobs_gone(self) -> None:
        while self._jobs and time.monotonic() < self._drain_deadline:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait(), max(0.0, self._drain_deadline - time.monotonic())
                )

    def cut_drain(self) -> None:
        """Ends the drain's wait now: the remaining jobs are cancelled at once."""
        self._drain_deadline = 0.0
        self._changed.set()

    async def close(self) -> None:
        """Stops the workers now (running jobs are cancelled by their worker) and waits
        for the peer deletions in flight."""
        self._draining = True
        self._stopping = True
        for worker in self.workers:
            if worker.channel is not None and worker.process is not None:
                with contextlib.suppress(ChannelError):
                    worker.channel.send({"t": "stop"})
        loop = asyncio.get_running_loop()
        processes = [w.process for w in self.workers if w.process is not None]
        for process in processes:
            await loop.run_in_executor(None, process.join, 15.0)
            if process.is_alive():
                process.kill()
                await loop.run_in_executor(None, process.join, 5.0)
        # the workers' last "ended" messages are handled (their peers get deleted)
        readers = [w.reader for w in self.workers if w.reader is not None]
        if readers:
            await asyncio.wait(readers, timeout=5.0)
        self._closed = True
        for job in list(self._jobs.values()):
            self._finish(job, "cancelled", "")
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=self._options.rest_timeout)
        for task in self._tasks:
            task.cancel()

    # -- jobs ------------------------------------------------------------------------
    @property
    def draining(self) -> bool:
        """True once drain() or close() began."""
        return self._draining

    def jobs(self) -> list[JobInfo]:
        """The jobs known now (waiting, starting, running, ending)."""
        return list(self._jobs.values())

    def job_for_key(self, key: str) -> JobInfo | None:
        """The job running (or waiting) under a dispatch rule's key."""
        return self._by_key.get(key)

    @property
    def waiting(self) -> int:
        """Jobs waiting for a worker with room."""
        return len(self._waiting)

    def submit(self, request: JobRequest, peer: AgentPeer | None = None) -> str:
        """Queues a job; it is placed as soon as a worker has room.

        Args:
            request: What the job is.
            peer: An existing agent peer for it (a room taken over from another box);
                None creates one.

        Returns:
            The job's id (for a key that already has a job: that job's id).

        Raises:
            ServerDrainingError: The server is draining.
            ServerFullError: Every worker is full and ``when_full="refuse"``, or the
                waiting queue is full.
        """
        if self._draining:
            self.refused["draining"] += 1
            raise ServerDrainingError(
                f"the server is draining: job in room {request.room_id} refused"
            )
        if request.key is not None and request.key in self._by_key:
            return self._by_key[request.key].id
        now = time.monotonic()
        job = JobInfo(f"job-{next(self._ids)}", request, submitted_at=now)
        if peer is not None:
            job.peer = peer
            job.agent_peer_id = peer.id
        job.wait_deadline = now + self._options.job_wait_timeout
        if self._find_worker() is None:
            if self._options.when_full == "refuse":
                self._refuse(job, "full")
                raise ServerFullError(
                    f"every worker is full: job in room {request.room_id} refused"
                )
            if len(self._waiting) >= self._options.max_waiting:
                self._refuse(job, "queue_full")
                raise ServerFullError(
                    f"{len(self._waiting)} jobs wait already (max_waiting): job in room "
                    f"{request.room_id} refused"
                )
            logger.warning(
                "every worker is full: job %s in room %s waits (up to %g s)",
                job.id,
                request.room_id,
                self._options.job_wait_timeout,
            )
        self._jobs[job.id] = job
        if request.key is not None:
            self._by_key[request.key] = job
        self._waiting.append(job)
        self._pump()
        return job.id

    def _refuse(self, job: JobInfo, reason: str) -> None:
        self.refused[reason] += 1
        self._jobs.pop(job.id, None)
        if job.request.key is not None and self._by_key.get(job.request.key) is job:
            del self._by_key[job.request.key]
        logger.warning("job %s in room %s refused: %s", job.id, job.request.room_id, reason)
        self._on_event("job_refused", {"job": job, "reason": reason})
        self._changed.set()

    def end_key(self, key: str) -> None:
        """Ends the job a dispatch rule runs under ``key`` (if any)."""
        job = self._by_key.get(key)
        if job is not None:
            self.cancel(job.id)

    def has_room(self) -> bool:
        """Whether a worker could take a job now (and the server is not draining)."""
        return not self._draining and self._find_worker() is not None

    def capacity(self) -> int:
        """The jobs the ready workers could hold at once (``max_jobs`` each)."""
        return sum(self._options.max_jobs for w in self.workers if w.ready and w.process)

    def release(self, job_id: str) -> None:
        """Ends a job here but keeps its agent peer (another box takes the room over)."""
        job = self._jobs.get(job_id)
        if job is not None:
            job.keep_peer = True
            self.cancel(job_id)

    def cancel(self, job_id: str) -> None:
        """Ends a job: a waiting one is dropped, a running one cancelled in its worker."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.cancel_requested = True
        if job.state == "waiting":
            with contextlib.suppress(ValueError):
                self._waiting.remove(job)
            self._finish(job, "cancelled", "")
        elif job.state == "running" and job.worker is not None:
            job.state = "ending"
            channel = self.workers[job.worker].channel
            if channel is not None:
                with contextlib.suppress(ChannelError):
                    channel.send({"t": "cancel", "job": job.id})

    def _find_worker(self) -> WorkerInfo | None:
        options = self._options
        best: WorkerInfo | None = None
        for worker in self.workers:
            if not worker.ready or worker.process is None:
                continue
            if len(worker.jobs) >= options.max_jobs or worker.cpu >= options.max_load:
                continue
            if best is None or (len(worker.jobs), worker.cpu) < (len(best.jobs), best.cpu):
                best = worker
        return best

    def _pump(self) -> None:
        """Places waiting jobs, in order, while a worker has room."""
        while self._waiting and not self._closed:
            worker = self._find_worker()
            if worker is None:
                return
            job = self._waiting.popleft()
            job.state = "starting"
            job.worker = worker.index
            worker.jobs[job.id] = job
            self._background(self._start_job(job, worker))

    async def _start_job(self, job: JobInfo, worker: WorkerInfo) -> None:
        if job.peer is None:
            try:
                job.peer = await self._rest.create_agent_peer(job.request.room_id)
            except (FishjamApiError, ValueError) as exc:
                worker.jobs.pop(job.id, None)
                job.worker = None
                self.failed[worker.index] += 1
                logger.error(
                    "job %s in room %s failed: no agent peer: %s", job.id, job.request.room_id, exc
                )
                self._finish(job, "failed", str(exc), delete_peer=False)
                self._pump()
                return
            job.agent_peer_id = job.peer.id
        if job.cancel_requested or job.id not in self._jobs:
            worker.jobs.pop(job.id, None)
            self._finish(job, "cancelled", "")
            return
        if job.worker != worker.index or worker.process is None or worker.channel is None:
            # its worker died while the peer was created: place it again
            worker.jobs.pop(job.id, None)
            job.worker = None
            job.state = "waiting"
            self._waiting.appendleft(job)
            self._pump()
            return
        message = {
            "t": "start",
            "job": job.id,
            "room_id": job.request.room_id,
            "peer_id": job.request.peer_id,
            "metadata": job.request.metadata,
            "attempt": job.attempt,
            "agent": {"id": job.peer.id, "token": job.peer.token, "url": job.peer.fishjam_url},
        }
        try:
            worker.channel.send(message)
        except ChannelError as exc:
            worker.jobs.pop(job.id, None)
            self._finish(job, "failed", f"cannot hand it to worker {worker.index}: {exc}")
            return
        job.state = "running"
        self.started[worker.index] += 1
        self._on_event("job_started", {"job": job})
        logger.info(
            "job %s started in room %s on worker %d (agent %s, attempt %d)",
            job.id,
            job.request.room_id,
            worker.index,
            job.peer.id,
            job.attempt,
        )

    def _finish(self, job: JobInfo, outcome: str, error: str, *, delete_peer: bool = True) -> None:
        """Forgets a job and deletes its agent peer (in the background)."""
        if self._jobs.pop(job.id, None) is None:
            return
        if job.request.key is not None and self._by_key.get(job.request.key) is job:
            del self._by_key[job.request.key]
        if job.worker is not None:
            self.workers[job.worker].jobs.pop(job.id, None)
            if outcome == "failed":
                self.failed[job.worker] += 1
        where = f"worker {job.worker}" if job.worker is not None else "no worker"
        log = logger.warning if outcome == "failed" else logger.info
        log(
            "job %s ended in room %s on %s: %s%s",
            job.id,
            job.request.room_id,
            where,
            outcome,
            f" ({error})" if error else "",
        )
        job.state = "ended"
        if delete_peer and job.peer is not None and not job.keep_peer:
            self._background(self._delete_peer(job.peer))
        self._on_event("job_ended", {"job": job, "outcome": outcome})
        self._changed.set()
        self._pump()

    async def _delete_peer(self, peer: AgentPeer) -> None:
        try:
            await self._rest.delete_peer(peer.room_id, peer.id)
        except FishjamApiError as exc:
            if exc.status != 404:  # a deleted room took its peers with it
                logger.warning(
                    "agent peer %s in room %s not deleted: %s", peer.id, peer.room_id, exc
                )

    def _background(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("supervisor task failed", exc_info=task.exception())

    def pending_deletions(self) -> int:
        """Background tasks still running (peer deletions, recoveries, restarts)."""
        return sum(1 for t in self._tasks if not t.done())
