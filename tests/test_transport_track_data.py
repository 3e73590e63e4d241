"""Transport.write_track_data: one agent ``track_data`` message written now.

On picows with the native TrackDataEncoder the message is encoded into a buffer the
connection reuses and framed there (one copy of the audio); these tests check, over a
real loopback socket to a server written here, that what the server reads is byte for
byte what ``encode_track_data`` and google.protobuf write, on both transports and both
loops, including while the socket's buffer is full (picows hands the event loop what
the socket did not take: a reused buffer still referenced would corrupt the audio).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from fishjam_fast import _codec_py
from fishjam_fast._ext import TrackDataEncoder, encode_track_data
from fishjam_fast._proto.agent_pb2 import AgentRequest as PbRequest
from fishjam_fast.transport.base import Transport, TransportClosed, TransportOptions
from fishjam_fast.transport.choose import transport_factory
from tests.conftest import ALL_TRANSPORTS
from tests.hostile import BINARY, HostileServer, Peer

pytestmark = ALL_TRANSPORTS

# max_message_size below the largest payload: the reused buffer is dropped, then grown
_OPTIONS = TransportOptions(proxy=None, ping_interval=None, max_message_size=65_536)


def _protobuf(track_id: str, data: bytes) -> bytes:
    message = PbRequest()
    message.track_data.track_id = track_id
    message.track_data.data = data
    return message.SerializeToString()


@asynccontextmanager
async def _connected(
    transport: str, handler: Callable[[Peer], Any], options: TransportOptions = _OPTIONS
) -> AsyncIterator[tuple[Transport, HostileServer]]:
    async with HostileServer(handler) as server:
        url = server.url.replace("http://", "ws://") + "/socket/agent/websocket"
        connection = await transport_factory(transport)(url, options)
        try:
            yield connection, server
        finally:
            connection.abort()


def _payloads() -> list[Any]:
    """Sizes across the WebSocket header's three lengths (and the protobuf varint's),
    in every buffer kind a track takes."""
    rng = np.random.default_rng(7)
    sizes = [0, 1, 100, 117, 118, 119, 125, 126, 127, 640, 65_520, 65_535, 65_536, 70_000]
    out: list[Any] = [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for size in sizes]
    out.append(bytearray(b"\x01\x02" * 480))
    out.append(memoryview(b"0123456789" * 64)[3:503])
    out.append(rng.integers(-32768, 32767, 960, dtype=np.int16))  # a NumPy chunk
    out.append(rng.integers(-32768, 32767, (960, 2), dtype=np.int16)[:, 0])  # strided
    return out


@pytest.mark.parametrize("encoder_kind", ["native", "python"])
async def test_each_message_is_what_the_codec_and_protobuf_write(
    transport: str, encoder_kind: str
) -> None:
    payloads = _payloads()
    got: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        frames = [await peer.read_frame() for _ in payloads]
        assert all(frame.opcode == BINARY and frame.fin for frame in frames)
        got.set_result([frame.payload for frame in frames])
        await peer.serve_pings()

    track_id = "track-ü-1"
    encoder = (
        TrackDataEncoder(track_id)
        if encoder_kind == "native"
        else _codec_py.TrackDataEncoder(track_id)
    )
    async with _connected(transport, handler) as (connection, _):
        sizes = [connection.write_track_data(encoder, data) for data in payloads]
        async with asyncio.timeout(10):
            received = await got
    for data, size, message in zip(payloads, sizes, received, strict=True):
        raw = np.ascontiguousarray(data).tobytes() if isinstance(data, np.ndarray) else bytes(data)
        assert message == encode_track_data(track_id, data) == _protobuf(track_id, raw)
        assert size == len(message)


async def test_a_full_socket_buffer_corrupts_no_message(transport: str) -> None:
    # the server reads nothing until the client's writes back up past the socket's
    # buffers into the event loop's (writing pauses); every message written meanwhile
    # reuses picows' buffer, so any reference the loop kept to it would show here
    size = 48 * 1024
    after_pause = 64
    release = asyncio.Event()
    got: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
    count = 0

    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await release.wait()
        got.set_result([(await peer.read_frame()).payload for _ in range(count)])
        await peer.serve_pings()

    encoder = TrackDataEncoder("t")

    def chunk(index: int) -> bytes:
        # each message different throughout: its index in every 4 bytes
        return index.to_bytes(4, "little") * (size // 4)

    options = TransportOptions(proxy=None, ping_interval=None, write_limit=16 * 1024)
    async with _connected(transport, handler, options) as (connection, _):
        # bounded: loopback buffers take a few MiB at most, 4000 chunks are 190 MiB
        while not connection.writing_paused and count < 4000:
            connection.write_track_data(encoder, chunk(count))
            count += 1
            if count % 64 == 0:
                await asyncio.sleep(0)  # let the loop try to write what it holds
        assert connection.writing_paused, f"the socket never filled ({count} chunks)"
        for _ in range(after_pause):
            connection.write_track_data(encoder, chunk(count))
            count += 1
        release.set()
        async with asyncio.timeout(30):
            received = await got
            await connection.drain()
    for index, message in enumerate(received):
        assert message == encode_track_data("t", chunk(index)), f"message {index} differs"


async def test_a_closed_connection_writes_nothing_and_says_why(transport: str) -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await peer.serve_pings()

    async with _connected(transport, handler) as (connection, server):
        await connection.close()
        with pytest.raises(TransportClosed) as caught:
            connection.write_track_data(TrackDataEncoder("t"), b"late")
        assert caught.value.code == 1000 and caught.value.by_client
        peer = server.peers[0]
    assert not [frame for frame in peer.received if frame.opcode == BINARY]


async def test_a_payload_that_is_not_a_buffer_is_refused(transport: str) -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await peer.serve_pings()

    async with _connected(transport, handler) as (connection, _):
        with pytest.raises(TypeError, match="bytes-like"):
            connection.write_track_data(TrackDataEncoder("t"), "not audio")  # type: ignore[arg-type]
        # the connection is still usable: the next message goes out
        assert connection.write_track_data(TrackDataEncoder("t"), b"ok") == len(
            encode_track_data("t", b"ok")
        )
