"""The supervisor: jobs from submission to end, on the worker processes.

It queues each job, places it on the least-loaded worker (:mod:`.placement`), creates the
job's agent peer over REST and hands the worker its id, token and URL; it deletes the
peer when the job ends. The processes themselves (start, watch, restart, stop) are the
worker pool's (:mod:`.processes`). When a worker dies its jobs are placed again on the
live workers: with the same agent peer where it still exists, else a new one, and none
where the room is gone. Draining ends the jobs within a deadline, then the workers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ..rest import AgentPeer, AsyncFishjamClient, FishjamApiError, Room
from .ipc import ChannelError
from .job import JobRequest
from .options import ServerOptions
from .placement import capacity, least_loaded
from .processes import WorkerPool
from .records import JobInfo, ServerDrainingError, ServerFullError, WorkerInfo
from .tasks import BackgroundTasks

# JobInfo, WorkerInfo and the errors live in .records; named here too, where the
# server's other modules (and cluster.py) import them from
__all__ = ["JobInfo", "ServerDrainingError", "ServerFullError", "Supervisor", "WorkerInfo"]

logger = logging.getLogger("fishjam_fast.server")


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
        self._options = options
        self._rest = rest
        self._on_event = on_event or (lambda kind, data: None)
        self._tasks = BackgroundTasks()
        self._pool = WorkerPool(
            entry,
            prewarm,
            options,
            self._tasks,
            log_level=log_level,
            on_message=self._on_message,
            on_died=self._on_died,
        )
        self._jobs: dict[str, JobInfo] = {}
        self._by_key: dict[str, JobInfo] = {}
        self._waiting: collections.deque[JobInfo] = collections.deque()
        self._ids = itertools.count(1)
        self._draining = False
        self._closed = False
        self._drain_deadline = 0.0
        self._changed = asyncio.Event()
        self.refused: collections.Counter[str] = collections.Counter()
        self.started: collections.Counter[int] = collections.Counter()
        self.failed: collections.Counter[int] = collections.Counter()
        self.replaced = 0

    # -- lifecycle -------------------------------------------------------------------
    @property
    def workers(self) -> list[WorkerInfo]:
        """The worker slots (index = slot), each with its process as last seen."""
        return self._pool.workers

    async def start(self) -> None:
        """Starts every worker and waits until each is ready (``worker_start_timeout``).

        Raises:
            TimeoutError: A worker was not ready in time.
            RuntimeError: A worker could not load the entrypoint or prewarm.
        """
        self._pool.start()
        self._background(self._watchdog())
        await self._pool.wait_ready()

    def _on_message(self, worker: WorkerInfo, kind: str, message: dict[str, Any]) -> None:
        """A worker's message, after the pool kept its load and readiness."""
        if kind in ("load", "ready"):
            self._pump()
        elif kind == "connected":
            job = self._jobs.get(message.get("job", ""))
            if job is not None and not job.connected:
                job.connected = True
                if job.connected_at is None:  # the first attempt's dispatch latency
                    job.connected_at = time.monotonic()
                    # the worker's side of the first attempt (monotonic is system-wide)
                    for stage in ("received", "connected"):
                        value = message.get(stage)
                        if isinstance(value, float):
                            job.stages.setdefault(stage, value)
                    latency = job.connected_at - job.submitted_at
                    self._on_event("latency", {"seconds": latency})
            self._changed.set()
        elif kind == "ended":
            job = self._jobs.get(message.get("job", ""))
            if job is not None and job.worker == worker.index:
                outcome = str(message.get("outcome", "ok"))
                self._finish(job, outcome, str(message.get("error", "")))

    def _on_died(
        self, worker: WorkerInfo, cause: str, exitcode: Any, orphans: list[JobInfo]
    ) -> None:
        """A worker died (the pool restarts it): its jobs are placed again."""
        if self._pool.stopping:  # close() stopped it: its jobs are over
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
        self._pool.kill_silent()
        now = time.monotonic()
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
        self._pool.restarts_allowed = False
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
        await self._pool.stop()
        self._closed = True
        for job in list(self._jobs.values()):
            self._finish(job, "cancelled", "")
        await self._tasks.finish(self._options.rest_timeout)

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
        return capacity(self.workers, self._options)

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
        return least_loaded(self.workers, self._options)

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
            job.stages.setdefault("placed", time.monotonic())
            self._background(self._start_job(job, worker))

    async def _start_job(self, job: JobInfo, worker: WorkerInfo) -> None:
        if job.peer is None:
            try:
                job.peer = await self._rest.create_agent_peer(job.request.room_id)
                job.stages.setdefault("peer", time.monotonic())
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
            job.stages.setdefault("handed", time.monotonic())
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
        return self._tasks.spawn(coroutine)

    def pending_deletions(self) -> int:
        """Background tasks still running (peer deletions, recoveries, restarts)."""
        return self._tasks.pending()
