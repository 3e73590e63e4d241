"""The seam between an agent session and the socket it talks over.

A session only needs four things from a transport: send one frame (waiting while the
write buffer is above its high-water mark), receive one frame, close, and say why the
connection ended. ``WebsocketsTransport`` provides them on the ``websockets`` asyncio
client; another transport (picows, say) can be added beside it without touching the
session code.
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake
from websockets.protocol import OPEN

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

    __slots__ = ("_fast_send", "_protocol", "_ws")

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._protocol = ws.protocol
        # The fast path of send() drives websockets' Sans-I/O protocol directly, as
        # Connection.send does minus its async context manager (a third of the cost of
        # sending a 20 ms chunk). It needs these members; without them, plain send().
        self._fast_send = all(
            hasattr(ws, name) for name in ("send_data", "drain", "paused", "send_in_progress")
        )

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
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise AgentConnectionError(f"cannot connect to {url}: {exc}", 1006, "") from exc
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

    async def send(self, frame: Buffer) -> None:
        ws = self._ws
        if self._fast_send and self._protocol.state is OPEN and ws.send_in_progress is None:
            self._protocol.send_binary(frame)  # type: ignore[arg-type]
            ws.send_data()
            await self._drain_if_full()
            return
        try:
            await ws.send(frame, text=False)  # type: ignore[arg-type]
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def _drain_if_full(self) -> None:
        ws = self._ws
        if ws.paused or ws.transport.is_closing():
            try:
                await ws.drain()
            except Exception:
                # the connection was lost while the write buffer was full
                code = ws.close_code or 1006
                raise TransportClosed(code, ws.close_reason or "", False) from None

    async def send_many(self, frames: Sequence[Buffer]) -> None:
        # websockets frames (and masks, copying) each message before anything yields,
        # so the frames may be views of one buffer the caller reuses afterwards.
        ws, protocol = self._ws, self._protocol
        index, count = 0, len(frames)
        while index < count:
            if not (self._fast_send and protocol.state is OPEN and ws.send_in_progress is None):
                for frame in frames[index:]:
                    await self.send(frame)  # the slow path raises TransportClosed
                return
            # a batch of frames up to the high-water mark goes out in one writelines
            # (one writev on uvloop), then flow control as for single frames
            batch = 0
            while index < count and batch < SEND_MANY_BATCH_BYTES:
                frame = frames[index]
                protocol.send_binary(frame)  # type: ignore[arg-type]
                batch += memoryview(frame).nbytes
                index += 1
            data = protocol.data_to_send()
            if all(data):
                ws.transport.writelines(data)
            else:  # an end-of-stream marker among them: let websockets handle it
                for chunk in data:
                    if chunk:
                        ws.transport.write(chunk)
                    elif ws.transport.can_write_eof():
                        ws.transport.write_eof()
            await self._drain_if_full()

    async def recv(self) -> bytes:
        try:
            frame = await self._ws.recv(decode=False)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        return frame

    async def close(self) -> None:
        await self._ws.close()
