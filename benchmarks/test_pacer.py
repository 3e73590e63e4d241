"""The real-time benchmark's pacer (benchmarks/pacer.py), over loopback with a raw client.

The client here builds its frames byte by byte (RFC 6455) and its messages with
google.protobuf, so the pacer's framing, its answers and its counting are checked
against neither its own code nor fishjam_fast's codec.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Iterator

import pytest

from benchmarks.pacer import SLOTS, Pacer
from fishjam_fast._proto import agent_pb2, notifications_pb2

DEADLINE = 20.0  # "did not hang" bound for every wait, seconds


def request(**content: object) -> bytes:
    """A serialized ``AgentRequest`` with one oneof member set (google.protobuf)."""
    return agent_pb2.AgentRequest(**content).SerializeToString()


@pytest.fixture(scope="module")
def pacer() -> Iterator[Pacer]:
    with Pacer(lifetime=300, timeout=DEADLINE) as running:
        yield running


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame: FIN + opcode, the mask bit and length, the key, masked payload."""
    size = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    """A WebSocket client written with asyncio streams, nothing else."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET /socket/agent/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert head.startswith(b"HTTP/1.1 101 ")
        guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        accept = base64.b64encode(hashlib.sha1(key + guid).digest())
        assert b"\r\nSec-WebSocket-Accept: " + accept + b"\r\n" in head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        """The next server frame: (first header byte, payload); server frames are unmasked."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), DEADLINE)
        assert not b1 & 0x80, "a server frame was masked"
        size = b1 & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0, await asyncio.wait_for(self.reader.readexactly(size), DEADLINE)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def authenticate(client: RawClient) -> None:
    await client.send(masked_frame(0x2, request(auth_request={"token": "t"})))
    b0, payload = await client.frame()
    assert b0 == 0x82
    assert agent_pb2.AgentResponse.FromString(payload).WhichOneof("content") == "authenticated"


def conn_counts(pacer: Pacer, index: int) -> list[int]:
    """due, sent, echoes, late, blocked of one connection."""
    due, sent, echoes, late, blocked, _open, _slot = pacer.snapshot()["conns"][index]
    return [due, sent, echoes, late, blocked]


async def test_chunks_arrive_valid_and_echoes_are_counted(pacer: Pacer) -> None:
    before = len(pacer.snapshot()["conns"])
    client = await RawClient.connect(pacer.port)
    await authenticate(client)
    add_track = {"track": {"id": "t1", "type": notifications_pb2.TRACK_TYPE_AUDIO}}
    await client.send(masked_frame(0x2, request(add_track=add_track)))
    frames = [await client.frame() for _ in range(6)]
    assert len({payload for _, payload in frames}) == 1, "every chunk is the prebuilt frame"
    b0, payload = frames[0]
    assert b0 == 0x82
    message = agent_pb2.AgentResponse.FromString(payload)
    assert message.WhichOneof("content") == "track_data"
    assert len(message.track_data.data) == 640
    assert message.track_data.track.type == notifications_pb2.TRACK_TYPE_AUDIO
    assert message.SerializeToString() == payload  # canonical protobuf bytes
    echoes = [
        masked_frame(0x2, request(track_data={"track_id": "t1", "data": message.track_data.data}))
        for _ in frames
    ]
    # split at every awkward place: inside the header, the key, the tag, the payload
    stream = b"".join(echoes)
    for cut in (1, 3, 5, 7, 9, 200, len(echoes[0]) + 1):
        await client.send(stream[:cut])
        await asyncio.sleep(0.01)
        stream = stream[cut:]
    await client.send(stream)
    deadline = time.monotonic() + DEADLINE
    while conn_counts(pacer, before)[2] < len(echoes) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    due, sent, echoed, late, blocked = conn_counts(pacer, before)
    assert echoed == len(echoes)
    assert sent >= len(frames)
    assert due == sent + late + blocked
    await client.close()


async def test_ping_gets_pong_and_close_is_echoed(pacer: Pacer) -> None:
    client = await RawClient.connect(pacer.port)
    await authenticate(client)
    await client.send(masked_frame(0x9, b"are you there"))
    while True:  # chunks may come first
        b0, payload = await client.frame()
        if b0 != 0x82:
            break
    assert (b0, payload) == (0x8A, b"are you there")
    await client.send(masked_frame(0x8, (1000).to_bytes(2, "big") + b"bye"))
    while True:
        b0, payload = await client.frame()
        if b0 != 0x82:
            break
    assert (b0, payload) == (0x88, (1000).to_bytes(2, "big"))
    assert await asyncio.wait_for(client.reader.read(), DEADLINE) == b""
    await client.close()


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (masked_frame(0x2, request(add_track={"track": {"id": "x"}})), 1000, b"unauthenticated"),
        (bytes([0x82, 2]) + b"\x0a\x00", 1002, b"frames must be masked"),
        (masked_frame(0x1, b"hello"), 1003, b"opcode 1"),
        (masked_frame(0x2, b"\x0a\x00", fin=False), 1002, b"frames must be masked"),
    ],
    ids=["not-auth-first", "unmasked", "text", "fragment"],
)
async def test_bad_frames_close_with_a_reason(
    pacer: Pacer, frame: bytes, code: int, reason: bytes
) -> None:
    client = await RawClient.connect(pacer.port)
    await client.send(frame)
    b0, payload = await client.frame()
    assert b0 == 0x88
    assert int.from_bytes(payload[:2], "big") == code
    assert payload[2:].startswith(reason)
    assert await asyncio.wait_for(client.reader.read(), DEADLINE) == b""
    await client.close()


async def test_plain_http_is_refused(pacer: Pacer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pacer.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), DEADLINE)
    assert answer.startswith(b"HTTP/1.1 400 ")
    writer.close()


async def test_connections_spread_over_the_period() -> None:
    with Pacer(lifetime=300, timeout=DEADLINE) as fresh:
        clients = [await RawClient.connect(fresh.port) for _ in range(SLOTS + 1)]
        for client in clients:
            await authenticate(client)
        slots = [slot for *_, is_open, slot in fresh.snapshot()["conns"] if is_open]
        # one connection per slot, in order; the one over shares the first slot
        assert slots == [*range(SLOTS), 0]
        for client in clients:
            await client.close()


async def test_hold_streams_only_after_start() -> None:
    with Pacer(lifetime=300, hold=True, timeout=DEADLINE) as held:
        client = await RawClient.connect(held.port)
        await authenticate(client)
        (row,) = held.snapshot()["conns"]
        assert row[0] == row[1] == 0 and row[-1] == -1  # nothing due, in no slot
        held.start()
        b0, payload = await client.frame()
        assert b0 == 0x82
        assert agent_pb2.AgentResponse.FromString(payload).WhichOneof("content") == "track_data"
        (row,) = held.snapshot()["conns"]
        assert row[1] >= 1 and row[-1] == 0
        await client.close()
