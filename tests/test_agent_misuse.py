"""Mistakes a new user made, each answered by a clear error before harm is done:
concurrent receive() loops, metadata that is not JSON or too large, an image that never
comes, and sending after the session ended (who ended it). Over loopback against the
local Fishjam, on both loops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fishjam_fast import (
    Agent,
    AgentConnectionError,
    AgentError,
    AgentSession,
    IncomingTrackData,
    OutgoingAudioTrackOptions,
)
from fishjam_fast.local import LocalFishjam
from fishjam_fast.session import MAX_METADATA_BYTES

TIMEOUT = 5.0


async def _agent(fj: LocalFishjam, **options: Any) -> Agent:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    return Agent(peer.id, room, peer.token, fj.url, **options)


# -- one receive() loop at a time ----------------------------------------------------


async def test_second_concurrent_receive_loop_raises_at_once(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        first: list[Any] = []

        async def reader() -> None:
            async for message in session.receive():
                first.append(message)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.05)  # the reader waits for its first message
        with pytest.raises(AgentError, match="another task is iterating receive"):
            await asyncio.wait_for(anext(session.receive()), TIMEOUT)
        # the first loop is unharmed and gets every message
        await fj.add_speaking_peer(agent.room_id, chunks=3, realtime=False)
        await fj.wait_for(lambda: len(first) == 3, TIMEOUT)
        assert all(isinstance(message, IncomingTrackData) for message in first)
        await session.disconnect()
        await asyncio.wait_for(task, TIMEOUT)


async def test_receive_loops_one_after_another_are_fine(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        await fj.add_speaking_peer(agent.room_id, chunks=2, realtime=False)
        for _ in range(2):
            async with asyncio.timeout(TIMEOUT):
                async for _message in session.receive():
                    break  # a new loop later takes over


# -- track metadata -------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_metadata_with_nan_or_infinity_is_refused_before_sending(
    local_fishjam: LocalFishjam, value: float
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        sent = session.stats.messages_sent
        with pytest.raises(ValueError, match="NaN or Infinity, which are not JSON"):
            await session.add_track(OutgoingAudioTrackOptions(metadata={"gain": value}))
        assert session.stats.messages_sent == sent and not session.closed
        track = await session.add_track(OutgoingAudioTrackOptions(metadata={"gain": 1.5}))
        recording = await fj.wait_track(agent.id, 0, TIMEOUT)
        assert recording.track_id == track.id and recording.metadata_json == {"gain": 1.5}


async def test_metadata_too_large_for_a_frame_is_refused_before_sending(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    # {"x": "..."} is 9 bytes of JSON around the string
    largest = {"x": "a" * (MAX_METADATA_BYTES - 9)}
    too_large = {"x": "a" * (MAX_METADATA_BYTES - 8)}
    async with agent.connect() as session:
        sent = session.stats.messages_sent
        with pytest.raises(ValueError, match=f"{MAX_METADATA_BYTES + 1} bytes as JSON"):
            await session.add_track(OutgoingAudioTrackOptions(metadata=too_large))
        assert session.stats.messages_sent == sent and not session.closed
        # the limit itself goes through, and the server takes it
        await session.add_track(OutgoingAudioTrackOptions(metadata=largest))
        recording = await fj.wait_track(agent.id, 0, TIMEOUT)
        assert len(recording.metadata) == MAX_METADATA_BYTES
        assert not session.closed


# -- request_image --------------------------------------------------------------------


async def test_request_image_timeout_names_the_track(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        with pytest.raises(TimeoutError) as info:
            await session.request_image("no-such-track", timeout=0.1)
    assert str(info.value) == "no image of track 'no-such-track' came within 0.1 s"


# -- sending after the end: who ended it ----------------------------------------------


async def _end_by_drop(fj: LocalFishjam, session: AgentSession) -> None:
    fj.drop_agent(session.agent.id)
    with pytest.raises(AgentConnectionError):  # receive() learns of it: abnormal
        await _drain(session)


async def _end_by_kick(fj: LocalFishjam, session: AgentSession) -> None:
    await fj.kick(session.agent.id)
    assert await _drain(session) == []  # a normal close: receive() just ends


async def _end_by_disconnect(fj: LocalFishjam, session: AgentSession) -> None:
    await session.disconnect()


@pytest.mark.parametrize(
    ("end", "message"),
    [
        (_end_by_drop, "the connection to Fishjam was lost (code 1006)"),
        (_end_by_kick, "Fishjam closed the session (code 1000: Peer removed)"),
        (_end_by_disconnect, "the session is closed (code 1000)"),
    ],
    ids=["dropped", "server-closed", "disconnect"],
)
async def test_send_after_the_end_says_who_ended_it(
    local_fishjam: LocalFishjam, end: Callable[..., Awaitable[None]], message: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj, reconnect=False)  # a drop ends the session (no reconnect)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        await fj.wait_track(agent.id, 0, TIMEOUT)
        await end(fj, session)
        with pytest.raises(AgentConnectionError) as info:
            await track.send_chunk(b"\0\0")
    assert str(info.value) == message


async def _drain(session: AgentSession) -> list[Any]:
    async with asyncio.timeout(TIMEOUT):
        return [message async for message in session.receive()]
