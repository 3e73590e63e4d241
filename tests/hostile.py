"""A hostile Fishjam written by hand: raw asyncio, the WebSocket handshake and every frame
built byte by byte (RFC 6455), so a test can send exactly the bytes it means to.

A test gives :class:`HostileServer` a handler coroutine that receives a :class:`Peer`
(one accepted connection) and plays the server's part; the handler and the server stop
when the test leaves ``async with``. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.wire import field_len

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1 = 0x40

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HANDLER_LIMIT = 30.0
"""Seconds a handler may run: nothing here is unbounded."""

AUTHENTICATED = field_len(1, b"")
"""AgentResponse{authenticated{}}."""


def track_data(data: bytes, peer_id: str = "p", track_id: str = "t") -> bytes:
    """AgentResponse{track_data{peer_id, track{id}, data}}."""
    track = field_len(1, track_id.encode())
    return field_len(2, field_len(1, peer_id.encode()) + field_len(2, track) + field_len(3, data))


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A server-to-client (unmasked) frame, with the shortest length encoding."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def fragments(payload: bytes, size: int) -> list[bytes]:
    """``payload`` as one binary message in frames of ``size`` bytes (the last shorter)."""
    parts = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    out = []
    for index, part in enumerate(parts):
        opcode = BINARY if index == 0 else CONT
        out.append(frame(opcode, part, fin=index == len(parts) - 1))
    return out


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int:
        return int.from_bytes(self.payload[:2], "big") if len(self.payload) >= 2 else 1005

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class Peer:
    """One connection accepted by the hostile server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[Frame] = []

    async def handshake(self) -> None:
        """Reads the upgrade request and accepts it (101)."""
        request = await self.reader.readuntil(b"\r\n\r\n")
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self.writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await self.writer.drain()

    async def read_frame(self) -> Frame:
        """The next frame from the client, unmasked (it records every frame read)."""
        head = await self.reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        mask = await self.reader.readexactly(4) if head[1] & 0x80 else b""
        payload = await self.reader.readexactly(length)
        if mask:
            payload = _unmask(payload, mask)
        got = Frame(bool(head[0] & 0x80), head[0] & 0x0F, payload)
        self.received.append(got)
        return got

    async def read_until(self, opcode: int, *, answer_pings: bool = True) -> Frame:
        """Reads frames until one with ``opcode`` (pings answered unless told not to)."""
        while True:
            got = await self.read_frame()
            if got.opcode == opcode:
                return got
            if got.opcode == PING and answer_pings:
                await self.send(frame(PONG, got.payload))

    async def authenticate(self) -> Frame:
        """Handshake, the client's auth request, then ``authenticated``."""
        await self.handshake()
        auth = await self.read_until(BINARY)
        await self.send(frame(BINARY, AUTHENTICATED))
        return auth

    async def send(self, *data: bytes) -> None:
        for chunk in data:
            self.writer.write(chunk)
        await self.writer.drain()

    async def serve_pings(self) -> None:
        """Reads frames and answers pings until the client closes (answers its close)."""
        try:
            got = await self.read_until(CLOSE)
            await self.send(frame(CLOSE, got.payload[:2]))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def close_received(self) -> Frame | None:
        return next((f for f in self.received if f.opcode == CLOSE), None)


Handler = Callable[[Peer], Awaitable[Any]]


class HostileServer:
    """``async with HostileServer(handler) as server``: ``server.url`` for an Agent."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.peers: list[Peer] = []
        self.peer_done: asyncio.Future[Peer] | None = None
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        self.peers.append(peer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with asyncio.timeout(HANDLER_LIMIT):
                await self._handler(peer)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            if self.peer_done is not None and not self.peer_done.done():
                self.peer_done.set_result(peer)
            writer.close()

    async def __aenter__(self) -> HostileServer:
        self.peer_done = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        for peer in self.peers:
            peer.writer.transport.abort()
