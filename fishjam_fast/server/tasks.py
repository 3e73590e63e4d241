"""The supervisor's background tasks (peer creations and deletions, recoveries,
restarts, channel readers): kept referenced until done, failures logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["BackgroundTasks"]

logger = logging.getLogger("fishjam_fast.server")


class BackgroundTasks:
    """A set of tasks that holds each one until it ends and logs the ones that fail."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs ``coroutine`` as a task held by this set until it ends."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("supervisor task failed", exc_info=task.exception())

    def pending(self) -> int:
        """Tasks still running."""
        return sum(1 for t in self._tasks if not t.done())

    async def finish(self, timeout: float) -> None:
        """Waits up to ``timeout`` seconds for the running tasks, then cancels the rest."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
