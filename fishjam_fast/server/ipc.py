"""The supervisor-worker channel: length-prefixed JSON messages over a stream socket.

Each message is a 4-byte big-endian length, then that many bytes of UTF-8 JSON (an
object with a ``"t"`` member naming its type). A length above the bound or a body that
is not a JSON object ends the channel with :class:`ChannelError`: the peer is broken,
and the process supervising it treats it as dead.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

__all__ = ["Channel", "ChannelClosed", "ChannelError"]

_HEADER = struct.Struct(">I")


class ChannelError(Exception):
    """The other end sent something that is not a channel message."""


class ChannelClosed(ChannelError):
    """The other end closed the channel (or its process died)."""


class Channel:
    """One end of the channel, on the running event loop."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_size: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max_size = max_size

    @classmethod
    async def open(cls, sock: socket.socket, max_size: int) -> Channel:
        """Wraps a connected stream socket (one end of a ``socket.socketpair()``)."""
        reader, writer = await asyncio.open_connection(sock=sock, limit=max_size + _HEADER.size)
        return cls(reader, writer, max_size)

    def send(self, message: dict[str, Any]) -> None:
        """Queues one message; :meth:`drain` waits until the socket took it.

        Raises:
            ChannelError: The message is larger than the bound.
            ChannelClosed: The channel is closed.
        """
        body = json.dumps(message, separators=(",", ":")).encode()
        if len(body) > self._max_size:
            raise ChannelError(f"message of {len(body)} bytes exceeds {self._max_size}")
        if self._writer.is_closing():
            raise ChannelClosed("the channel is closed")
        self._writer.write(_HEADER.pack(len(body)) + body)

    async def drain(self, timeout: float) -> None:
        """Waits until the queued messages are written, at most ``timeout`` seconds.

        Raises:
            TimeoutError: The other end did not read them in time.
            ChannelClosed: The connection broke.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except (ConnectionError, BrokenPipeError) as exc:
            raise ChannelClosed(str(exc)) from None

    async def receive(self) -> dict[str, Any]:
        """The next message (waits for it: the caller sets the deadline).

        Raises:
            ChannelClosed: The other end closed the channel.
            ChannelError: The other end sent an oversized or malformed message.
        """
        try:
            header = await self._reader.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            if size > self._max_size:
                raise ChannelError(f"message of {size} bytes exceeds {self._max_size}")
            body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed(f"the channel closed: {exc}") from None
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise ChannelError(f"malformed message: {exc}") from None
        if not isinstance(message, dict) or not isinstance(message.get("t"), str):
            raise ChannelError(f"malformed message: {body[:100]!r}")
        return message

    def close(self) -> None:
        """Closes this end."""
        self._writer.close()
