"""The seam between an agent session and the socket it talks over.

A session only needs four things from a transport: send one frame (waiting while the
write buffer is above its high-water mark), receive one frame, close, and say why the
connection ended. ``WebsocketsTransport`` provides them on the ``websockets`` asyncio
client; another transport (picows, say) can be added beside it without touching the
session code.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import ssl as ssl_module
import struct
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
)
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.streams import StreamReader

try:  # websockets' C helper; its pure-Python twin otherwise
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

from .errors import AgentConnectionError

if TYPE_CHECKING:
    from typing_extensions import Buffer

# Close codes of a connection that ended without an error (RFC 6455 section 7.4.1).
NORMAL_CLOSE_CODES = frozenset({1000, 1001})

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
"""Largest frame accepted from the server: captured images can be large."""

DEFAULT_MAX_QUEUE = 64
"""Frames buffered before the transport stops reading from the socket."""

DEFAULT_WRITE_LIMIT = 64 * 1024
"""Write-buffer high-water mark above which sending waits."""


SEND_MANY_BATCH_BYTES = 64 * 1024
"""Bytes of frames that ``send_many`` hands to the socket in one write."""


class TransportClosed(Exception):
    """The connection is closed; ``code`` and ``reason`` tell why, ``ok`` if normally."""

    def __init__(self, code: int, reason: str, ok: bool) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.ok = ok


class Transport(Protocol):
    """What an AgentSession needs from a connection."""

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed (1006 if it dropped)."""

    @property
    def close_reason(self) -> str:
        """The close reason once the connection is closed, else ``""``."""

    async def send(self, frame: Buffer) -> None:
        """Sends one binary frame; waits while the write buffer is full.

        Raises:
            TransportClosed: the connection is closed.
        """

    async def send_many(self, frames: Sequence[Buffer]) -> None:
        """Sends several binary frames, in order, with as few writes as it can."""

    async def recv(self) -> bytes:
        """Returns the next binary frame.

        Raises:
            TransportClosed: the connection is closed.
        """

    async def close(self) -> None:
        """Closes the connection normally (code 1000) and waits until it is closed."""


_OP_DATA = (Opcode.TEXT, Opcode.BINARY)
_OP_CONT = Opcode.CONT

# The receive fast path parses whole, unfragmented binary frames itself, but only while
# websockets' parser is idle between frames (so the bytes it skips are exactly frames it
# never started). It tells so from the parser's generator: the innermost generator it
# delegates to is StreamReader.at_eof, which Protocol.parse awaits before each frame.
# That is an internal detail of websockets (15 and 16); without it, every byte goes
# through websockets' parser as usual.
_AT_EOF_CODE = getattr(getattr(StreamReader, "at_eof", None), "__code__", None)
_PROTOCOL_MEMBERS = ("parser", "current_size", "max_message_size", "max_fragment_size")

# Frames sent go straight to the socket, framed here (header, mask, masked payload) as
# websockets' Frame.serialize does; masks come from a pool of os.urandom bytes rather
# than one getrandom(2) call per frame.
_MASK_POOL_BYTES = 4096
# header and mask
_HEADER_7 = struct.Struct("!BB4s")
_HEADER_16 = struct.Struct("!BBH4s")
_HEADER_64 = struct.Struct("!BBQ4s")


def _frame_binary(payload: Buffer, mask: bytes) -> bytes:
    """A masked, final binary frame (client to server) carrying ``payload``."""
    length = len(payload) if type(payload) is bytes else memoryview(payload).nbytes
    if length < 126:
        header = _HEADER_7.pack(0x82, 0x80 | length, mask)
    elif length < 65536:
        header = _HEADER_16.pack(0x82, 0xFE, length, mask)
    else:
        header = _HEADER_64.pack(0x82, 0xFF, length, mask)
    return header + apply_mask(payload, mask)  # type: ignore[arg-type]


