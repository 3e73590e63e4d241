"""The agent server's background tasks (the supervisor's peer creations and deletions,
recoveries, restarts and channel readers; the fleet's Redis updates; the box's
reconciliation): one kind of set for all, each task kept referenced until it ends and
every failure logged, so none fails unseen."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["BackgroundTasks"]

logger = logging.getLogger("fishjam_fast.server")


class BackgroundTasks:
    """A set of tasks that holds each one until it ends and logs the ones that fail.

    Args:
        what: What the tasks are, for the log line of a failure ("supervisor task").
        expected: Failures that are part of normal operation (a Redis update while
            Redis restarts): logged at WARNING in one line, without the traceback.
            Any other failure is logged at ERROR with its traceback.
    """

    def __init__(
        self, what: str = "supervisor task", *, expected: tuple[type[Exception], ...] = ()
    ) -> None:
        self._what = what
        self._expected = expected
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs ``coroutine`` as a task held by this set until it ends."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, self._expected):
            logger.warning("%s failed: %s", self._what, exc)
        else:
            logger.error("%s failed", self._what, exc_info=exc)

    def pending(self) -> int:
        """Tasks still running."""
        return sum(1 for t in self._tasks if not t.done())

    async def wait(self, timeout: float) -> None:
        """Waits up to ``timeout`` seconds for the running tasks to end (cancels none)."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, timeout))

    def cancel(self) -> None:
        """Cancels every task still running."""
        for task in list(self._tasks):
            task.cancel()

    async def finish(self, timeout: float) -> None:
        """Waits up to ``timeout`` seconds for the running tasks, then cancels the rest."""
        await self.wait(timeout)
        self.cancel()
