"""A worker process: many jobs as tasks on one event loop (uvloop where installed).

It runs ``prewarm`` once, freezes what exists then (``gc.freeze``), says it is ready,
then runs the jobs the supervisor sends it and reports its load (CPU over the last
seconds, jobs, event-loop lag) and counters every ``report_interval``. A job's
exception ends that job alone. The worker ignores SIGINT and SIGTERM (the supervisor
drains and stops it over the channel) and exits when the channel closes, so it never
outlives its supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import inspect
import logging
import os
import signal
import socket
import sys
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from ..agent import Agent
from ..errors import AgentAuthError
from ..runner import run
from ..session import AgentSession
from .ipc import Channel, ChannelClosed, ChannelError
from .job import Job

__all__ = ["Entrypoint", "resolve", "resolve_prewarm", "worker_main"]

logger = logging.getLogger("fishjam_fast.server")

Entrypoint = Callable[[Job], Awaitable[None]]

LAG_PROBE_INTERVAL = 0.1
"""Seconds between the event-loop lag probes."""

COUNTERS = (
    "jobs_started",
    "jobs_failed",
    "jobs_cancelled",
    "reconnects",
    "messages_sent",
    "bytes_sent",
    "messages_received",
    "bytes_received",
)
"""The cumulative counters a worker reports (since it started)."""


def resolve(spec: str | Callable[..., Any], what: str = "entrypoint") -> Callable[..., Any]:
    """The callable a ``"module:attribute"`` spec names (a callable is returned as is).

    Raises:
        ValueError: The spec is not ``module:attribute``, or names nothing callable.
        ImportError: The module cannot be imported.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"{what} must be 'module:function' or a callable, not {spec!r}")
    module_name, _, attribute = spec.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{what} {spec!r}: {module_name} has no {attribute!r}") from None
    if not callable(target):
        raise ValueError(f"{what} {spec!r} is not callable but {type(target).__name__}")
    return target  # type: ignore[no-any-return]


def resolve_prewarm(
    entry: str | Callable[..., Any], prewarm: str | Callable[..., Any] | None
) -> Callable[..., Any] | None:
    """The prewarm function: the one named, else a module-level ``prewarm`` beside the
    entrypoint, else None."""
    if prewarm is not None:
        return resolve(prewarm, "prewarm")
    module_name = entry.partition(":")[0] if isinstance(entry, str) else entry.__module__
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    found = getattr(module, "prewarm", None)
    return found if callable(found) else None


ALREADY_CONNECTED = "peer already connected"
"""Fishjam's refusal of a second connection of a peer (wire-protocol.md)."""

TAKEOVER_SECONDS = 5.0
"""How long a job started again after its worker died retries a refusal with
:data:`ALREADY_CONNECTED`: Fishjam may not have noticed the dead worker's connection go."""


def _resolved_proxy(agent_options: dict[str, Any]) -> dict[str, Any]:
    """The jobs' Agent options with ``proxy=True`` (the default: the environment's proxy)
    settled once for the worker's life where the environment names no proxy at all:
    then every connection is direct, and ``proxy=False`` says so without reading the
    environment again at each connection (the transport's lookup walks every variable
    twice: about 0.2 ms of a worker's 1.5-1.9 ms of CPU per job). A worker's environment
    is its supervisor's at spawn; where a proxy is configured the option stays as
    given."""
    if agent_options.get("proxy", True) is True and not urllib.request.getproxies():
        return {**agent_options, "proxy": False}
    return agent_options


class _JobAgent(Agent):
    """An :class:`Agent` that tells its worker about every session it opens (the
    traffic counters and the moment it authenticated), and that, for a job taken over
    from a dead worker, waits for Fishjam to let go of the old connection."""

    def __init__(
        self,
        *args: Any,
        on_session: Callable[[AgentSession], None],
        takeover: bool,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self._on_session = on_session
        self._takeover = takeover

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AgentSession]:
        deadline = time.monotonic() + TAKEOVER_SECONDS
        delay = 0.05
        async with contextlib.AsyncExitStack() as stack:
            while True:
                try:
                    session = await stack.enter_async_context(super().connect())
                    break
                except AgentAuthError as exc:
                    retry = self._takeover and exc.reason == ALREADY_CONNECTED
                    if not retry or time.monotonic() + delay > deadline:
                        raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            self._takeover = False
            self._on_session(session)
            yield session


