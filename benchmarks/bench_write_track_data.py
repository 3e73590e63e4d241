"""One chunk written on the picows transport: ``write_track_data`` (encoded into the
connection's reused buffer and framed there: one copy) against ``write(encode(...))``
(a new bytes, then picows' masking copy into its write buffer: two), same run.

The server is a thread reading and discarding on a blocking socket (127.0.0.1), so the
socket's buffer stays empty and each write is picows' direct ``send(2)``, the path an
agent that keeps up takes. Run:

    pytest benchmarks/bench_write_track_data.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fishjam_fast._picows_listener")

from fishjam_fast._ext import TrackDataEncoder
from fishjam_fast.transport.base import TransportOptions
from fishjam_fast.transport.picows import PicowsTransport, open_picows

TRACK_ID = "0f4e1c2b9a8d4c3e8f7a6b5c4d3e2f1a"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SIZES = {"640 B": 640, "7680 B": 7680}  # 20 ms at 16 kHz; 80 ms at 48 kHz
CHUNKS_PER_CALL = 100


def _serve(listener: socket.socket) -> None:
    """Accepts one connection, answers the upgrade, then reads and discards to EOF."""
    conn, _ = listener.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = next(
            line.partition(b":")[2].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        while conn.recv(1 << 20):
            pass


@pytest.fixture(scope="module")
def connection() -> Iterator[tuple[asyncio.AbstractEventLoop, PicowsTransport]]:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_serve, args=(listener,), daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    loop = asyncio.new_event_loop()
    options = TransportOptions(proxy=None, ping_interval=None)
    transport = loop.run_until_complete(
        open_picows(f"ws://127.0.0.1:{port}/socket/agent/websocket", options)
    )
    yield loop, transport
    transport.abort()
    loop.run_until_complete(asyncio.sleep(0.05))
    loop.close()
    thread.join(5)
    listener.close()


def _run(benchmark: Any, transport: PicowsTransport, function: Any) -> None:
    benchmark.pedantic(function, iterations=20, rounds=60, warmup_rounds=3)
    # 0 when every write was picows' direct send(2); more: the reader fell behind and
    # some writes were buffered by the loop (a copy more, on both sides alike)
    benchmark.extra_info["loop_buffered_bytes"] = transport._socket.get_write_buffer_size()


@pytest.mark.parametrize("size", list(SIZES))
def test_write_track_data_one_copy(benchmark: Any, connection: Any, size: str) -> None:
    benchmark.group = f"write one chunk of {size} ({CHUNKS_PER_CALL} per call)"
    _, transport = connection
    encoder = TrackDataEncoder(TRACK_ID)
    payload = os.urandom(SIZES[size])
    write = transport.write_track_data

    def run() -> None:
        for _ in range(CHUNKS_PER_CALL):
            write(encoder, payload)

    _run(benchmark, transport, run)


@pytest.mark.parametrize("size", list(SIZES))
def test_write_encoded_two_copies(benchmark: Any, connection: Any, size: str) -> None:
    benchmark.group = f"write one chunk of {size} ({CHUNKS_PER_CALL} per call)"
    _, transport = connection
    encode = TrackDataEncoder(TRACK_ID).encode
    payload = os.urandom(SIZES[size])
    write = transport.write

    def run() -> None:
        for _ in range(CHUNKS_PER_CALL):
            write(encode(payload))

    _run(benchmark, transport, run)
