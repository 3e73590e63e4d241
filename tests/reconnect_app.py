"""An agent application as a user writes it, for the reconnect tests and benchmark: one
session, its tracks, a task sending audio on every track and a ``receive()`` loop.
Whatever escapes the loops is kept, so a test can assert that nothing did; and what
the server recorded about the agent's connections is checked against its tracks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from contextlib import AsyncExitStack
from typing import Any

from fishjam_fast import (
    Agent,
    AgentSession,
    OutgoingAudioTrackOptions,
    OutgoingTrack,
    SessionStateChange,
    TrackEncoding,
)
from fishjam_fast.local import LocalFishjam
from fishjam_fast.local.records import AgentRecord

TIMEOUT = 10.0

TRACK_OPTIONS = (
    OutgoingAudioTrackOptions(sample_rate=24000, channels=2, metadata={"voice": "tts"}),
    OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_PCM16, sample_rate=16000),
)


def chunk_for(options: OutgoingAudioTrackOptions, ms: int) -> bytes:
    """``ms`` milliseconds of silence for a track with these options."""
    return bytes(options.sample_rate * options.channels * 2 * ms // 1000)


class App:
    """One agent application on a live session (use :meth:`start`, then :meth:`stop`).

    Attributes:
        sent: Rounds of chunks the sender sent (one chunk per track each).
        received: Messages the receive loop got.
        changes: The session's state transitions, in order.
        errors: Exceptions that escaped the sender or the receive loop.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        options: tuple[Any, ...] = TRACK_OPTIONS,
        ms: int = 20,
        interval: float | None = None,
    ):
        """Args: ``ms`` of audio per chunk, one chunk per track every ``interval`` s
        (default: ``ms``, real time)."""
        self.agent = agent
        self.options = options
        self.ms = ms
        self.interval = interval if interval is not None else ms / 1000
        self.session: AgentSession
        self.tracks: list[OutgoingTrack] = []
        self.received = 0
        self.changes: list[SessionStateChange] = []
        self.errors: list[BaseException] = []
        self.sent = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, stack: AsyncExitStack) -> App:
        self.session = await stack.enter_async_context(self.agent.connect())
        self.session.on_state_change(self.changes.append)
        self.tracks = [await self.session.add_track(o) for o in self.options]
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._receive()), loop.create_task(self._send())]
        return self

    async def _receive(self) -> None:
        try:
            async for _ in self.session.receive():
                self.received += 1
        except Exception as exc:
            self.errors.append(exc)

    async def _send(self) -> None:
        chunks = [chunk_for(o, self.ms) for o in self.options]
        try:
            while True:
                for track, chunk in zip(self.tracks, chunks, strict=True):
                    await track.send_chunk(chunk)
                self.sent += 1
                await asyncio.sleep(self.interval)
        except Exception as exc:
            self.errors.append(exc)

    async def stop(self) -> None:
        """Stops sending, disconnects; the receive loop must end by itself."""
        receiver, sender = self._tasks
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await self.session.disconnect()
        async with asyncio.timeout(TIMEOUT):
            await receiver


def check_connections(record: AgentRecord, app: App, token: str) -> None:
    """What the server saw of every connection of ``app``'s agent: the same token, every
    track re-added with the same id and parameters before any of its audio."""
    assert [a.token for a in record.auth_attempts] == [token] * len(record.connections)
    assert all(a.accepted for a in record.auth_attempts)
    assert [c.token for c in record.connections] == [token] * len(record.connections)
    ids = [t.id for t in app.tracks]
    for index, connection in enumerate(record.connections):
        log = [(e.kind, e.track_id) for e in connection.track_log]
        assert log[: len(ids)] == [("add_track", i) for i in ids], (index, log)
        assert connection.data_without_track == 0, index
    for track, options in zip(app.tracks, app.options, strict=True):
        recordings = record.recordings(track.id)
        assert len(recordings) == len(record.connections)
        for recording in recordings:
            assert (recording.encoding, recording.sample_rate, recording.channels) == (
                options.encoding,
                options.sample_rate,
                options.channels,
            )
            assert json.loads(recording.metadata) == options.metadata


def audio_flows(record: AgentRecord, app: App) -> bool:
    """The session is connected and every track's audio reached the server on the
    current connection."""
    if app.session.state != "connected":
        return False
    current = len(record.connections) - 1
    tracks = record.tracks
    return all(
        tracks[t.id].connection_index == current and tracks[t.id].total_bytes for t in app.tracks
    )


async def agents(fj: LocalFishjam, n: int, per_room: int = 10, **options: Any) -> list[Agent]:
    """``n`` agents in rooms of ``per_room``, made with ``Agent(..., **options)``."""
    made: list[Agent] = []
    room = ""
    for i in range(n):
        if i % per_room == 0:
            room = await fj.create_room()
        peer = await fj.add_agent(room)
        made.append(Agent(peer.id, room, peer.token, fj.url, **options))
    return made
