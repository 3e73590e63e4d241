"""Polling waits on the local server's state, each with a deadline the caller sets.

:class:`Waits` is a part of :class:`~fishjam_fast.local.LocalFishjam`. Polling (every
5 ms by default) keeps the recording code free of wake-ups for waiters nobody asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .agent_socket import AgentConnection
    from .records import ConnectionRecord, TrackRecording
    from .state import ServerState

T = TypeVar("T")


class Waits:
    """Waiting methods of :class:`LocalFishjam` (call them on its event loop)."""

    state: ServerState

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.005
    ) -> T:
        """Poll ``predicate`` until it returns something truthy.

        Args:
            predicate: Called on the server's loop; its truthy result is returned.
            timeout: Seconds.
            interval: Seconds between polls.

        Returns:
            The predicate's result.

        Raises:
            TimeoutError: If it stayed falsy for ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(interval)

    async def wait_connected(self, peer_id: str, timeout: float = 5.0) -> AgentConnection:
        """Wait until an agent is connected and authenticated.

        Returns:
            Its live connection.

        Raises:
            TimeoutError: If it did not connect in time.
        """
        return await self.wait_for(lambda: self.state.connection(peer_id), timeout)

    async def wait_disconnected(self, peer_id: str, timeout: float = 5.0) -> ConnectionRecord:
        """Wait until an agent's latest connection has ended.

        Returns:
            That connection's record.

        Raises:
            TimeoutError: If it is still connected after ``timeout``.
        """
        rec = self.state.agent(peer_id)

        def ended() -> ConnectionRecord | None:
            last = rec.connections[-1] if rec.connections else None
            return last if last is not None and last.closed_at is not None else None

        return await self.wait_for(ended, timeout)

    async def wait_track(
        self, peer_id: str, index: int = 0, timeout: float = 5.0
    ) -> TrackRecording:
        """Wait until an agent has added its ``index``-th track.

        Returns:
            The track recording.

        Raises:
            TimeoutError: If it did not in time.
        """
        rec = self.state.agent(peer_id)
        return await self.wait_for(
            lambda: list(rec.tracks.values())[index] if len(rec.tracks) > index else None,
            timeout,
        )

    async def wait_bytes(self, track: TrackRecording, n: int, timeout: float = 5.0) -> int:
        """Wait until ``track`` has received at least ``n`` payload bytes.

        Returns:
            The bytes received so far.

        Raises:
            TimeoutError: If fewer arrived in time.
        """
        return await self.wait_for(
            lambda: track.total_bytes if track.total_bytes >= n else 0, timeout
        )

    async def wait_requests(self, peer_id: str, n: int, timeout: float = 5.0) -> int:
        """Wait until an agent's connections have sent ``n`` decoded requests in total.

        Returns:
            The count so far.

        Raises:
            TimeoutError: If fewer arrived in time.
        """
        rec = self.state.agent(peer_id)

        def count() -> int:
            c = sum(x.request_count for x in rec.connections)
            return c if c >= n else 0

        return await self.wait_for(count, timeout)
