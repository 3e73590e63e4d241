"""The transport's one Fishjam connection, shared by its input and output processors.

Opened by whichever processor is set up first, closed when both have let go (pipecat
stops the input before the output, which still plays the end silence). Given an
``Agent`` it connects and disconnects it; given an open ``AgentSession`` it leaves the
session open and only removes what it added (its track, its audio callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal, cast

from ..agent import Agent
from ..errors import AgentError
from ..session import AgentSession, OutgoingAudioTrackOptions
from ..track import OutgoingTrack
from ..windows import AudioWindows, Window

logger = logging.getLogger("fishjam_fast")


class FishjamConnection:
    """One agent session, its outgoing track and who is using them.

    Args:
        source: An ``Agent`` (connected here) or an open ``AgentSession`` (used as is).

    Raises:
        TypeError: ``source`` is neither.
    """

    def __init__(self, source: Agent | AgentSession) -> None:
        if not isinstance(source, Agent | AgentSession):
            raise TypeError(
                "FishjamTransport takes a fishjam_fast Agent or AgentSession, "
                f"not {type(source).__name__}"
            )
        self._source = source
        self._session: AgentSession | None = source if isinstance(source, AgentSession) else None
        self._context: contextlib.AbstractAsyncContextManager[AgentSession] | None = None
        self._users: set[str] = set()
        self._lock = asyncio.Lock()
        self.track: OutgoingTrack | None = None

    @property
    def session(self) -> AgentSession | None:
        """The session while open."""
        return self._session

    @property
    def room_id(self) -> str:
        """The agent's room."""
        agent = self._source if isinstance(self._source, Agent) else self._source.agent
        return agent.room_id

    async def open(self, user: str) -> AgentSession:
        """Opens the session (once) for ``user`` ("input" or "output").

        Raises:
            AgentAuthError, AgentConnectionError: connecting failed (the agent's
                ``open_timeout`` bounds it).
        """
        async with self._lock:
            if self._session is None:  # an Agent, not connected yet (or any more)
                assert isinstance(self._source, Agent)
                context = self._source.connect()
                self._session = await context.__aenter__()
                self._context = context
                logger.info("pipecat: agent %s connected to room %s", self._source.id, self.room_id)
            self._users.add(user)
            return self._session

    async def add_track(
        self, sample_rate: int, channels: int, max_queued: float | None
    ) -> OutgoingTrack:
        """The outgoing PCM16 track (added once)."""
        if self.track is None:
            assert self._session is not None, "open() first"
            # validated by FishjamParams: 16000/24000 Hz, 1 or 2 channels
            options = OutgoingAudioTrackOptions(
                sample_rate=cast("Literal[16000, 24000]", sample_rate),
                channels=cast("Literal[1, 2]", channels),
            )
            self.track = await self._session.add_track(options, max_queued=max_queued)
        return self.track

    def on_track_data(self, callback: Callable[[Any], object] | None) -> None:
        """Sets (or clears) the session's per-chunk audio callback."""
        if self._session is not None and not self._session.closed:
            self._session.on_track_data(callback)

    def on_audio(
        self, callback: Callable[[Window], object], window_ms: int, sample_rate: int
    ) -> AudioWindows | None:
        """Hands peers' mono audio to ``callback`` in windows of ``window_ms``.

        Returns:
            The windows (``stop()`` ends them), or None when the session is closed.

        Raises:
            AgentError: the native extension is missing (the pure-Python build), or
                the session already hands audio on in windows to someone else.
        """
        # (the input stops the windows it started itself: on_audio(None) here would
        # also stop windows that the owner of a given session started)
        if self._session is None or self._session.closed:
            return None
        return self._session.on_audio(callback, window_ms, sample_rate=sample_rate, channels=1)

    async def close(self, user: str) -> None:
        """``user`` lets go; the last one closes what this object opened (idempotent)."""
        async with self._lock:
            if user not in self._users:
                return
            self._users.discard(user)
            if self._users:
                return
            session, context, track = self._session, self._context, self.track
            self.track = None
            self._context = None
            if session is None:
                return
            if context is not None:
                self._session = None
                await context.__aexit__(None, None, None)
                logger.info("pipecat: agent %s disconnected", session.agent.id)
                return
            # a session we were given stays open: take back what we added to it
            with contextlib.suppress(AgentError):
                if not session.closed:
                    session.on_track_data(None)
                    if track is not None and not track.removed:
                        await track.remove()
