"""Frames from a hand-written server, split at every offset, with every length encoding.

Both transports, both loops: what the application receives must be the messages sent,
byte for byte, however the bytes were cut into reads.
"""

from __future__ import annotations

import asyncio

import pytest

from fishjam_fast import Agent, IncomingTrackData
from tests.conftest import ALL_TRANSPORTS, compiled, uncompiled
from tests.hostile import BINARY, CONT, PING, PONG, HostileServer, Peer, frame, track_data

pytestmark = [pytest.mark.usefixtures("transport"), ALL_TRANSPORTS]

HANG = 10.0

# payload sizes with a 7-bit, a 16-bit and a 64-bit length
LENGTHS = {"7-bit": 100, "16-bit": 300, "64-bit": 70_000}


def _message(size: int, n: int) -> bytes:
    """A track_data response of ``size`` bytes or a little more, numbered ``n``."""
    return track_data(n.to_bytes(4, "big") + bytes([n % 251]) * (size - 20))


def _split_points(data: bytes, header: int) -> list[int]:
    """Every offset of the header and the first payload bytes; a few further in."""
    points = list(range(1, min(len(data), header + 24)))
    points += [len(data) // 2, len(data) - 1]
    return sorted({p for p in points if 0 < p < len(data)})


async def _receive(agent: Agent, count: int) -> list[bytes]:
    got = []
    async with agent.connect() as session:
        async with asyncio.timeout(HANG):
            async for message in session.receive():
                assert isinstance(message, IncomingTrackData)
                got.append(message.data)
                if len(got) == count:
                    break
    return got


@pytest.mark.parametrize("length", list(LENGTHS))
async def test_a_frame_split_at_every_offset_arrives_whole(length: str) -> None:
    size = LENGTHS[length]
    sample = frame(BINARY, _message(size, 0))
    header = len(sample) - len(_message(size, 0))
    points = _split_points(sample, header)

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        for n, point in enumerate(points):
            data = frame(BINARY, _message(size, n))
            await peer.send(data[:point])
            await asyncio.sleep(0.002)  # a read of its own
            await peer.send(data[point:])
        await peer.serve_pings()

    async with HostileServer(handler) as server:
        agent = Agent(
            "agent", "room", "token", server.url, max_message_size=1 << 20, reconnect=False
        )
        got = await _receive(agent, len(points))
    assert [m[:4] for m in got] == [n.to_bytes(4, "big") for n in range(len(points))]
    assert all(m == _message(size, n)[-len(m) :] for n, m in enumerate(got))
    assert {len(m) for m in got} == {size - 16}


async def test_many_frames_in_one_write_and_one_byte_per_write() -> None:
    messages = [_message(size, n) for n, size in enumerate([30, 200, 70_000, 1, 126, 65_536])]
    wire = b"".join(frame(BINARY, m) for m in messages)

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(wire)  # all at once
        head = frame(BINARY, messages[1])
        for i in range(len(head)):  # then one byte at a time
            await peer.send(head[i : i + 1])
            await asyncio.sleep(0.001)
        await peer.serve_pings()

    async with HostileServer(handler) as server:
        agent = Agent("agent", "room", "token", server.url, reconnect=False)
        got = await _receive(agent, len(messages) + 1)
    expected = [*messages, messages[1]]
    assert len(got) == len(expected)
    for data, message in zip(got, expected, strict=True):
        assert message.endswith(data)


async def test_a_control_frame_between_fragments_split_at_every_offset() -> None:
    body = _message(300, 7)
    wire = (
        frame(BINARY, body[:100], fin=False)
        + frame(PING, b"mid")
        + frame(CONT, body[100:], fin=True)
    )
    points = list(range(1, len(wire), 7))

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        for point in points:
            await peer.send(wire[:point])
            await asyncio.sleep(0.002)
            await peer.send(wire[point:])
        await peer.serve_pings()

    async with HostileServer(handler) as server:
        agent = Agent("agent", "room", "token", server.url, reconnect=False)
        got = await _receive(agent, len(points))
    assert all(body.endswith(m) and len(m) == 300 - 16 for m in got)
    pongs = [f for f in server.peers[0].received if f.opcode == PONG]
    assert [p.payload for p in pongs] == [b"mid"] * len(points)


def test_the_picows_transport_runs_on_the_compiled_listener(transport: str) -> None:
    if transport != "picows":
        pytest.skip("the picows transport's listener")
    from fishjam_fast._core import connection
    from fishjam_fast._picows_listener import FrameListener
    from fishjam_fast.transport.picows import PicowsTransport

    assert issubclass(PicowsTransport, FrameListener)
    # compiled with its declarations (fishjam_fast/_picows_listener.pxd): the fields
    # are C members, not entries of an instance dict looked up per frame, and only the
    # listener changes them (readonly to Python, the subclass included)
    for field in ("_queue", "_closed", "_ws", "_socket", "_dispatcher", "options"):
        assert type(FrameListener.__dict__[field]).__name__ == "getset_descriptor"
    for field in ("_fragments", "_reading_paused", "_write_paused", "_pending_pong"):
        assert field not in FrameListener.__dict__  # C only: not reachable from Python
    # the subclass overrides only the hooks the listener declares, and its own
    overridden = set(vars(PicowsTransport)) & set(vars(FrameListener))
    assert overridden <= {"__init__", "__doc__", "__module__", "on_ended", "resume_writing"}
    # the dispatcher is the compiled session core, called in C per frame: nothing else
    # is taken (not the uncompiled Connection of its own .py either)
    assert compiled(connection).Connection.__module__ == "fishjam_fast._core.connection"
    python = uncompiled(connection).Connection(None, None, None)  # type: ignore[arg-type]
    listener = FrameListener.__new__(FrameListener)  # no connection: the field only
    with pytest.raises(TypeError):
        listener._dispatcher = python
    with pytest.raises(AttributeError):
        listener._closed = None  # type: ignore[misc]


async def test_a_receive_cancelled_while_waiting_loses_no_message() -> None:
    # the waiting reader is handed each message directly: once its task is cancelled,
    # the messages must be queued for the next reader, in order
    waited = asyncio.Event()
    messages = [_message(100, n) for n in range(3)]

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await waited.wait()
        await peer.send(*(frame(BINARY, m) for m in messages))
        await peer.serve_pings()

    async with HostileServer(handler) as server:
        agent = Agent("agent", "room", "token", server.url, reconnect=False)
        async with agent.connect() as session:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await anext(session.receive())  # nothing comes: cancelled waiting
            waited.set()
            got = []
            async with asyncio.timeout(HANG):
                async for message in session.receive():
                    assert isinstance(message, IncomingTrackData)
                    got.append(message.data)
                    if len(got) == len(messages):
                        break
    assert [m[:4] for m in got] == [n.to_bytes(4, "big") for n in range(3)]
