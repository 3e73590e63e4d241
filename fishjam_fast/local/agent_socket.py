"""The agent WebSocket (``/socket/agent/websocket``): authentication, recording, replies.

Decisions where the protocol is silent (the real server is an Elixir WebSock handler):

- The first message must be a binary frame holding an ``auth_request``; a decodable
  message of another kind closes with 1000 ``unauthenticated``. No message within
  ``auth_timeout`` seconds closes the same way.
- A binary frame that does not decode as ``AgentRequest`` closes with 1011
  ``invalid message`` (the handler crashes on a decode error: an internal error).
  A text frame closes with 1003 ``unsupported data``.
- After authentication: a second ``auth_request`` is ignored; ``track_data``,
  ``interrupt_track`` or ``remove_track`` for a track the agent never added are ignored;
  a duplicate ``add_track`` id is ignored; ``capture_image`` for a track that is not a
  simulated video track in the agent's room is ignored (no reply). All of them are
  still logged in the connection's request list.
- When an agent disconnects, its tracks end and their unplayed audio is dropped.
- An agent may reconnect with the same token once its previous connection ended (the
  real server: "reconnect using the same token"). A track it re-adds with the id of an
  ended track gets a fresh recording that replaces the old one in
  :attr:`AgentRecord.tracks` (both stay in :attr:`AgentRecord.track_history`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from google.protobuf.message import DecodeError  # type: ignore[import-untyped,unused-ignore]

from fishjam_fast._proto import agent_pb2, notifications_pb2

from .records import ConnectionRecord, TrackEvent, TrackRecording

if TYPE_CHECKING:
    from .state import Peer, ServerState

#: How the server answers a successful auth (``AgentResponse{authenticated{}}``).
AUTHENTICATED = agent_pb2.AgentResponse(
    authenticated=agent_pb2.AgentResponse.Authenticated()
).SerializeToString()


ECHO_WINDOW = 512
"""Chunks remembered per connection for echo round trips (10 s of 20 ms chunks)."""


class AgentConnection:
    """A live, authenticated agent socket and the controls fault injection uses."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        peer: Peer,
        record: ConnectionRecord,
        state: ServerState | None = None,
    ) -> None:
        """Wrap an authenticated socket.

        Args:
            ws: The aiohttp WebSocket.
            transport: Its TCP transport (for stall and abort).
            peer: The agent peer it authenticated as.
            record: Its connection record.
            state: The registry whose notifications say the agent left when it
                detaches (None: no notifications).
        """
        self.ws = ws
        self.state = state
        self.transport = transport
        self.peer = peer
        self.record = record
        self._send_lock = asyncio.Lock()
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        self._stall_handle: asyncio.TimerHandle | None = None
        # chunk body -> when a speaking peer sent it here, for echo round trips
        self._echo_sent: dict[bytes, float] = {}

    def note_sent_chunk(self, chunk: bytes, at: float) -> None:
        """Remembers when ``chunk`` was sent, so an echo of it can be timed."""
        sent = self._echo_sent
        sent[chunk] = at
        if len(sent) > ECHO_WINDOW:
            del sent[next(iter(sent))]  # the oldest: dicts keep insertion order

    def note_received_chunk(self, chunk: bytes, at: float) -> None:
        """Records a round trip if ``chunk`` echoes one sent by :meth:`note_sent_chunk`."""
        sent_at = self._echo_sent.pop(chunk, None)
        if sent_at is not None:
            self.record.echo.add(at - sent_at)

    @property
    def closed(self) -> bool:
        """Whether the socket is closed or closing."""
        return self.ws.closed

    async def send(self, data: bytes) -> bool:
        """Send one binary frame (serialized ``AgentResponse`` or raw bytes).

        Args:
            data: The frame payload.

        Returns:
            False if the socket was already closed (nothing sent).
        """
        if self.ws.closed:
            return False
        async with self._send_lock:
            try:
                await self.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                return False
        return True

    async def close(self, code: int, reason: str, timeout: float = 5.0) -> None:
        """Close with a close frame; abort the TCP connection if that takes too long.

        Args:
            code: WebSocket close code.
            reason: Close reason.
            timeout: Seconds to wait for the close handshake.
        """
        self.record.close_code, self.record.close_reason = code, reason
        self._end_stall()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), timeout)
        except (TimeoutError, ConnectionError):
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self._end_stall()
        if self.transport is not None:
            self.transport.abort()

    def drop(self) -> None:
        """Drop the TCP connection without a close frame and detach the agent at once,
        so it may authenticate again right away (its handler ends soon after)."""
        if self.record.closed_at is None:
            self.record.closed_at = time.monotonic()
        self.abort()
        self.detach()

    def detach(self) -> None:
        """The agent is no longer connected through this socket: its tracks of this
        connection end (unplayed audio dropped). Idempotent."""
        peer = self.peer
        if peer.connection is self:
            peer.connection = None
            room = self.state.rooms.get(peer.room_id) if self.state is not None else None
            if self.state is not None and room is not None and room.peers.get(peer.id) is peer:
                self.state.notifications.peer_disconnected(peer, room)
        assert peer.record is not None
        for track in peer.record.tracks.values():
            if not track.ended and track.connection is self.record:
                track._end(removed=False)

    def stall(self, seconds: float) -> None:
        """Stop reading from the socket for ``seconds`` (TCP backpressure reaches the agent).

        Args:
            seconds: How long to stall (aiohttp's heartbeat, if on, may close the
                socket when a stall outlasts half the heartbeat interval).
        """
        self._unstalled.clear()
        if self.transport is not None:
            self.transport.pause_reading()
        if self._stall_handle is not None:
            self._stall_handle.cancel()
        self._stall_handle = asyncio.get_running_loop().call_later(seconds, self._end_stall)

    def _end_stall(self) -> None:
        if self._stall_handle is not None:
            self._stall_handle.cancel()
            self._stall_handle = None
        if not self._unstalled.is_set():
            self._unstalled.set()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    async def wait_unstalled(self) -> None:
        """Return once no stall is in force."""
        await self._unstalled.wait()


