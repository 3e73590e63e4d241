"""capture_image (the plain SDK's way: the image comes through receive()) and
request_image (ours: the image is returned to the caller)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fishjam_fast import (
    Agent,
    AgentConnectionError,
    AgentError,
    AgentSession,
    IncomingTrackData,
    IncomingTrackImage,
)
from fishjam_fast._proto import agent_pb2, notifications_pb2
from fishjam_fast.local import LocalFishjam, SimulatedTrack

pytestmark = pytest.mark.usefixtures("transport")


TIMEOUT = 5.0


async def _setup(fj: LocalFishjam) -> tuple[str, Agent, SimulatedTrack]:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    camera = await fj.add_video_peer(room, width=8, height=6)
    return room, Agent(peer.id, room, peer.token, fj.url), camera


def _audio(n: int) -> bytes:
    return agent_pb2.AgentResponse(
        track_data=agent_pb2.AgentResponse.TrackData(
            peer_id="p",
            track=notifications_pb2.Track(id="t", type=notifications_pb2.TRACK_TYPE_AUDIO),
            data=n.to_bytes(4, "little"),
        )
    ).SerializeToString()


def _number(message: Any) -> int:
    assert isinstance(message, IncomingTrackData)
    return int.from_bytes(message.data, "little")


def _is_image(image: Any, camera: SimulatedTrack) -> bool:
    return isinstance(image, IncomingTrackImage) and (
        image.track_id,
        image.content_type,
        image.data,
    ) == (camera.id, "image/png", camera.image)


async def test_capture_image_arrives_through_receive(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent, camera = await _setup(fj)
    async with agent.connect() as session:
        await session.capture_image(camera.id)
        image = await asyncio.wait_for(anext(session.receive()), TIMEOUT)
    assert _is_image(image, camera) and camera.image.startswith(b"\x89PNG")
    assert fj.agent(agent.id).connections[0].images_sent == 1


async def test_request_image_without_a_reader(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent, camera = await _setup(fj)
    async with agent.connect() as session:
        # audio that arrives meanwhile is kept, in order, for receive()
        for n in range(3):
            await fj.send_raw(agent.id, _audio(n))
        image = await session.request_image(camera.id, timeout=TIMEOUT)
        assert _is_image(image, camera)
        again = await session.request_image(camera.id, timeout=TIMEOUT)  # one after another
        assert _is_image(again, camera)
        await fj.send_raw(agent.id, _audio(3))
        messages = session.receive()
        got = [_number(await asyncio.wait_for(anext(messages), TIMEOUT)) for _ in range(4)]
        assert got == [0, 1, 2, 3]  # the images were not yielded by receive()
        await messages.aclose()


async def test_request_image_while_another_task_receives(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent, camera = await _setup(fj)
    async with agent.connect() as session:
        received: list[Any] = []

        async def reader() -> None:
            async for message in session.receive():
                received.append(message)

        task = asyncio.create_task(reader())
        await fj.send_raw(agent.id, _audio(0))
        await fj.wait_for(lambda: received)
        image = await session.request_image(camera.id, timeout=TIMEOUT)
        assert _is_image(image, camera)
        await fj.send_raw(agent.id, _audio(1))
        await fj.wait_for(lambda: len(received) == 2)
        # a plain capture_image still goes to receive()
        await session.capture_image(camera.id)
        await fj.wait_for(lambda: len(received) == 3)
        await session.disconnect()
        await asyncio.wait_for(task, TIMEOUT)
    assert [_number(m) for m in received[:2]] == [0, 1] and _is_image(received[2], camera)


async def test_request_image_inside_a_receive_loop(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent, camera = await _setup(fj)
    async with agent.connect() as session:
        await fj.send_raw(agent.id, _audio(0))
        numbers: list[int] = []
        images = 0
        async with asyncio.timeout(TIMEOUT):
            async for message in session.receive():
                numbers.append(_number(message))
                if numbers == [0]:
                    # frames that arrive before the image are set aside for this loop
                    await fj.send_raw(agent.id, _audio(1))
                    await fj.send_raw(agent.id, _audio(2))
                    assert _is_image(await session.request_image(camera.id), camera)
                    images += 1
                    await fj.send_raw(agent.id, _audio(3))
                if len(numbers) == 4:
                    break
    assert numbers == [0, 1, 2, 3] and images == 1


@pytest.mark.slow  # waits for images
async def test_receive_keeps_order_after_waiting_for_request_image(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    _, agent, _camera = await _setup(fj)
    async with agent.connect() as session:
        # request_image reads the socket itself (nobody else does yet) ...
        request = asyncio.create_task(session.request_image("no-such-track", timeout=1.0))
        await asyncio.sleep(0.05)
        numbers: list[int] = []

        async def reader() -> None:
            async for message in session.receive():
                numbers.append(_number(message))
                if len(numbers) == 3:
                    return

        # ... while receive() starts and waits its turn to read
        task = asyncio.create_task(reader())
        await asyncio.sleep(0.05)
        for n in range(3):
            await fj.send_raw(agent.id, _audio(n))
            await asyncio.sleep(0.02)
        await asyncio.wait_for(task, TIMEOUT)
        assert numbers == [0, 1, 2]
        with pytest.raises(TimeoutError):
            await request


async def test_concurrent_requests_for_one_track_are_refused(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    _, agent, camera = await _setup(fj)
    async with agent.connect() as session:
        fj.stall_agent(agent.id, 0.3)  # keep the first request pending for a while
        first = asyncio.create_task(session.request_image(camera.id, timeout=TIMEOUT))
        await asyncio.sleep(0.02)
        with pytest.raises(AgentError, match="already"):
            await session.request_image(camera.id)
        assert _is_image(await asyncio.wait_for(first, TIMEOUT), camera)
        # another track may be requested concurrently
        other = await fj.add_video_peer(agent.room_id)
        both = await asyncio.gather(
            session.request_image(camera.id), session.request_image(other.id)
        )
        assert _is_image(both[0], camera) and _is_image(both[1], other)


async def test_request_image_times_out(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent, camera = await _setup(fj)
    async with agent.connect() as session:
        with pytest.raises(TimeoutError):  # the server ignores unknown tracks
            await session.request_image("no-such-track", timeout=0.2)
        # the request is over: the same track can be requested again, and works
        with pytest.raises(TimeoutError):
            await session.request_image("no-such-track", timeout=0.05)
        assert _is_image(await session.request_image(camera.id), camera)
        assert fj.agent(agent.id).connections[0].kinds().count("capture_image") == 3


@pytest.mark.parametrize("reader", [False, True], ids=["no-reader", "reader"])
async def test_request_image_fails_when_the_session_ends(
    local_fishjam: LocalFishjam, reader: bool
) -> None:
    fj = local_fishjam
    _, agent, _camera = await _setup(fj)
    async with agent.connect() as session:
        task = asyncio.create_task(_drain(session)) if reader else None
        request = asyncio.create_task(session.request_image("no-such-track", timeout=TIMEOUT))
        await fj.wait_requests(agent.id, 2, TIMEOUT)
        await fj.kick(agent.id)
        with pytest.raises(AgentConnectionError) as info:
            await asyncio.wait_for(request, TIMEOUT)
        assert (info.value.code, info.value.reason) == (1000, "Peer removed")
        if task is not None:
            assert await asyncio.wait_for(task, TIMEOUT) == []
        assert await _drain(session) == []  # receive() ends cleanly afterwards
        with pytest.raises(AgentConnectionError):
            await session.request_image("no-such-track")


async def _drain(session: AgentSession) -> list[Any]:
    return [m async for m in session.receive()]
