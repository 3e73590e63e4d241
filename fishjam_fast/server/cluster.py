"""The agent server on several boxes: job requests, leases and failover through Redis.

Every box runs the same server with the same ``redis_url``. A job request (from the
dispatch rule, a reconciliation or explicit dispatch) is queued once on a Redis stream
(:data:`~.leases.SUBMIT`); boxes read it through one consumer group, a box only while a
worker has room and never more than a batch of jobs ahead of the least loaded live box,
and a box runs the job only after taking its lease atomically: one script
(:data:`~.leases.TAKE`) checks the loads, reads, acknowledges and leases a batch in one
round trip, so two boxes never both own a room and the boxes take a burst side by side.
Owners renew their leases every third of ``lease_ttl``; a box that died stops renewing,
its leases expire, and the orphan scan (run while a box is gone) queues its jobs again
for the others, which reuse the job's agent peer (its id and token are kept in Redis)
where it still exists. A box that cannot reach Redis takes no job and, before its leases
can expire, stops its agents (keeping their peers for the box taking over). On SIGTERM a
box hands its rooms over: each agent stops, then its lease is released and its job
queued again; or, with ``on_shutdown="drain"``, it lets its jobs end within
``drain_timeout`` (renewing their leases meanwhile) and hands over only the rest. A job
request no box reads in time (every box full) is refused by :data:`~.leases.REFUSE`
under the one-box ``when_full`` policy: a metric and a log line, never left in the
stream for ever.

Redis holds agent peer tokens (never the management token): protect it as you protect
Fishjam's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import AgentError
from ..rest import AgentPeer, AsyncFishjamClient, FishjamApiError
from . import leases
from .dispatch import EndJob, StartJob
from .job import JobRequest
from .supervisor import ServerDrainingError, ServerFullError
from .tasks import BackgroundTasks

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from .options import ServerOptions
    from .supervisor import JobInfo, Supervisor

__all__ = ["Cluster", "FleetUnavailableError"]

logger = logging.getLogger("fishjam_fast.server.cluster")

STREAM_MAXLEN = 100_000
"""Approximate bound of the job request stream (``XADD MAXLEN ~``)."""

MAX_ACTIONS = 100_000
"""Most dispatch actions waiting to reach Redis; more are dropped (and logged): the next
reconciliation brings their rooms back in line."""

POLL = 0.05
"""Seconds between looks at the stream while this box is full or a batch ahead."""

FULL = 2.0
"""The load a box publishes while it cannot take a job (loads are fractions of capacity)."""

CONSUMER_IDLE_LEASES = 20
"""Consumers idle for this many leases with nothing pending (boxes gone) are removed
from the consumer group."""

SCRIPTS = (
    "SUBMIT",
    "TAKE",
    "CLAIM",
    "RECORD",
    "END",
    "RELEASE",
    "RENEW",
    "ORPHANS",
    "MIN_LOAD",
    "RESTORE",
    "REFUSE",
)

ORPHAN_SCAN_EVERY = 9
"""A box scans every wanted job for orphans every this many renewals (three leases)
even when no box is gone: the safety net for a lease lost some other way."""

REFUSE_BATCH = 1000
"""Most stale job requests one renewal refuses (the next renewal takes the rest)."""

NEXT_TURN = 0.005
"""Seconds before a box a batch ahead of the least loaded looks again during a burst."""

ACTION_BATCH = 500
"""Most dispatch actions sent to Redis in one pipeline."""

TAKE_BATCH = 8
"""Most job requests a box reads at once, and how many jobs it may hold beyond the least
loaded other live box: the boxes take a burst side by side, one round trip per batch,
and none gets more than a batch ahead."""

BURST_WINDOW = 0.5
"""Seconds after this box took a job during which, a batch ahead, it looks again every
NEXT_TURN (else every POLL)."""

STOP_MARGIN = 0.25
"""Fraction of ``lease_ttl`` before a lease can expire at which a box cut off from Redis
stops its agents (so no room ever has this box's agent and another's at once)."""


class FleetUnavailableError(AgentError):
    """Redis cannot be reached: the job was not queued for the fleet (retry later)."""


class Cluster:
    """One box's part in a fleet sharing rooms through Redis (made by ``AgentServer``)."""

    def __init__(
        self,
        options: ServerOptions,
        supervisor: Supervisor,
        rest: AsyncFishjamClient,
        *,
        on_reset: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        assert options.redis_url is not None
        self._options = options
        self._supervisor = supervisor
        self._rest = rest
        self._on_reset = on_reset
        self._ttl = options.lease_ttl
        self._ttl_ms = max(1, int(options.lease_ttl * 1000))
        # how long a request's "queued" mark lasts: while it may wait in the stream (the
        # orphan scan must not queue it again meanwhile), then a lease more
        self._queued_ms = self._ttl_ms + int(options.job_wait_timeout * 1000)
        self._p = options.redis_prefix
        self._group = f"{self._p}:boxes"
        self._stream = f"{self._p}:jobs"
        self.box_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._redis: Any = None
        self._scripts: dict[str, Any] = {}
        self._epoch = ""
        # job key -> the local job's id ("" while it is being submitted)
        self._owned: dict[str, str] = {}
        # job key -> its description in Redis (to register it again after a reset)
        self._records: dict[str, dict[str, str]] = {}
        self._actions: asyncio.Queue[StartJob | EndJob] = asyncio.Queue(MAX_ACTIONS)
        # Redis updates in the background: a failure (Redis restarting) is one WARNING
        self._tasks = BackgroundTasks("Redis update", expected=(Exception,))
        self._to_record: list[list[str]] = []  # RECORD arguments waiting for a pipeline
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False
        # draining (on_shutdown="drain"): no new job, the running ones keep their leases
        self._draining = False
        self._drain_deadline = 0.0
        self._lowest = 0.0  # the lowest load among live boxes, as the last renewal saw
        self.healthy = False
        self._lease_deadline = 0.0
        # what the last renewal saw, for the metrics (a scrape reads no Redis)
        self.operations = 0
        self.boxes: dict[str, int] = {}
        self.rooms = 0
        self.waiting = 0
        self.taken = 0
        self.taken_over = 0
        self.handed_over = 0
        self._ticks = 0
        self._last_take = 0.0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Connects, registers the box and starts taking jobs.

        Raises:
            ConnectionError: Redis cannot be reached (or refuses the box).
        """
        from redis.asyncio import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        interval = self._ttl / 3
        self._redis = Redis.from_url(
            str(self._options.redis_url),
            decode_responses=True,
            socket_timeout=interval,
            socket_connect_timeout=interval,
            retry=Retry(NoBackoff(), 1),
        )
        # EVALSHA, loaded again by the client after a Redis restart emptied the cache
        for name in SCRIPTS:
            self._scripts[name] = self._redis.register_script(getattr(leases, name))
        try:
            self._epoch = (await self._script("RESTORE", self.box_id, uuid.uuid4().hex, 0, ""))[0]
            await self._ensure_group()
            await self._renew()
        except Exception as exc:
            where = self._redis.connection_pool.connection_kwargs
            raise ConnectionError(
                f"cannot join the fleet on Redis at {where.get('host', '?')}:"
                f"{where.get('port', '?')} (redis_url): {exc}"
            ) from None
        self.healthy = True
        self._loops = [
            asyncio.create_task(self._renew_loop()),
            asyncio.create_task(self._consume_loop()),
            asyncio.create_task(self._action_loop()),
            asyncio.create_task(self._deadline_loop()),
        ]
        logger.info(
            "box %s joined the fleet on Redis (prefix %s, lease %g s)",
            self.box_id,
            self._p,
            self._ttl,
        )

    async def handover(self, timeout: float) -> None:
        """Takes no more jobs and hands every job of this box over to the others: each
        agent stops (its peer kept), then the job's lease is released and the job queued
        again; waits up to ``timeout`` seconds for that. The last box alive hands nothing
        over: its jobs end as on one box (the caller drains them)."""
        self._closing = True
        for task in self._loops:
            task.cancel()
        others = 1
        with contextlib.suppress(Exception):
            await self._call(self._redis.delete(f"{self._p}:box:{self.box_id}"))
            await self._call(self._redis.hdel(f"{self._p}:load", self.box_id))
            await self._call(self._redis.xgroup_delconsumer(self._stream, self._group, self.box_id))
            _, others = await self._script("MIN_LOAD")
        if not others:
            logger.warning("no other box is alive: this box's jobs end here (drained)")
            return
        jobs = [job_id for job_id in self._owned.values() if job_id]
        if jobs:
            logger.info("handing %d rooms over to the other boxes", len(jobs))
        for job_id in jobs:
            self._supervisor.release(job_id)
        deadline = time.monotonic() + timeout
        while self._owned and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self._tasks.wait(max(0.1, deadline - time.monotonic()))

    async def drain(self, timeout: float) -> None:
        """Takes no more jobs and lets this box's jobs end within ``timeout`` seconds,
        renewing their leases meanwhile (no other box takes them); the jobs still
        running then are handed over as by :meth:`handover`."""
        self._draining = True
        self._drain_deadline = deadline = time.monotonic() + timeout
        if self._owned:
            logger.info(
                "draining: taking no jobs; %d running jobs get up to %g s to end here",
                len(self._owned),
                timeout,
            )
        while self._owned and time.monotonic() < self._drain_deadline:
            await asyncio.sleep(0.05)
        deadline = min(deadline, self._drain_deadline)
        if self._owned:
            logger.warning(
                "drain: %d jobs still run after %g s: handing them over", len(self._owned), timeout
            )
        await self.handover(max(1.0, deadline - time.monotonic()))

    def cut_drain(self) -> None:
        """Ends a drain's wait now: the jobs still running are handed over at once."""
        self._drain_deadline = 0.0

    async def close(self) -> None:
        """Stops every loop and closes the Redis connection (updates in flight get a
        second to land)."""
        self._closing = True
        await self._tasks.finish(1.0)
        for task in self._loops:
            task.cancel()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    # -- requests from this box ------------------------------------------------------
    def apply(self, action: StartJob | EndJob) -> None:
        """Queues a dispatch rule's action for Redis (in order, from one task)."""
        try:
            self._actions.put_nowait(action)
        except asyncio.QueueFull:
            logger.error("%d dispatch actions wait for Redis: %r dropped", MAX_ACTIONS, action)

    async def submit(self, request: JobRequest) -> str:
        """Queues a job for the fleet; a job under a key already wanted is left alone.

        Returns:
            The job's key (``dispatch:...`` for explicit dispatch).

        Raises:
            ServerDrainingError: This box is stopping.
            FleetUnavailableError: Redis cannot be reached.
            TypeError: The metadata is not JSON-serialisable.
        """
        if self._closing or self._draining:
            raise ServerDrainingError(f"the box is stopping: job in room {request.room_id} refused")
        from redis.exceptions import ConnectionError as RedisConnectionError

        key, args = self._submit_args(request)
        try:
            try:
                await self._script("SUBMIT", *args)
            except RedisConnectionError:
                # a pooled connection to a Redis that restarted since (the client retries
                # on the same one; another may be stale too): SUBMIT is idempotent
                await self._script("SUBMIT", *args)
        except Exception as exc:
            raise FleetUnavailableError(
                f"job in room {request.room_id} not queued: Redis unreachable ({exc})"
            ) from None
        return key

    def _submit_args(self, request: JobRequest) -> tuple[str, list[Any]]:
        key = request.key or f"dispatch:{uuid.uuid4().hex}"
        fields = {
            "room_id": request.room_id,
            "peer_id": request.peer_id or "",
            "metadata": json.dumps(request.metadata),
            "submitted": repr(time.time()),
        }
        return key, [key, self._queued_ms, STREAM_MAXLEN, *_flat(fields)]

    async def end(self, key: str) -> None:
        """Ends the job under ``key`` fleet-wide (its owner stops it within a renewal)."""
        await self._script("END", self.box_id, key)
        job_id = self._owned.get(key)
        if job_id:
            self._supervisor.cancel(job_id)

    async def reconcile(self, desired: Mapping[str, JobRequest], listed_wall: float) -> None:
        """Brings the fleet's wanted jobs in line with a dispatch rule's view, taken from
        a REST listing made at ``listed_wall`` (``time.time()``)."""
        wanted = set(await self._call(self._redis.smembers(f"{self._p}:rooms")))
        started = ended = 0
        for key, request in desired.items():
            if key not in wanted:
                await self.submit(request)
                started += 1
        for key in wanted - set(desired):
            if key.startswith("dispatch:"):
                continue  # explicit dispatch: not the rule's to end
            submitted = await self._call(self._redis.hget(f"{self._p}:job:{key}", "submitted"))
            # a key submitted after the listing began may be in a room the listing misses
            if submitted is None or float(submitted) < listed_wall:
                await self.end(key)
                ended += 1
        logger.info("fleet reconciled: %d jobs queued, %d ended", started, ended)

    # -- events from the supervisor --------------------------------------------------
    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """The supervisor's job events: a started job's agent peer is recorded (for the
        box taking over), an ended one leaves the fleet or is handed over."""
        job: JobInfo | None = data.get("job")
        key = job.request.key if job is not None else None
        if job is None or key is None or self._owned.get(key) not in (job.id, ""):
            return
        if kind == "job_started" and job.peer is not None:
            agent = {
                "agent_id": job.peer.id,
                "agent_token": job.peer.token,
                "agent_url": job.peer.fishjam_url,
            }
            self._records.setdefault(key, {}).update(agent)
            # recorded in one pipeline with the others started meanwhile (a burst's
            # agent peers cost a round trip per batch, not per job)
            self._to_record.append([self.box_id, key, *_flat(agent)])
            if len(self._to_record) == 1:
                self._background(self._record())
        elif kind in ("job_ended", "job_refused"):
            del self._owned[key]
            self._records.pop(key, None)
            if kind == "job_refused" or job.keep_peer:
                self.handed_over += 1
                self._background(
                    self._script("RELEASE", self.box_id, key, STREAM_MAXLEN, self._queued_ms)
                )
            else:
                self._background(self._script("END", self.box_id, key))

    async def _record(self) -> None:
        await asyncio.sleep(0)  # the jobs started in this turn of the loop join the batch
        batch, self._to_record = self._to_record, []
        pipe = self._redis.pipeline(transaction=False)
        for args in batch:
            await self._scripts["RECORD"](keys=[], args=[self._p, *args], client=pipe)
        self.operations += len(batch)
        await pipe.execute()

    # -- loops -----------------------------------------------------------------------
    async def _action_loop(self) -> None:
        # the actions queued meanwhile go in one pipeline, in order: a burst of
        # notifications costs one round trip per batch, not one per action
        while True:
            batch = [await self._actions.get()]
            while len(batch) < ACTION_BATCH and not self._actions.empty():
                batch.append(self._actions.get_nowait())
            if self._closing:
                continue
            try:
                pipe = self._redis.pipeline(transaction=False)
                for action in batch:
                    if isinstance(action, StartJob):
                        _, args = self._submit_args(action.request)
                        script, args = self._scripts["SUBMIT"], [self._p, *args]
                    else:
                        script, args = self._scripts["END"], [self._p, self.box_id, action.key]
                    await script(keys=[], args=args, client=pipe)
                self.operations += len(batch)
                await pipe.execute()
            except Exception as exc:  # Redis unreachable: reconciliation heals it later
                logger.warning("%d dispatch actions not applied: %s", len(batch), exc)
                continue
            for action in batch:
                job_id = self._owned.get(action.key) if isinstance(action, EndJob) else None
                if job_id:
                    self._supervisor.cancel(job_id)

    async def _consume_loop(self) -> None:
        block_ms = max(10, int(min(0.2, self._ttl / 6) * 1000))
        last_autoclaim = 0.0
        while True:
            try:
                if not self.healthy or self._draining or not self._supervisor.has_room():
                    await asyncio.sleep(POLL)
                    continue
                if time.monotonic() - last_autoclaim > self._ttl:
                    # requests a box read and died before claiming: idle for a lease
                    last_autoclaim = time.monotonic()
                    claimed = await self._call(
                        self._redis.xautoclaim(
                            self._stream, self._group, self.box_id, self._ttl_ms, "0-0", count=10
                        )
                    )
                    entries = [e for e in claimed[1] if e and e[1]]
                    if entries:
                        answers = await self._claim(entries)
                        await self._take_all(
                            [
                                (f.get("key", ""), a)
                                for (_, f), a in zip(entries, answers, strict=True)
                            ]
                        )
                        continue
                capacity = self._supervisor.capacity()
                count = max(1, min(TAKE_BATCH, capacity - len(self._owned)))
                # one script: the least-loaded check, the read, the claims, the load
                answer = await self._script(
                    "TAKE", self.box_id, self._group, count, len(self._owned),
                    max(1, capacity), TAKE_BATCH, self._ttl_ms, repr(FULL),
                )  # fmt: skip
                if answer[0] == "wait":
                    # a less loaded box takes first: soon again during a burst
                    in_burst = time.monotonic() - self._last_take < BURST_WINDOW
                    await asyncio.sleep(NEXT_TURN if in_burst else POLL)
                elif answer[0] == "empty":
                    # wakes on the next request without reading it (the group does)
                    await self._call(
                        self._redis.xread({self._stream: answer[1]}, count=1, block=block_ms)
                    )
                else:
                    await self._take_all([(one[0], one[1:]) for one in answer[1:]])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if "NOGROUP" in str(exc):  # Redis lost its data: the renewal restores it
                    with contextlib.suppress(Exception):
                        await self._ensure_group()
                else:
                    logger.debug("taking jobs: %s", exc)
                await asyncio.sleep(POLL)

    async def _take_all(self, answers: list[tuple[str, Any]]) -> None:
        """Starts the jobs claimed, side by side (a job taken over asks Fishjam whether
        its agent peer still exists: those requests overlap)."""
        if len(answers) == 1:
            await self._take(*answers[0])
        elif answers:
            done = await asyncio.gather(
                *(self._take(key, answer) for key, answer in answers), return_exceptions=True
            )
            for (key, _), outcome in zip(answers, done, strict=True):
                if isinstance(outcome, Exception):
                    logger.warning("job %s: not started here: %s", key, outcome)

    async def _claim(self, entries: list[tuple[str, dict[str, str]]]) -> list[Any]:
        """The CLAIM answers for the entries read, in one round trip (a pipeline). A
        failed claim's answer is its exception: that job is skipped here (if its lease
        was taken, it expires and the orphan scan queues the job again)."""
        if not entries:
            return []
        capacity = max(1, self._supervisor.capacity())
        pipe = self._redis.pipeline(transaction=False)
        for i, (entry_id, fields) in enumerate(entries):
            load = repr((len(self._owned) + i + 1) / capacity)
            args = [self._p, self.box_id, self._group, entry_id, fields.get("key", "")]
            await self._scripts["CLAIM"](keys=[], args=[*args, self._ttl_ms, load], client=pipe)
        self.operations += len(entries)
        return list(await pipe.execute(raise_on_error=False))

    async def _take(self, key: str, answer: Any) -> None:
        if isinstance(answer, Exception):
            logger.warning("job %s not claimed: %s", key, answer)
            return
        if not answer or answer[0] != "ok":
            return
        record = dict(zip(answer[1::2], answer[2::2], strict=True))
        if "room_id" not in record:
            await self._script("END", self.box_id, key)
            return
        self._owned[key] = ""
        self._records[key] = record
        peer: AgentPeer | None = None
        if record.get("agent_id"):
            gone, peer = await self._reusable_peer(record)
            if gone:
                del self._owned[key]
                self._records.pop(key, None)
                logger.info("job %s: room %s is gone, job ended", key, record["room_id"])
                await self._script("END", self.box_id, key)
                return
            self.taken_over += 1
        try:
            request = JobRequest(
                record["room_id"],
                record.get("peer_id") or None,
                json.loads(record.get("metadata") or "null"),
                key=key,
            )
            job_id = self._supervisor.submit(request, peer)
        except (ServerFullError, ServerDrainingError, ValueError) as exc:
            if key in self._owned:
                del self._owned[key]
                self._records.pop(key, None)
                await self._script("RELEASE", self.box_id, key, STREAM_MAXLEN, self._queued_ms)
            logger.warning("job %s not taken here: %s", key, exc)
            return
        if key in self._owned:
            self._owned[key] = job_id
        self.taken += 1
        self._last_take = time.monotonic()
        logger.info(
            "took job %s in room %s (%s)",
            key,
            record["room_id"],
            f"agent peer {peer.id} kept" if peer is not None else "new agent peer",
        )

    async def _reusable_peer(self, record: Mapping[str, str]) -> tuple[bool, AgentPeer | None]:
        """(room gone, the recorded agent peer if it still exists)."""
        try:
            room = await self._rest.get_room(record["room_id"])
        except FishjamApiError as exc:
            if exc.status == 404:
                return True, None
            room = None  # Fishjam unreachable: try the peer anyway, the agent retries
        if room is not None and all(p.id != record["agent_id"] for p in room.peers):
            return False, None
        peer = AgentPeer(
            record["agent_id"], record["room_id"], record["agent_token"], record["agent_url"]
        )
        return False, peer

    async def _renew_loop(self) -> None:
        interval = self._ttl / 3
        while True:
            try:
                await self._renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lost_redis(exc)
            await asyncio.sleep(interval if self.healthy else POLL)

    async def _deadline_loop(self) -> None:
        # apart from the renewals, which may hang up to a socket timeout: the agents
        # stop before the last renewed lease can expire, whatever Redis does
        while True:
            await asyncio.sleep(POLL)
            stop_at = self._lease_deadline - STOP_MARGIN * self._ttl
            if self._owned and time.monotonic() >= stop_at:
                self.healthy = False
                logger.error(
                    "no lease renewed for %.1f s (Redis unreachable): stopping %d agents "
                    "(their rooms move to other boxes)",
                    time.monotonic() - (self._lease_deadline - self._ttl),
                    len(self._owned),
                )
                owned, self._owned = self._owned, {}
                self._records.clear()
                for job_id in owned.values():
                    if job_id:
                        self._supervisor.release(job_id)

    async def _renew(self) -> None:
        sent = time.monotonic()
        keys = list(self._owned)
        answer = await self._script(
            "RENEW", self.box_id, self._epoch, self._ttl_ms, repr(self._load()), len(keys), *keys
        )
        if answer[0] == "reset":
            await self._restore()
        else:
            split = answer.index("|")
            for key in answer[1:split]:
                job_id = self._owned.get(key)
                if job_id:
                    logger.info("job %s ended elsewhere in the fleet: stopping it", key)
                    self._supervisor.cancel(job_id)
            for key in answer[split + 1 :]:
                job_id = self._owned.pop(key, None)
                self._records.pop(key, None)
                if job_id:
                    logger.error("job %s: another box holds its lease: stopping it here", key)
                    self._supervisor.release(job_id)
        self._lease_deadline = sent + self._ttl
        if not self.healthy and not self._closing:
            logger.warning("Redis reachable again: taking jobs")
        self.healthy = not self._closing
        # the full scan reads every wanted job: only while a box is gone (the script
        # knows), else every ORPHAN_SCAN_EVERY renewals as a safety net
        full = self._ticks % ORPHAN_SCAN_EVERY == 0
        await self._script("ORPHANS", self._queued_ms, STREAM_MAXLEN, int(full), self._ttl_ms)
        await self._refresh_stats()
        await self._refuse_stale()

    async def _refuse_stale(self) -> None:
        """Refuses the job requests that waited in the stream past the ``when_full``
        policy (any box may do it: the script refuses each request once)."""
        options = self._options
        if options.when_full == "refuse" and self._lowest >= FULL:
            wait, reason = 0.0, "fleet_full"  # every live box is full now
        else:
            wait, reason = options.job_wait_timeout, "fleet_wait_timeout"
        answer = await self._script("REFUSE", self._group, int(wait * 1000), REFUSE_BATCH)
        for key, room_id in zip(answer[::2], answer[1::2], strict=True):
            self._supervisor.refused[reason] += 1
            logger.warning(
                "job %s in room %s refused: no box took it within %g s (%s; every box full)",
                key,
                room_id,
                wait,
                reason,
            )

    def _lost_redis(self, exc: Exception) -> None:
        if self.healthy:
            logger.error(
                "Redis unreachable (%s): taking no jobs; this box's agents stop in %.1f s "
                "unless it comes back",
                exc,
                max(0.0, self._lease_deadline - STOP_MARGIN * self._ttl - time.monotonic()),
            )
        self.healthy = False

    async def _restore(self) -> None:
        """Redis lost its data (restarted without persistence): this box's jobs are
        registered again, the consumer group made again, then the rule reconciled."""
        logger.warning("Redis lost its data: registering this box's %d jobs", len(self._owned))
        self._epoch = (
            await self._script("RESTORE", self.box_id, uuid.uuid4().hex, self._ttl_ms, "")
        )[0]
        for key in list(self._owned):
            record = self._records.get(key, {})
            epoch, status = await self._script(
                "RESTORE", self.box_id, self._epoch, self._ttl_ms, key, *_flat(record)
            )
            self._epoch = epoch
            if status == "lost":
                job_id = self._owned.pop(key, None)
                if job_id:
                    self._supervisor.release(job_id)
        await self._ensure_group()
        if self._on_reset is not None:
            self._background(self._on_reset())

    async def _ensure_group(self) -> None:
        try:
            await self._call(
                self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
            )
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _refresh_stats(self) -> None:
        lowest, _ = await self._script("MIN_LOAD")  # forgets dead boxes
        self._lowest = float(lowest)
        boxes = await self._call(self._redis.hkeys(f"{self._p}:load"))
        jobs = await self._call(self._redis.mget([f"{self._p}:box:{b}" for b in boxes]))
        self.boxes = {b: int(j) for b, j in zip(boxes, jobs, strict=True) if j is not None}
        self.rooms = int(await self._call(self._redis.scard(f"{self._p}:rooms")))
        groups = await self._call(self._redis.xinfo_groups(self._stream))
        self.waiting = next(
            (int(g.get("lag") or 0) for g in groups if g.get("name") == self._group), 0
        )
        self._ticks += 1
        if self._ticks % CONSUMER_IDLE_LEASES == 0:
            # consumers of boxes that died (SIGKILL): nothing pending, long idle
            idle_ms = CONSUMER_IDLE_LEASES * self._ttl_ms
            for consumer in await self._call(
                self._redis.xinfo_consumers(self._stream, self._group)
            ):
                if consumer.get("pending") == 0 and int(consumer.get("idle", 0)) > idle_ms:
                    await self._call(
                        self._redis.xgroup_delconsumer(self._stream, self._group, consumer["name"])
                    )

    # -- helpers ---------------------------------------------------------------------
    def _load(self) -> float:
        # a full box (no job slot, or every worker at max_load) says so: the others
        # must not wait for it to take first
        if self._draining or self._closing or not self._supervisor.has_room():
            return FULL
        return len(self._owned) / max(1, self._supervisor.capacity())

    async def _script(self, name: str, *args: Any) -> Any:
        return await self._call(self._scripts[name](keys=[], args=[self._p, *args]))

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        self.operations += 1
        return await awaitable

    def _background(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._tasks.spawn(coroutine)

    def collect(self) -> Iterator[Metric]:
        """The fleet's gauges as this box last saw them (for the Prometheus registry)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        prefix = "fishjam_fast_server_cluster_"
        yield GaugeMetricFamily(
            prefix + "redis_connected", "1 while Redis answers this box", value=int(self.healthy)
        )
        yield GaugeMetricFamily(prefix + "boxes_alive", "Boxes alive", value=len(self.boxes))
        per_box = GaugeMetricFamily(prefix + "box_jobs", "Jobs per live box", labels=["box"])
        for box, jobs in sorted(self.boxes.items()):
            per_box.add_metric([box], jobs)
        yield per_box
        yield GaugeMetricFamily(prefix + "jobs_wanted", "Jobs wanted fleet-wide", value=self.rooms)
        yield GaugeMetricFamily(
            prefix + "jobs_waiting", "Job requests no box read yet", value=self.waiting
        )
        yield GaugeMetricFamily(prefix + "leases", "Leases this box holds", value=len(self._owned))
        yield CounterMetricFamily(prefix + "jobs_taken", "Jobs this box took", value=self.taken)
        yield CounterMetricFamily(
            prefix + "jobs_taken_over",
            "Jobs this box took with an agent peer another box made",
            value=self.taken_over,
        )
        yield CounterMetricFamily(
            prefix + "jobs_handed_over", "Jobs this box handed to others", value=self.handed_over
        )
        yield CounterMetricFamily(
            prefix + "redis_operations", "Redis commands this box sent", value=self.operations
        )


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


def _entries(answer: Any) -> list[tuple[str, dict[str, str]]]:
    """XREADGROUP's entries, from a RESP2 list or a RESP3 map."""
    if not answer:
        return []
    streams = answer.values() if isinstance(answer, dict) else [s[1] for s in answer]
    out: list[tuple[str, dict[str, str]]] = []
    for entries in streams:
        for item in entries:
            if isinstance(item, list | tuple) and len(item) == 2 and item[1]:
                out.append((item[0], dict(item[1])))
    return out