@dataclass(frozen=True)
class SocketOptions:
    """How the agent socket serves (the :class:`LocalFishjam` constructor's options)."""

    #: Seconds between server pings (None: no pings).
    heartbeat: float | None
    #: Seconds a socket may stay silent before its auth_request.
    auth_timeout: float
    #: Largest frame accepted (bigger: close 1009).
    max_message_size: int
    #: Keep chunk bodies (else counts only).
    record_chunks: bool
    #: Keep decoded requests (else counts only).
    record_requests: bool


class _OpenSocket:
    """One socket being served: what :class:`AgentSockets` needs to end it."""

    __slots__ = ("conn", "record", "transport", "ws")

    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, rec: ConnectionRecord
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.record = rec
        self.conn: AgentConnection | None = None


class AgentSockets:
    """The agent socket endpoint: serves every agent WebSocket against a
    :class:`ServerState` and can end all of them (server stop, restart, mass drop)."""

    def __init__(self, state: ServerState, options: SocketOptions) -> None:
        """Args: state: The registry agents authenticate against. options: How to serve."""
        self.state = state
        self.options = options
        self._open: dict[asyncio.Task[object], _OpenSocket] = {}

    @property
    def open_count(self) -> int:
        """Sockets being served now, authenticated or not."""
        return len(self._open)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler of ``/socket/agent/websocket``.

        Args:
            request: The upgrade request.

        Returns:
            The WebSocket response (after the socket closed).
        """
        opts = self.options
        ws = web.WebSocketResponse(
            heartbeat=opts.heartbeat, max_msg_size=opts.max_message_size, compress=False
        )
        await ws.prepare(request)
        rec = ConnectionRecord(
            peer_id=None, opened_at=time.monotonic(), keep_requests=opts.record_requests
        )
        self.state.connections.append(rec)
        entry = _OpenSocket(ws, request.transport, rec)
        task = asyncio.current_task()
        if task is not None:
            self._open[task] = entry
        try:
            await self._authenticate(entry)
            if entry.conn is not None:
                await self._serve(entry.conn)
        finally:
            if rec.closed_at is None:
                rec.closed_at = time.monotonic()
            if entry.conn is not None:
                entry.conn.detach()
            if not ws.closed:
                await ws.close()
            if task is not None:
                self._open.pop(task, None)
        return ws

    def drop_all(self) -> int:
        """Drop every open agent socket (authenticated or not) without a close frame,
        as a load balancer reset or a crash does; agents may reconnect at once.

        Returns:
            How many sockets were dropped.
        """
        entries = list(self._open.values())
        for entry in entries:
            if entry.conn is not None:
                entry.conn.drop()
            elif entry.transport is not None:
                entry.transport.abort()
        return len(entries)

    async def close_all(self, code: int, reason: str, timeout: float) -> None:
        """Close every authenticated socket with ``code`` and ``reason``, then cancel
        every handler still running (unauthenticated ones included)."""
        conns = [e.conn for e in self._open.values() if e.conn is not None]
        await asyncio.gather(
            *(c.close(code, reason, timeout=timeout) for c in conns), return_exceptions=True
        )
        for task in list(self._open):
            task.cancel()

    async def _authenticate(self, entry: _OpenSocket) -> None:
        """Sets ``entry.conn`` if the socket authenticates (before the answer goes out,
        so a drop at that moment detaches the agent too)."""
        ws, rec = entry.ws, entry.record
        try:
            msg = await ws.receive(timeout=self.options.auth_timeout)
        except TimeoutError:
            await _close(ws, rec, 1000, "unauthenticated")
            return
        req = _decode(msg)
        if req is None:
            return
        if isinstance(req, tuple):
            await _close(ws, rec, *req)
            return
        _log(rec, req)
        if req.WhichOneof("content") != "auth_request":
            await _close(ws, rec, 1000, "unauthenticated")
            return
        rec.token = req.auth_request.token
        peer, error = self.state.authenticate(rec.token, time.monotonic())
        if peer is None:
            await _close(ws, rec, 1000, error)
            return
        assert peer.record is not None
        conn = entry.conn = AgentConnection(ws, entry.transport, peer, rec, self.state)
        rec.peer_id = peer.id
        rec.authenticated = True
        peer.connection = conn
        peer.record.connections.append(rec)
        if not await conn.send(AUTHENTICATED):
            conn.detach()
            entry.conn = None
            return
        if peer.connection is conn:  # not dropped meanwhile
            self.state.notifications.peer_connected(peer, self.state.room(peer.room_id))

    async def _serve(self, conn: AgentConnection) -> None:
        peer, rec = conn.peer, conn.record
        assert peer.record is not None
        agent = peer.record
        tracks = agent.tracks
        live: set[str] = set()  # tracks added (and not removed) on this connection
        with_data: set[str] = set()  # ... that have had data on this connection
        while True:
            await conn.wait_unstalled()
            msg = await conn.ws.receive()
            req = _decode(msg)
            if req is None:
                return
            if isinstance(req, tuple):
                await conn.close(*req)
                return
            _log(rec, req)
            index = rec.request_count - 1
            kind = req.WhichOneof("content")
            if kind == "track_data":
                track_id = req.track_data.track_id
                if track_id not in live:
                    rec.data_without_track += 1
                elif track_id not in with_data:
                    with_data.add(track_id)
                    rec.track_log.append(TrackEvent(index, kind, track_id))
                track = tracks.get(track_id)
                if track is not None:
                    track._on_data(req.track_data.data)
                    conn.note_received_chunk(req.track_data.data, time.monotonic())
            elif kind == "add_track":
                add = req.add_track
                old = tracks.get(add.track.id)
                if old is None or old.ended:
                    track = TrackRecording(
                        track_id=add.track.id,
                        peer_id=peer.id,
                        connection_index=len(agent.connections) - 1,
                        type=add.track.type,
                        metadata=add.track.metadata,
                        encoding=add.codec_params.encoding,
                        sample_rate=add.codec_params.sample_rate,
                        channels=add.codec_params.channels,
                        keep_chunks=self.options.record_chunks,
                        connection=rec,
                    )
                    tracks[add.track.id] = track
                    agent.track_history.append(track)
                    live.add(add.track.id)
                    with_data.discard(add.track.id)
                    rec.track_log.append(TrackEvent(index, kind, add.track.id))
                    self._notify_track(peer, add.track, added=True)
            elif kind == "interrupt_track":
                track = tracks.get(req.interrupt_track.track_id)
                if track is not None and not track.ended:
                    track._on_interrupt()
            elif kind == "remove_track":
                track_id = req.remove_track.track_id
                track = tracks.get(track_id)
                if track is not None and not track.ended:
                    track._end(removed=True)
                if track_id in live:
                    live.discard(track_id)
                    rec.track_log.append(TrackEvent(index, kind, track_id))
                    self._notify_track(peer, req.remove_track, added=False)
            elif kind == "capture_image":
                await self._answer_capture(conn, req.capture_image.track_id)

    def _notify_track(self, peer: Peer, track: Any, added: bool) -> None:
        """``TrackAdded`` (``track`` is the added ``Track``) or ``TrackRemoved``
        (``track`` is the ``RemoveTrack`` request) of an agent's track."""
        room = self.state.rooms.get(peer.room_id)
        if room is None or peer.connection is None:
            return
        hub = self.state.notifications
        if added:
            proto = notifications_pb2.Track()
            proto.CopyFrom(track)
            hub.track_added(peer, room, proto)
        else:
            hub.track_removed(peer, room, track.track_id)

    async def _answer_capture(self, conn: AgentConnection, track_id: str) -> None:
        image = self.state.video_image(conn.peer.room_id, track_id)
        if image is None:
            return
        content_type, data = image
        reply = agent_pb2.AgentResponse(
            track_image=agent_pb2.AgentResponse.TrackImage(
                track_id=track_id, content_type=content_type, data=data
            )
        )
        if await conn.send(reply.SerializeToString()):
            conn.record.images_sent += 1


def _decode(msg: object) -> agent_pb2.AgentRequest | tuple[int, str] | None:
    """The request in ``msg``; a (code, reason) to close with; None when the socket ended."""
    kind = getattr(msg, "type", None)
    if kind is WSMsgType.BINARY:
        req = agent_pb2.AgentRequest()
        try:
            req.ParseFromString(msg.data)  # type: ignore[attr-defined]
        except DecodeError:
            return (1011, "invalid message")
        return req
    if kind is WSMsgType.TEXT:
        return (1003, "unsupported data")
    return None


async def _close(ws: web.WebSocketResponse, rec: ConnectionRecord, code: int, reason: str) -> None:
    rec.close_code, rec.close_reason = code, reason
    await ws.close(code=code, message=reason.encode())


def _log(rec: ConnectionRecord, req: agent_pb2.AgentRequest) -> None:
    rec.request_count += 1
    if rec.keep_requests:
        rec.requests.append(req)
