"""Flow control with bounded memory, both ways: a stalled server blocks send_chunk, and
an application that does not consume receive() makes the agent stop reading."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable

import pytest

from fishjam_fast import Agent, IncomingTrackData, OutgoingAudioTrackOptions, TrackEncoding
from fishjam_fast._proto import agent_pb2, notifications_pb2
from fishjam_fast.local import LocalFishjam

pytestmark = pytest.mark.usefixtures("transport")


TIMEOUT = 10.0
MiB = 1024 * 1024


@pytest.fixture
async def quiet_fishjam() -> AsyncIterator[LocalFishjam]:
    # no heartbeat (a stalled socket must not be closed for missing pongs) and no
    # recordings (the server runs in this process: its memory counts too)
    async with LocalFishjam(heartbeat=None, record_chunks=False, record_requests=False) as fj:
        yield fj


async def _until_stalled(progress: Callable[[], int], limit: float) -> int:
    """Waits until ``progress()`` stops moving for 0.1 s (at most ``limit`` s); its value."""
    deadline = time.monotonic() + limit
    last = progress()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if progress() == last:
            return last
        last = progress()
    raise AssertionError(f"still moving after {limit} s: {last}")


async def _agent(fj: LocalFishjam, **options: int) -> Agent:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    return Agent(peer.id, room, peer.token, fj.url, **options)


@pytest.mark.slow  # waits out a stall (2 s)
async def test_send_waits_while_the_server_stalls_with_bounded_memory(
    quiet_fishjam: LocalFishjam,
) -> None:
    fj = quiet_fishjam
    agent = await _agent(fj)
    chunk = bytes(64 * 1024)
    count = 200 * MiB // len(chunk)
    sent = 0

    async def sender() -> None:
        nonlocal sent
        for _ in range(count):
            await track.send_chunk(chunk)
            sent += 1

    async with agent.connect() as session:
        # Opus: not paced by the server's playout, so the test runs at socket speed
        track = await session.add_track(
            OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_OPUS)
        )
        rec = await fj.wait_track(agent.id, 0, TIMEOUT)
        stall = 1.5
        fj.stall_agent(agent.id, stall)
        started = time.monotonic()
        tracemalloc.start()
        try:
            task = asyncio.create_task(sender())
            during = await _until_stalled(lambda: sent, stall - 0.3)
            # blocked: only the kernel's socket buffers took data
            assert not task.done() and time.monotonic() - started < stall
            assert during * len(chunk) < 32 * MiB
            await asyncio.wait_for(task, TIMEOUT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.monotonic() - started >= stall * 0.9  # it completed after the stall
        await fj.wait_bytes(rec, count * len(chunk), TIMEOUT)
    assert rec.chunk_count == count and session.stats.messages_sent == count + 2
    print(f"peak {peak / MiB:.2f} MiB while sending 200 MiB")
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB while sending 200 MiB"


def _numbered_frame_parts() -> tuple[bytes, bytes]:
    """A 640-byte track_data frame split around a 4-byte sequence number."""
    frame = agent_pb2.AgentResponse(
        track_data=agent_pb2.AgentResponse.TrackData(
            peer_id="flood",
            track=notifications_pb2.Track(
                id="flood-track", type=notifications_pb2.TRACK_TYPE_AUDIO, metadata="null"
            ),
            data=bytes(640),  # the last field: its bytes end the frame
        )
    ).SerializeToString()
    return frame[:-640], bytes(636)


@pytest.mark.slow  # waits while reading is paused (2 s)
async def test_unconsumed_messages_are_bounded_then_all_arrive_in_order(
    quiet_fishjam: LocalFishjam,
) -> None:
    fj = quiet_fishjam
    count = 100_000
    head, tail = _numbered_frame_parts()
    agent = await _agent(fj)
    async with agent.connect() as session:
        conn = await fj.wait_connected(agent.id, TIMEOUT)
        sent = 0

        async def flood() -> None:
            nonlocal sent
            for n in range(count):
                if not await conn.send(head + n.to_bytes(4, "little") + tail):
                    break
                sent += 1

        tracemalloc.start()
        try:
            task = asyncio.create_task(flood())
            await asyncio.sleep(0.2)
            backed_up = await _until_stalled(lambda: sent, 2.0)
            # the server could not push them all: its sends wait for us
            assert not task.done() and backed_up < count
            # max_queue paused reading from the socket
            assert session._transport.reading_paused
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(f"peak {peak / MiB:.2f} MiB with {backed_up} frames backed up")
        assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB with {backed_up} frames backed up"
        expected = 0
        async with asyncio.timeout(TIMEOUT):
            async for message in session.receive():
                assert isinstance(message, IncomingTrackData)
                assert int.from_bytes(message.data[:4], "little") == expected
                expected += 1
                if expected == count:
                    break
        await asyncio.wait_for(task, TIMEOUT)
    assert sent == expected == count
    assert session.stats.messages_received == count + 1