class _Worker:
    def __init__(
        self,
        sock: socket.socket,
        index: int,
        entry: str | Callable[..., Any],
        prewarm: str | Callable[..., Any] | None,
        config: dict[str, Any],
    ) -> None:
        self._sock = sock
        self._index = index
        self._entry_spec = entry
        self._prewarm_spec = prewarm
        self._config = config
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._sessions: list[AgentSession] = []
        self._closed_totals = dict.fromkeys(("reconnects", *COUNTERS[3:]), 0)
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._lag_max = 0.0
        self._cpu: deque[tuple[float, float]] = deque()
        self._channel: Channel | None = None
        self._agent_options = _resolved_proxy(config["agent_options"])

    async def main(self) -> None:
        channel = await Channel.open(self._sock, self._config["max_message_size"])
        self._channel = channel
        try:
            entry = resolve(self._entry_spec)
            prewarm = resolve_prewarm(self._entry_spec, self._prewarm_spec)
            if prewarm is not None:
                result = prewarm()
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            logger.exception("worker %d: the entrypoint or prewarm failed to load", self._index)
            channel.send({"t": "broken", "error": f"{type(exc).__name__}: {exc}"})
            with contextlib.suppress(ChannelError, TimeoutError):
                await channel.drain(5.0)
            return
        self._entry = entry
        # what exists now (modules, what prewarm loaded) lives as long as the worker:
        # frozen, the garbage collections of a burst of jobs do not traverse it (in a
        # 500-room burst an unfrozen worker's collections paused its loop for 0.25-0.36 s
        # in all, the longest 0.25-0.29 s; frozen 0.10-0.18 s, the longest 0.04-0.17 s)
        gc.collect()
        gc.freeze()
        channel.send({"t": "ready", "pid": os.getpid()})
        tasks = [asyncio.create_task(self._report()), asyncio.create_task(self._probe_lag())]
        try:
            await self._serve(channel)
        finally:
            for task in tasks:
                task.cancel()
            await self._cancel_all()
            channel.close()

    async def _serve(self, channel: Channel) -> None:
        while True:
            try:
                message = await channel.receive()
            except ChannelClosed:
                logger.warning("worker %d: the supervisor went away; stopping", self._index)
                return
            kind = message["t"]
            if kind == "start":
                job_id = message["job"]
                message["received"] = time.monotonic()  # reported with "connected"
                self._jobs[job_id] = asyncio.create_task(self._run_job(message))
            elif kind == "cancel":
                task = self._jobs.get(message["job"])
                if task is not None:
                    task.cancel()
            elif kind == "stop":
                await self._cancel_all()
                channel.send({"t": "stopped"})
                with contextlib.suppress(ChannelError, TimeoutError):
                    await channel.drain(5.0)
                return

    async def _cancel_all(self) -> None:
        tasks = list(self._jobs.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10.0)

    def _send(self, message: dict[str, Any]) -> None:
        if self._channel is not None:
            with contextlib.suppress(ChannelError):
                self._channel.send(message)

    async def _run_job(self, message: dict[str, Any]) -> None:
        job_id = message["job"]
        agent_info = message["agent"]

        def on_session(session: AgentSession) -> None:
            self._sessions.append(session)
            # when the start message was read and the agent authenticated: the
            # supervisor's dispatch-latency stages (time.monotonic() is system-wide)
            self._send(
                {
                    "t": "connected",
                    "job": job_id,
                    "received": message["received"],
                    "connected": time.monotonic(),
                }
            )

        outcome, error = "ok", ""
        try:
            agent = _JobAgent(
                agent_info["id"],
                message["room_id"],
                agent_info["token"],
                agent_info["url"],
                on_session=on_session,
                takeover=int(message.get("attempt", 1)) > 1,
                **self._agent_options,
            )
            job = Job(
                job_id,
                agent,
                message["room_id"],
                message.get("peer_id"),
                message.get("metadata"),
                int(message.get("attempt", 1)),
            )
            self._counters["jobs_started"] += 1
            await self._entry(job)
        except asyncio.CancelledError:
            outcome = "cancelled"
            self._counters["jobs_cancelled"] += 1
        except Exception as exc:
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
            self._counters["jobs_failed"] += 1
            logger.exception(
                "job %s in room %s failed on worker %d", job_id, message["room_id"], self._index
            )
        finally:
            self._jobs.pop(job_id, None)
            self._send({"t": "ended", "job": job_id, "outcome": outcome, "error": error[:500]})

    def _cpu_load(self) -> float:
        """CPU seconds per wall second over the last ``load_window`` seconds."""
        now, cpu = time.monotonic(), time.process_time()
        samples = self._cpu
        samples.append((now, cpu))
        while len(samples) > 2 and now - samples[1][0] >= self._config["load_window"]:
            samples.popleft()
        first_wall, first_cpu = samples[0]
        return (cpu - first_cpu) / (now - first_wall) if now > first_wall else 0.0

    def _traffic(self) -> dict[str, int]:
        """Traffic counters since the worker started: the closed sessions' totals (each
        added once, then forgotten) plus the open sessions' counts."""
        totals = self._closed_totals
        open_counts = dict.fromkeys(totals, 0)
        still_open = []
        for session in self._sessions:
            stats = session.stats
            target = totals if stats.closed_at is not None else open_counts
            target["reconnects"] += stats.reconnects
            target["messages_sent"] += stats.messages_sent
            target["bytes_sent"] += stats.bytes_sent
            target["messages_received"] += stats.messages_received
            target["bytes_received"] += stats.bytes_received
            if stats.closed_at is None:
                still_open.append(session)
        self._sessions = still_open
        return {name: totals[name] + open_counts[name] for name in totals}

    async def _report(self) -> None:
        interval = self._config["report_interval"]
        while True:
            counters = {**self._counters, **self._traffic()}
            self._send(
                {
                    "t": "load",
                    "cpu": round(self._cpu_load(), 4),
                    "jobs": len(self._jobs),
                    "agents": len(self._sessions),
                    "lag": round(self._lag_max, 4),
                    "counters": counters,
                }
            )
            self._lag_max = 0.0
            await asyncio.sleep(interval)

    async def _probe_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PROBE_INTERVAL)
            self._lag_max = max(self._lag_max, loop.time() - start - LAG_PROBE_INTERVAL)


def worker_main(
    sock: socket.socket,
    index: int,
    entry: str | Callable[..., Any],
    prewarm: str | Callable[..., Any] | None,
    config: dict[str, Any],
) -> None:
    """The worker process's body (the target of its ``multiprocessing.Process``)."""
    # the supervisor owns the signals: a terminal's Ctrl-C or a SIGTERM to the whole
    # process group must not kill jobs that the supervisor is draining
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if config.get("log_level") is not None and not logging.getLogger().handlers:
        logging.basicConfig(
            level=config["log_level"],
            format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s",
        )
    run(_Worker(sock, index, entry, prewarm, config).main(), use_uvloop=config["use_uvloop"])