class AgentClientConnection(ClientConnection):
    """A ClientConnection that queues whole messages for one reader, without the Assembler.

    websockets' Assembler hands frames to ``recv()`` through a queue of futures and
    reassembles them as messages; the agent reads one message at a time and never
    streams, so messages (bytes, text frames included, as ``recv(decode=False)`` gives
    them) go to :attr:`messages` here and one waiter future is woken. Whole binary
    frames are parsed here while websockets' parser is idle between frames (see
    ``_AT_EOF_CODE``); anything else (control frames, fragments, text, oversized or
    malformed frames, the handshake) goes through websockets' Sans-I/O protocol, which
    answers pings, performs the closing handshake and fails the connection on errors.

    Flow control is websockets' ``max_queue``: reading from the socket pauses while more
    than ``max_queue`` messages wait and resumes at a quarter of it.

    Use :meth:`next_message`, not ``recv()``: messages no longer go to the Assembler.
    """

    def __init__(self, protocol: Any, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.messages: deque[bytes] = deque()
        self.reading_paused = False
        self.lost = False
        self._waiter: asyncio.Future[None] | None = None
        high, low = self.max_queue_high, self.max_queue_low
        if high is not None and low is None:
            low = high // 4
        elif high is None and low is not None:
            high = 4 * low
        self._high, self._low = high, low
        self._fragments: list[bytes] | None = None
        # websockets' parser was seen idle between frames and has not been fed since
        self._parser_was_idle = False
        # a partial binary frame held back from websockets' parser, and its full size
        self._pending: bytearray | None = None
        self._pending_size = 0
        self._fast_parse = (
            _AT_EOF_CODE is not None
            and not self.debug  # websockets logs every frame when debugging
            and all(hasattr(protocol, name) for name in _PROTOCOL_MEMBERS)
            and inspect.isgenerator(protocol.parser)
        )
        limits = [
            limit
            for limit in (
                getattr(protocol, "max_message_size", None),
                getattr(protocol, "max_fragment_size", None),
            )
            if limit is not None
        ]
        self._max_frame = min(limits) if limits else 1 << 63

    # -- reading ---------------------------------------------------------------------

    async def next_message(self) -> bytes:
        """Returns the next message.

        Raises:
            ConnectionClosed: the connection is closed and every message was read.
            ConcurrencyError: another coroutine is already waiting for a message.
        """
        messages = self.messages
        while not messages:
            if self.lost:
                # as Connection.recv: wait for the state to be CLOSED, then its reason
                await asyncio.shield(self.connection_lost_waiter)
                raise self.protocol.close_exc from self.recv_exc
            if self._waiter is not None:
                raise ConcurrencyError("another coroutine is already reading messages")
            waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        message = messages.popleft()
        if self.reading_paused and len(messages) <= self._low:  # type: ignore[operator]
            self.reading_paused = False
            self.transport.resume_reading()
        return message

    def _queued(self) -> None:
        """Wakes the reader and pauses reading above the high-water mark."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        high = self._high
        if high is not None and not self.reading_paused and len(self.messages) > high:
            self.reading_paused = True
            self.transport.pause_reading()

    def process_event(self, event: Any) -> None:
        """Queues data frames (reassembled) instead of handing them to the Assembler."""
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake response
            return
        opcode = event.opcode
        if opcode in _OP_DATA:
            if event.fin:
                self.messages.append(bytes(event.data))
                self._queued()
            else:
                self._fragments = [bytes(event.data)]
        elif opcode is _OP_CONT:
            fragments = self._fragments
            assert fragments is not None  # the protocol checked the sequence
            fragments.append(bytes(event.data))
            if event.fin:
                self._fragments = None
                self.messages.append(b"".join(fragments))
                self._queued()
        else:
            super().process_event(event)  # pongs acknowledge pings

    def _parser_idle(self) -> bool:
        """True if websockets' parser waits for the first byte of a frame, in OPEN state.

        Remembered in ``_parser_was_idle`` until the parser is fed again.
        """
        protocol: WebSocketProtocol = self.protocol
        if not self._fast_parse or protocol.state is not OPEN or protocol.current_size is not None:
            return False
        generator: Any = protocol.parser
        while (inner := generator.gi_yieldfrom) is not None:
            generator = inner
        self._parser_was_idle = generator.gi_code is _AT_EOF_CODE
        return self._parser_was_idle

    def data_received(self, data: bytes) -> None:
        pending = self._pending
        if pending is not None:
            pending += data
            if len(pending) < self._pending_size:
                return
            self._pending = None
            data = bytes(pending)
            # websockets' parser has not seen these bytes: it is still between frames
            if self.protocol.state is not OPEN:
                self._parser_was_idle = False
                super().data_received(data)
                return
        elif (
            not (self._parser_was_idle and self.protocol.state is OPEN) and not self._parser_idle()
        ):
            self._parser_was_idle = False
            super().data_received(data)
            return
        messages = self.messages
        queued = len(messages)
        max_frame = self._max_frame
        end = len(data)
        pos = 0
        while pos < end:
            # FIN, no RSV bits, binary; then an unmasked length
            if data[pos] != 0x82:
                break
            if end - pos < 2:
                self._hold(data, pos, pos + 2)
                pos = end
                break
            length = data[pos + 1]
            if length < 126:
                start = pos + 2
            elif length == 126:
                start = pos + 4
                if start > end:
                    self._hold(data, pos, start)
                    pos = end
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
            elif length == 127:
                start = pos + 10
                if start > end:
                    self._hold(data, pos, start)
                    pos = end
                    break
                length = int.from_bytes(data[pos + 2 : start], "big")
            else:  # masked: websockets fails the connection
                break
            if length > max_frame:  # websockets fails it with 1009
                break
            stop = start + length
            if stop > end:
                self._hold(data, pos, stop)
                pos = end
                break
            messages.append(data[start:stop])
            pos = stop
        if len(messages) != queued:
            self._queued()
        if pos < end:
            self._parser_was_idle = False
            super().data_received(data[pos:] if pos else data)

    def _hold(self, data: bytes, start: int, size: int) -> None:
        """Keeps ``data[start:]``, the first bytes of a frame of ``size - start`` bytes."""
        self._pending = bytearray(data[start:] if start else data)
        self._pending_size = size - start

    def _flush_pending(self) -> None:
        # hand a partial frame to websockets' parser so it reports the truncation itself
        pending, self._pending = self._pending, None
        if pending is not None and not self.protocol.reader.eof:
            self._parser_was_idle = False
            self.protocol.receive_data(bytes(pending))

    def eof_received(self) -> None:
        self._flush_pending()
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._flush_pending()
        super().connection_lost(exc)
        self.lost = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def websocket_url(fishjam_url: str) -> str:
    """Returns the agent socket URL for a Fishjam URL, keeping any path prefix.

    ``http://`` becomes ``ws://`` and ``https://`` becomes ``wss://``; only the scheme is
    rewritten (the plain SDK replaces every ``http`` in the URL).
    """
    base = fishjam_url.rstrip("/")
    scheme, sep, rest = base.partition("://")
    if not sep:
        raise ValueError(
            f"fishjam_url must start with http://, https://, ws:// or wss://: {fishjam_url!r}"
        )
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if scheme.lower() not in schemes:
        raise ValueError(f"unsupported fishjam_url scheme {scheme!r}: use http, https, ws or wss")
    return f"{schemes[scheme.lower()]}://{rest}/socket/agent/websocket"


class WebsocketsTransport:
    """A Transport on the ``websockets`` asyncio client, opened without compression."""

    __slots__ = ("_fast_send", "_mask_pool", "_mask_pos", "_protocol", "_ws")

    def __init__(self, ws: AgentClientConnection) -> None:
        self._ws = ws
        self._protocol = ws.protocol
        # The fast path of send() writes frames framed here straight to the transport,
        # as Connection.send does through the Sans-I/O protocol minus its async context
        # manager, Frame objects and one getrandom(2) per mask. It needs these members
        # of websockets (internal: ``writes``, ``expect_continuation_frame``), and no
        # debug logging of frames; without them, websockets' own send().
        self._fast_send = (
            all(hasattr(ws, name) for name in ("drain", "paused", "send_in_progress"))
            and all(hasattr(ws.protocol, name) for name in ("writes", "expect_continuation_frame"))
            and not ws.debug
        )
        self._mask_pool = b""
        self._mask_pos = _MASK_POOL_BYTES  # the first mask fills the pool

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        open_timeout: float | None = 10.0,
    ) -> WebsocketsTransport:
        """Opens the WebSocket.

        Raises:
            AgentConnectionError: the server could not be reached or refused the upgrade.
        """
        secure = url.startswith("wss://")
        if ssl is not None and not secure:
            raise ValueError("an ssl context was given for a ws:// (plain) URL")
        try:
            ws = await connect(
                url,
                # PCM does not compress: deflate would only burn CPU on both ends
                compression=None,
                ssl=ssl if ssl is not None else secure or None,
                max_size=max_message_size,
                max_queue=max_queue,
                write_limit=write_limit,
                open_timeout=open_timeout,
                create_connection=AgentClientConnection,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise AgentConnectionError(f"cannot connect to {url}: {exc}", 1006, "") from exc
        assert isinstance(ws, AgentClientConnection)
        return cls(ws)

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    @property
    def close_reason(self) -> str:
        return self._ws.close_reason or ""

    def _closed(self, exc: ConnectionClosed) -> TransportClosed:
        code = self._ws.close_code
        if code is None:
            code = 1006
        return TransportClosed(
            code, self._ws.close_reason or "", isinstance(exc, ConnectionClosedOK)
        )

    def _can_write(self) -> bool:
        """True if a frame may go straight to the socket (see ``_fast_send``)."""
        ws, protocol = self._ws, self._protocol
        return (
            self._fast_send
            and ws.send_in_progress is None
            and not protocol.writes
            and protocol.state is OPEN
            and not protocol.expect_continuation_frame
        )

    def _mask(self) -> bytes:
        pos = self._mask_pos
        if pos >= _MASK_POOL_BYTES:
            self._mask_pool = os.urandom(_MASK_POOL_BYTES)
            pos = 0
        self._mask_pos = pos + 4
        return self._mask_pool[pos : pos + 4]

    async def send(self, frame: Buffer) -> None:
        ws, protocol = self._ws, self._protocol
        # _can_write() inlined: this runs for every chunk sent
        if (
            self._fast_send
            and ws.send_in_progress is None
            and not protocol.writes
            and protocol.state is OPEN
            and not protocol.expect_continuation_frame
        ):
            transport = ws.transport
            transport.write(_frame_binary(frame, self._mask()))
            if ws.paused or transport.is_closing():
                await self._drain()
            return
        try:
            await ws.send(frame, text=False)  # type: ignore[arg-type]
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def _drain(self) -> None:
        ws = self._ws
        try:
            await ws.drain()
        except Exception:
            # the connection was lost while the write buffer was full
            code = ws.close_code or 1006
            raise TransportClosed(code, ws.close_reason or "", False) from None

    async def send_many(self, frames: Sequence[Buffer]) -> None:
        # frames are masked (copied) before anything yields, so they may be views of
        # one buffer the caller reuses afterwards
        ws = self._ws
        index, count = 0, len(frames)
        while index < count:
            if not self._can_write():
                for frame in frames[index:]:
                    await self.send(frame)  # the slow path raises TransportClosed
                return
            # a batch of frames up to the high-water mark goes out in one writelines
            # (one writev on uvloop), then flow control as for single frames
            batch = 0
            data = []
            while index < count and batch < SEND_MANY_BATCH_BYTES:
                framed = _frame_binary(frames[index], self._mask())
                data.append(framed)
                batch += len(framed)
                index += 1
            transport = ws.transport
            transport.writelines(data)
            if ws.paused or transport.is_closing():
                await self._drain()

    async def recv(self) -> bytes:
        ws = self._ws
        messages = ws.messages
        if messages and not ws.reading_paused:
            return messages.popleft()
        try:
            return await ws.next_message()
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def close(self) -> None:
        await self._ws.close()
