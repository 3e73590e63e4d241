"""The session's per-message path against hostile servers written here (raw asyncio,
frames byte by byte), on both implementations, both transports and both loops: nothing
but the package and its required dependencies (CI runs it in the minimal install too).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from fishjam_fast import (
    Agent,
    AgentConnectionError,
    AgentWouldBlockError,
    OutgoingAudioTrackOptions,
    ReconnectPolicy,
)
from tests import hostile

pytestmark = pytest.mark.usefixtures("transport", "session_path")

TIMEOUT = 5.0
QUICK = ReconnectPolicy(budget=10.0, first_delay=0.02, max_delay=0.2)


def _payloads(n: int, size: int = 640) -> list[bytes]:
    return [bytes([i % 251]) * size for i in range(n)]


async def test_send_chunk_nowait_raises_when_the_write_buffer_is_full() -> None:
    """A server that stops reading: nowait sends fill the write buffer, then raise; the
    count of chunks sent is exact and memory stays bounded (the loop ends)."""

    async def handler(peer: hostile.Peer) -> None:
        await peer.authenticate()
        await asyncio.sleep(HOLD)  # reads nothing more

    HOLD = 3.0
    async with hostile.HostileServer(handler) as server:
        agent = Agent(
            "a", "r", "t", server.url, write_limit=16384, reconnect=False, close_timeout=0.2
        )
        async with agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            sent = session.stats.messages_sent
            written = 0
            with pytest.raises(AgentWouldBlockError, match="write buffer is full"):
                for _ in range(100_000):  # bounded: the kernel buffers fill long before
                    track.send_chunk_nowait(b"\x00" * 6400)
                    written += 1
            assert written > 0
            assert session.stats.messages_sent - sent == written
            with pytest.raises(AgentWouldBlockError):  # still full: nothing more
                track.send_chunk_nowait(b"\x00" * 6400)
            assert session.stats.messages_sent - sent == written


async def test_messages_before_a_drop_are_still_received() -> None:
    payloads = _payloads(5, size=64)

    async def handler(peer: hostile.Peer) -> None:
        await peer.authenticate()
        await peer.send(*(hostile.frame(hostile.BINARY, hostile.track_data(p)) for p in payloads))
        await asyncio.sleep(0.1)
        peer.writer.transport.abort()  # no close frame: 1006

    async with hostile.HostileServer(handler) as server:
        agent = Agent("a", "r", "t", server.url, reconnect=False)
        async with agent.connect() as session:
            async with asyncio.timeout(TIMEOUT):
                while not session.closed:  # told by the transport, without a read
                    await asyncio.sleep(0.01)
                got: list[bytes] = []
                with pytest.raises(AgentConnectionError) as info:
                    async for message in session.receive():
                        got.append(message.data)
            assert got == payloads
            assert info.value.code == 1006


async def test_a_reconnection_keeps_what_the_lost_connection_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Chunks received before a drop and not yet read come before the new connection's."""
    caplog.set_level(logging.WARNING, logger="fishjam_fast")
    connections = 0

    async def handler(peer: hostile.Peer) -> None:
        nonlocal connections
        connections += 1
        await peer.authenticate()
        if connections == 1:
            await peer.send(*(hostile.frame(hostile.BINARY, hostile.track_data(b"old")),) * 3)
            await asyncio.sleep(0.1)
            peer.writer.transport.abort()
        else:
            await peer.send(hostile.frame(hostile.BINARY, hostile.track_data(b"new")))
            await peer.serve_pings()

    async with hostile.HostileServer(handler) as server:
        agent = Agent("a", "r", "t", server.url, reconnect=QUICK)
        async with agent.connect() as session:
            async with asyncio.timeout(TIMEOUT):
                while session.stats.reconnects == 0:
                    await asyncio.sleep(0.01)
                got = []
                async for message in session.receive():
                    got.append(message.data)
                    if len(got) == 4:
                        break
            assert got == [b"old", b"old", b"old", b"new"]
