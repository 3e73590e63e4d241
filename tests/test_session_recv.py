"""``AgentSession.recv(timeout)``: the next message or TimeoutError, losing nothing, on
both implementations of the session's per-message path (``session_path``), both
transports and both loops, against the local Fishjam."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fishjam_fast import Agent, AgentConnectionError, AgentError, IncomingTrackData
from fishjam_fast.local import LocalFishjam
from tests import hostile

pytestmark = pytest.mark.usefixtures("transport", "session_path")

TIMEOUT = 5.0


async def _agent(fj: LocalFishjam, **options: Any) -> Agent:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    return Agent(peer.id, room, peer.token, fj.url, **options)


async def test_timeout_then_the_next_message_still_arrives(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        with pytest.raises(TimeoutError, match=r"no message from Fishjam within 0\.05 s"):
            await session.recv(timeout=0.05)
        with pytest.raises(TimeoutError):
            await session.recv(timeout=0)  # nothing ready now
        await fj.send_raw(agent.id, hostile.track_data(b"\x01"))
        first = await session.recv(timeout=TIMEOUT)
        assert isinstance(first, IncomingTrackData) and first.data == b"\x01"
        # receive() after timed-out recv()s is fine too
        await fj.send_raw(agent.id, hostile.track_data(b"\x02"))
        second = await asyncio.wait_for(anext(session.receive()), TIMEOUT)
        assert second.data == b"\x02"
        assert session.stats.frames_skipped == 0 and not session.closed


async def test_a_message_arriving_as_the_deadline_passes_is_not_lost(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        for i in range(3):
            reader = asyncio.create_task(session.recv(timeout=0.05))
            await asyncio.sleep(0.01)  # the read waits for the transport
            await fj.send_raw(agent.id, hostile.track_data(bytes([i])))  # in the socket now
            # block the loop past the deadline: when it runs again, the frame is
            # readable and the deadline due in the same iteration (on asyncio the frame
            # resolves the read first, then the deadline cancels the task)
            time.sleep(0.1)
            try:
                got = await reader
            except TimeoutError:
                got = await session.recv(timeout=TIMEOUT)  # kept for the next read
            assert isinstance(got, IncomingTrackData) and got.data == bytes([i])
        with pytest.raises(TimeoutError):
            await session.recv(timeout=0.02)  # nothing was read twice


async def test_messages_in_order_through_many_timeouts(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    count = 200
    async with agent.connect() as session:

        async def send() -> None:
            for i in range(count):
                await fj.send_raw(agent.id, hostile.track_data(i.to_bytes(2, "big")))
                if i % 4 == 0:
                    await asyncio.sleep(0.002)

        sender = asyncio.create_task(send())
        got: list[int] = []
        timeouts = 0
        async with asyncio.timeout(TIMEOUT * 4):
            while len(got) < count:
                try:
                    message = await session.recv(timeout=0.001)
                except TimeoutError:
                    timeouts += 1
                    continue
                assert isinstance(message, IncomingTrackData)
                got.append(int.from_bytes(message.data, "big"))
        await sender
        assert got == list(range(count))
        assert timeouts > 0  # the deadlines did pass


async def test_cancelled_recv_loses_nothing(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        reader = asyncio.create_task(session.recv())
        await asyncio.sleep(0.02)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        await fj.send_raw(agent.id, hostile.track_data(b"\x07"))
        assert (await session.recv(timeout=TIMEOUT)).data == b"\x07"
        # the read lock and the one-reader flag were let go: another task may read
        await fj.send_raw(agent.id, hostile.track_data(b"\x08"))
        assert (await asyncio.create_task(session.recv(timeout=TIMEOUT))).data == b"\x08"


async def test_one_reader_at_a_time(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        reader = asyncio.create_task(session.recv(timeout=TIMEOUT))
        await asyncio.sleep(0.02)
        with pytest.raises(AgentError, match="another task is iterating receive"):
            await session.recv(timeout=TIMEOUT)
        await fj.send_raw(agent.id, hostile.track_data(b"\x09"))
        assert (await reader).data == b"\x09"


async def test_the_trap_of_wait_for_on_receives_iterator(local_fishjam: LocalFishjam) -> None:
    # what recv()'s docstring warns of: a deadline on anext() of a kept iterator ends
    # the iterator for good; the session itself is fine and recv() gets the message
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        messages = session.receive()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(messages), 0.05)
        await fj.send_raw(agent.id, hostile.track_data(b"\x0a"))
        with pytest.raises(StopAsyncIteration):  # looks like a normal close; it is not
            await anext(messages)
        assert not session.closed
        assert (await session.recv(timeout=TIMEOUT)).data == b"\x0a"


@pytest.mark.parametrize(("how", "reason"), [("kick", "Peer removed"), ("disconnect", "")])
async def test_recv_after_a_normal_close_raises_with_the_close_code(
    local_fishjam: LocalFishjam, how: str, reason: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        await fj.send_raw(agent.id, hostile.track_data(b"\x01"))
        assert (await session.recv(timeout=TIMEOUT)).data == b"\x01"
        if how == "kick":
            await fj.kick(agent.id)
        else:
            await session.disconnect()
        for _ in range(2):  # and again: no None, no StopAsyncIteration
            with pytest.raises(AgentConnectionError) as info:
                await session.recv(timeout=TIMEOUT)
            assert (info.value.code, info.value.reason) == (1000, reason)
            assert "code 1000" in str(info.value)
        assert [m async for m in session.receive()] == []  # receive() simply ends


async def test_recv_after_an_abnormal_end_raises_what_receive_raises(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    agent = await _agent(fj, reconnect=False)
    async with agent.connect() as session:
        waiting = asyncio.create_task(session.recv(timeout=TIMEOUT))
        await asyncio.sleep(0.02)
        await fj.close_agent(agent.id, 1011, "boom")
        with pytest.raises(AgentConnectionError) as info:
            await waiting
        assert (info.value.code, info.value.reason) == (1011, "boom")
        with pytest.raises(AgentConnectionError) as again:
            await session.recv(timeout=TIMEOUT)
        with pytest.raises(AgentConnectionError) as from_receive:
            await anext(session.receive())
        assert str(again.value) == str(from_receive.value)
        assert (again.value.code, again.value.reason) == (1011, "boom")


@pytest.mark.parametrize(
    ("timeout", "error", "match"),
    [
        ("1", TypeError, "timeout must be None or a number of seconds, not str"),
        (True, TypeError, "not bool"),
        (-1, ValueError, r"timeout must be None or >= 0 seconds, got -1"),
        (float("nan"), ValueError, "got nan"),
    ],
)
async def test_bad_timeout(
    local_fishjam: LocalFishjam, timeout: Any, error: type[Exception], match: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        with pytest.raises(error, match=match):
            await session.recv(timeout=timeout)
        await fj.send_raw(agent.id, hostile.track_data(b"\x01"))
        assert (await session.recv(timeout=TIMEOUT)).data == b"\x01"
