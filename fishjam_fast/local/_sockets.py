"""What the local server's two client sockets share (the peer and the notification one).

Both speak one binary protobuf message per frame and close the way the real Fishjam
does on a bad frame: 1003 ``unsupported data`` for text, 1011 ``invalid message`` for a
frame that does not decode, 1000 ``unauthenticated`` when nothing arrives within the
authentication deadline. Both keep the sockets they serve so that a test can drop them
all (no close frame) or close them all (with one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from google.protobuf.message import DecodeError  # type: ignore[import-untyped,unused-ignore]


async def receive_message(
    ws: web.WebSocketResponse, parse: Callable[[bytes], Any], timeout: float | None = None
) -> Any | None:
    """The next message on ``ws``, parsed; or None once the socket is closed or closing.

    Args:
        ws: The socket.
        parse: The message class's ``FromString``.
        timeout: Seconds to wait (None: no deadline); past it the socket is closed 1000
            ``unauthenticated`` (the deadline is the authentication's).

    Returns:
        The message, or None: the client closed, or the frame was refused (and the socket
        closed with the reason above).
    """
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        await ws.close(code=1000, message=b"unauthenticated")
        return None
    if msg.type is WSMsgType.TEXT:
        await ws.close(code=1003, message=b"unsupported data")
        return None
    if msg.type is not WSMsgType.BINARY:
        return None
    try:
        return parse(msg.data)
    except DecodeError:
        await ws.close(code=1011, message=b"invalid message")
        return None


class OpenSockets:
    """The sockets a route serves now, each by the task handling it."""

    def __init__(self) -> None:
        # handler task -> (socket, TCP transport for drops)
        self._open: dict[
            asyncio.Task[object], tuple[web.WebSocketResponse, asyncio.Transport | None]
        ] = {}

    def __len__(self) -> int:
        return len(self._open)

    async def accept(self, request: web.Request, heartbeat: float | None) -> web.WebSocketResponse:
        """Upgrade ``request`` and keep the socket until :meth:`forget`.

        Args:
            request: The upgrade request.
            heartbeat: Ping interval in seconds (None: off).

        Returns:
            The prepared socket.
        """
        ws = web.WebSocketResponse(heartbeat=heartbeat, compress=False)
        await ws.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            self._open[task] = (ws, request.transport)
        return ws

    def forget(self) -> None:
        """Called by the handler's ``finally``: its socket is no longer served."""
        task = asyncio.current_task()
        if task is not None:
            self._open.pop(task, None)

    def drop_all(self) -> int:
        """Drop every socket without a close frame (clients see 1006).

        Returns:
            How many were dropped.
        """
        sockets = list(self._open.values())
        for _, transport in sockets:
            if transport is not None:
                transport.abort()
        return len(sockets)

    async def close_all(self, code: int, reason: str, timeout: float) -> None:
        """Close every socket with a close frame (all within ``timeout`` seconds), then
        cancel the handlers still running."""
        sockets = [ws for ws, _ in self._open.values()]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    *(ws.close(code=code, message=reason.encode()) for ws in sockets),
                    return_exceptions=True,
                )
        for task in list(self._open):
            task.cancel()
