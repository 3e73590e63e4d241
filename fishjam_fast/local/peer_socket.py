"""The WebRTC peer signalling socket (``/socket/peer/websocket``), authentication only.

Nobody runs WebRTC here; this socket exists so a test can play a person the way the
upstream SDK's tests do: open it with the token ``POST /room/{id}/peer`` gave a
``webrtc`` peer, authenticate, and the peer counts as connected (``PeerConnected``)
until the socket closes (``PeerDisconnected``).

Messages are Fishjam's ``fishjam.PeerMessage`` (oneof ``content``: ``authenticated`` = 1,
an empty message; ``auth_request`` = 2 with ``token`` = 1; ``media_event`` = 3 and
``rtc_stats_report`` = 4, each with ``data`` = 1), one binary frame each. The plain SDK
does not ship this protocol, so the local server declares the subset it speaks here with
google.protobuf's descriptor API (no generated module): field numbers as in Fishjam's
public ``peer_notifications.proto``. After ``authenticated`` every message is read and
ignored (media events get no answer).

Closes: 1000 ``unauthenticated`` (first message not an auth_request, or none within
``auth_timeout``), ``missing token``, ``invalid token`` (unknown, revoked, not a
WebRTC peer's token, or a simulated person's: it is connected without a socket),
``room not found``, ``peer not found``, ``peer already connected``; 1011 ``invalid
message`` (a frame that does not decode), 1003 ``unsupported data`` (text). Deleting
the peer closes 1000 ``Peer removed``, deleting its room 1000 ``Room stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # type: ignore[import-untyped,unused-ignore]

from ._sockets import OpenSockets, receive_message

if TYPE_CHECKING:
    from .notifications import NotificationHub
    from .state import Peer, ServerState


def _peer_message_class() -> Any:
    """``fishjam.PeerMessage`` (the subset above), built in a private descriptor pool."""
    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    message = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    file = descriptor_pb2.FileDescriptorProto(
        name="fishjam_fast/local/peer_notifications.proto", package="fishjam", syntax="proto3"
    )
    peer = file.message_type.add(name="PeerMessage")
    peer.oneof_decl.add(name="content")
    peer.nested_type.add(name="Authenticated")
    auth = peer.nested_type.add(name="AuthRequest")
    auth.field.add(name="token", number=1, type=string, label=optional)
    for name in ("MediaEvent", "RtcStatsReport"):
        nested = peer.nested_type.add(name=name)
        nested.field.add(name="data", number=1, type=string, label=optional)
    for number, (name, kind) in enumerate(
        [
            ("authenticated", "Authenticated"),
            ("auth_request", "AuthRequest"),
            ("media_event", "MediaEvent"),
            ("rtc_stats_report", "RtcStatsReport"),
        ],
        start=1,
    ):
        peer.field.add(
            name=name,
            number=number,
            type=message,
            label=optional,
            type_name=f".fishjam.PeerMessage.{kind}",
            oneof_index=0,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("fishjam.PeerMessage"))


#: The ``fishjam.PeerMessage`` class (google.protobuf).
PeerMessage = _peer_message_class()
#: The server's answer to a good auth_request.
AUTHENTICATED: bytes = PeerMessage(authenticated=PeerMessage.Authenticated()).SerializeToString()


class PeerConnection:
    """An authenticated peer socket (``Peer.peer_socket``)."""

    def __init__(self, ws: web.WebSocketResponse, peer: Peer) -> None:
        """Args: ws: The socket. peer: The WebRTC peer it authenticated as."""
        self.ws = ws
        self.peer = peer
        #: ``time.monotonic()`` of the authentication.
        self.connected_at = time.monotonic()

    async def close(self, code: int, reason: str, timeout: float = 5.0) -> None:
        """Close with a close frame (bounded by ``timeout``)."""
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), timeout)


class PeerSockets:
    """Serves every WebRTC peer socket against the registry and the notification hub."""

    def __init__(
        self,
        state: ServerState,
        hub: NotificationHub,
        *,
        heartbeat: float | None,
        auth_timeout: float,
    ) -> None:
        """Args: state: Registry. hub: Notifications. heartbeat: Ping interval (None: off).
        auth_timeout: Seconds to the auth_request."""
        self.state = state
        self.hub = hub
        self.heartbeat = heartbeat
        self.auth_timeout = auth_timeout
        self._open = OpenSockets()

    @property
    def open_count(self) -> int:
        """Peer sockets being served now."""
        return len(self._open)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler of ``/socket/peer/websocket``."""
        ws = await self._open.accept(request, self.heartbeat)
        conn: PeerConnection | None = None
        try:
            conn = await self._authenticate(ws)
            if conn is None:
                return ws
            # every message is read and ignored; a bad frame closes (receive_message)
            while await receive_message(ws, PeerMessage.FromString) is not None:
                pass
            return ws
        finally:
            if conn is not None:
                self._detach(conn)
            if not ws.closed:
                await ws.close()
            self._open.forget()

    async def _authenticate(self, ws: web.WebSocketResponse) -> PeerConnection | None:
        req = await receive_message(ws, PeerMessage.FromString, self.auth_timeout)
        if req is None:
            return None
        if req.WhichOneof("content") != "auth_request":
            await ws.close(code=1000, message=b"unauthenticated")
            return None
        peer, reason = self.state.authenticate_peer(req.auth_request.token)
        if peer is None:
            await ws.close(code=1000, message=reason.encode())
            return None
        conn = PeerConnection(ws, peer)
        peer.peer_socket = conn
        try:
            await ws.send_bytes(AUTHENTICATED)
        except (ConnectionError, RuntimeError):
            self._detach(conn)
            return None
        self.hub.peer_connected(peer, self.state.room(peer.room_id))
        return conn

    def _detach(self, conn: PeerConnection) -> None:
        peer = conn.peer
        if peer.peer_socket is not conn:
            return
        peer.peer_socket = None
        room = self.state.rooms.get(peer.room_id)
        if room is not None and room.peers.get(peer.id) is peer:
            self.hub.peer_disconnected(peer, room)

    def drop_all(self) -> int:
        """Drop every peer socket without a close frame; returns how many."""
        return self._open.drop_all()

    async def close_all(self, code: int, reason: str, timeout: float) -> None:
        """Close every peer socket, then cancel the handlers still running."""
        await self._open.close_all(code, reason, timeout)
