"""The worker processes: started, read, watched, restarted and stopped.

Workers start with ``multiprocessing``'s *spawn* start method (a clean interpreter,
nothing inherited from a running event loop, the management token never on a command
line or in a worker's environment). Each talks to the supervisor over a socket pair
(:mod:`.ipc`). A worker that dies (its channel closes), sends a malformed message or
stops reporting for ``worker_timeout`` seconds is killed and restarted, with a backoff
when it keeps dying soon after starting; what becomes of its jobs is the supervisor's
business (``on_died``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from .ipc import Channel, ChannelClosed, ChannelError
from .options import ServerOptions
from .records import JobInfo, WorkerInfo
from .tasks import BackgroundTasks
from .worker import COUNTERS, worker_main

__all__ = ["RESTART_BACKOFF", "STABLE_SECONDS", "TOKEN_VARIABLE", "WorkerPool"]

logger = logging.getLogger("fishjam_fast.server")

RESTART_BACKOFF = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before restarting a worker that died again soon after its last start."""

TOKEN_VARIABLE = "FISHJAM_MANAGEMENT_TOKEN"
"""The environment variable the management token may come from (kept from workers)."""

STABLE_SECONDS = 30.0
"""A worker that lived this long restarts at once the next time it dies."""

OnMessage = Callable[[WorkerInfo, str, dict[str, Any]], None]
"""Called with each message a worker sends (after the pool took what it keeps)."""

OnDied = Callable[[WorkerInfo, str, Any, list[JobInfo]], None]
"""Called when a worker died: the worker, the cause, its exit code, the jobs it held."""


class WorkerPool:
    """The worker processes of one supervisor (``options.worker_count`` slots)."""

    def __init__(
        self,
        entry: str | Callable[..., Any],
        prewarm: str | Callable[..., Any] | None,
        options: ServerOptions,
        tasks: BackgroundTasks,
        *,
        log_level: int | None,
        on_message: OnMessage,
        on_died: OnDied,
    ) -> None:
        self._entry = entry
        self._prewarm = prewarm
        self._options = options
        self._tasks = tasks
        self._log_level = log_level
        self._on_message = on_message
        self._on_died = on_died
        self._context = multiprocessing.get_context("spawn")
        self.workers = [WorkerInfo(i) for i in range(options.worker_count)]
        self.restarts_allowed = True
        """False once the server drains: a worker that dies then is not restarted."""
        self.stopping = False
        """True once :meth:`stop` began: a worker that goes away then was stopped."""

    def start(self) -> None:
        """Starts a process in every slot (:meth:`wait_ready` waits for them)."""
        for worker in self.workers:
            self.spawn(worker)

    async def wait_ready(self) -> None:
        """Waits until every worker ran prewarm (``worker_start_timeout``).

        Raises:
            TimeoutError: A worker was not ready in time.
            RuntimeError: A worker could not load the entrypoint or prewarm.
        """
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

    def spawn(self, worker: WorkerInfo) -> None:
        """Starts a process in ``worker``'s slot and a task reading its channel."""
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
        worker.reader = self._tasks.spawn(self._read(worker, parent, process))

    async def _read(self, worker: WorkerInfo, sock: socket.socket, process: Any) -> None:
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
            await self._died(worker, cause)

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
        elif kind == "ready":
            worker.ready = True
            worker.ready_event.set()
            logger.info("worker %d ready (pid %s)", worker.index, worker.pid)
        elif kind == "broken":
            worker.error = str(message.get("error"))
            logger.error("worker %d cannot run jobs: %s", worker.index, worker.error)
            worker.ready_event.set()  # wait_ready() reports it
        self._on_message(worker, kind, message)

    async def _died(self, worker: WorkerInfo, cause: str) -> None:
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
        self._on_died(worker, cause, exitcode, orphans)
        if self.stopping:
            return
        lived = time.monotonic() - worker.started_at
        worker.failures = 0 if lived >= STABLE_SECONDS else worker.failures + 1
        delay = RESTART_BACKOFF[min(worker.failures, len(RESTART_BACKOFF) - 1)]
        if self.restarts_allowed:
            self._tasks.spawn(self._restart(worker, delay))

    async def _restart(self, worker: WorkerInfo, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.restarts_allowed or worker.process is not None:
            return
        worker.restarts += 1
        self.spawn(worker)

    def kill_silent(self) -> None:
        """Kills the workers that sent nothing for ``worker_timeout`` seconds
        (``worker_start_timeout`` while starting); their deaths are handled as any."""
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
                process.kill()  # its channel closes: _read handles the death
                worker.last_report = now

    async def stop(self) -> None:
        """Stops every worker (each cancels its jobs), waits for the processes to exit
        (killing the ones that do not within 15 s) and for their last messages."""
        self.restarts_allowed = False
        self.stopping = True
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
