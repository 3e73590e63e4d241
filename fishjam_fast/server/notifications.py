"""The notification socket as a job source: a ``FishjamNotifier`` feeding the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["NotificationSource"]

logger = logging.getLogger("fishjam_fast.server")

READY_TIMEOUT = 10.0
"""Seconds the notifier may take to connect and subscribe when the server starts."""


class NotificationSource:
    """Feeds every server notification (and ``NotificationGap``) to ``feed``."""

    def __init__(
        self, fishjam_url: str, management_token: str, feed: Callable[[Any], None]
    ) -> None:
        self._url = fishjam_url
        self._token = management_token
        self._feed = feed
        self._notifier: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Connects and subscribes; returns once notifications flow.

        Raises:
            TimeoutError: Not subscribed within ``timeout`` seconds.
        """
        from .. import FishjamNotifier

        notifier = FishjamNotifier(self._url, self._token)
        notifier.on_server_notification(self._feed)
        self._notifier = notifier
        self._task = asyncio.create_task(self._run(notifier))
        await notifier.wait_ready(timeout=timeout)

    async def _run(self, notifier: Any) -> None:
        try:
            await notifier.connect()
        except asyncio.CancelledError:
            raise
        except Exception:
            # the notifier reconnects by itself: an error here ended it for good
            logger.exception("the notification socket ended: no more jobs from notifications")

    async def close(self) -> None:
        """Stops the notifier."""
        if self._notifier is not None:
            with contextlib.suppress(Exception):
                await self._notifier.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
