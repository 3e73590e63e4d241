"""The notification socket (``/socket/server/websocket``): what ``FishjamNotifier`` reads.

Every frame both ways is one binary ``fishjam.ServerMessage``. The client's first
message must be ``auth_request{token}`` with the management token: the server answers
``authenticated``, or closes 1000 with ``invalid token`` (wrong token), ``missing
token`` (empty) or ``unauthenticated`` (another message first, or nothing within
``auth_timeout`` seconds). Then ``subscribe_request{EVENT_TYPE_SERVER_NOTIFICATION}`` is
answered with ``subscribe_response`` and from that moment on every notification is sent
as it happens (:mod:`fishjam_fast.local.notifications`); the answer goes through the
subscriber's queue ahead of any notification, so the client reads it first. Other
messages after authentication are ignored; a frame that does not decode closes 1011
``invalid message``, a text frame 1003 ``unsupported data``. The server pings every
``heartbeat`` seconds, as on the agent socket.

A subscriber whose queue overflows (it does not read) is closed with 1011
``notification queue overflow``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiohttp import web

from fishjam_fast._proto import server_notifications_pb2

from ._sockets import OpenSockets, receive_message
from .notifications import Subscriber

if TYPE_CHECKING:
    from .notifications import NotificationHub

ServerMessage = server_notifications_pb2.ServerMessage

AUTHENTICATED = ServerMessage(authenticated=ServerMessage.Authenticated()).SerializeToString()
#: Close reason of a subscriber that did not keep up.
OVERFLOW_REASON = "notification queue overflow"


class ServerSockets:
    """Serves every notification socket against one :class:`NotificationHub`."""

    def __init__(
        self,
        hub: NotificationHub,
        management_token: str,
        *,
        heartbeat: float | None,
        auth_timeout: float,
        max_queue: int,
    ) -> None:
        """Args: hub: The notifications. management_token: The token clients must send.
        heartbeat: Ping interval (None: off). auth_timeout: Seconds to the auth_request.
        max_queue: Each subscriber's queue bound."""
        self.hub = hub
        self.management_token = management_token
        self.heartbeat = heartbeat
        self.auth_timeout = auth_timeout
        self.max_queue = max_queue
        self._open = OpenSockets()
        self._closing: set[asyncio.Task[bool]] = set()  # overflow closes in progress

    @property
    def open_count(self) -> int:
        """Notification sockets being served now."""
        return len(self._open)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler of ``/socket/server/websocket``."""
        ws = await self._open.accept(request, self.heartbeat)
        subscriber: Subscriber | None = None
        sender: asyncio.Task[None] | None = None
        try:
            if not await self._authenticate(ws):
                return ws
            while True:
                req = await receive_message(ws, ServerMessage.FromString)
                if req is None:
                    return ws
                if req.WhichOneof("content") != "subscribe_request" or subscriber is not None:
                    continue
                event = req.subscribe_request.event_type
                answer = ServerMessage(
                    subscribe_response=ServerMessage.SubscribeResponse(event_type=event)
                )
                if event != ServerMessage.EVENT_TYPE_SERVER_NOTIFICATION:
                    await ws.send_bytes(answer.SerializeToString())  # nothing to deliver
                    continue
                subscriber = Subscriber(self.max_queue, lambda: self._overflow(ws))
                subscriber.offer(answer.SerializeToString())
                self.hub.subscribe(subscriber)
                sender = asyncio.get_running_loop().create_task(_send_loop(ws, subscriber))
        finally:
            if subscriber is not None:
                self.hub.unsubscribe(subscriber)
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            if not ws.closed:
                await ws.close()
            self._open.forget()

    async def _authenticate(self, ws: web.WebSocketResponse) -> bool:
        req = await receive_message(ws, ServerMessage.FromString, self.auth_timeout)
        if req is None:
            return False
        if req.WhichOneof("content") != "auth_request":
            await ws.close(code=1000, message=b"unauthenticated")
            return False
        token = req.auth_request.token
        if not token:
            await ws.close(code=1000, message=b"missing token")
            return False
        if token != self.management_token:
            await ws.close(code=1000, message=b"invalid token")
            return False
        await ws.send_bytes(AUTHENTICATED)
        return True

    def _overflow(self, ws: web.WebSocketResponse) -> None:
        # called from emit (not a coroutine): the close runs in a task we keep alive
        task = asyncio.get_running_loop().create_task(
            ws.close(code=1011, message=OVERFLOW_REASON.encode())
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def drop_all(self) -> int:
        """Drop every notification socket without a close frame (clients see 1006).

        Returns:
            How many were dropped.
        """
        return self._open.drop_all()

    async def close_all(self, code: int, reason: str, timeout: float) -> None:
        """Close every notification socket, then cancel the handlers still running."""
        await self._open.close_all(code, reason, timeout)


async def _send_loop(ws: web.WebSocketResponse, subscriber: Subscriber) -> None:
    """Send the subscriber's queue in order until the socket closes."""
    while not ws.closed:
        frame = await subscriber.queue.get()
        try:
            await ws.send_bytes(frame)
        except (ConnectionError, RuntimeError):
            return
