"""LocalFishjam: the server object, its lifecycle and the programmatic API tests use."""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl as ssl_module
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import numpy.typing as npt
from aiohttp import web

from .agent_socket import AgentConnection
from .control import control_routes
from .peers import SimulatedTrack, SpeakingPeer, speak, video_track
from .records import AgentRecord, ConnectionRecord, TrackRecording
from .rest import ApiError, make_middleware, routes
from .signals import AudioSource
from .state import AGENT_SAMPLE_RATES, Peer, Room, new_id, room_config

T = TypeVar("T")

#: Close reasons of the real server.
PEER_REMOVED = "Peer removed"
ROOM_STOPPED = "Room stopped"


class LocalFishjam:
    """A local Fishjam server: REST subset and agent socket on one 127.0.0.1 port.

    Use as ``async with LocalFishjam() as fj:`` (or :meth:`start` / :meth:`stop`).
    All methods must be called on the event loop the server runs on.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        management_token: str | None = None,
        heartbeat: float | None = 30.0,
        auth_timeout: float = 30.0,
        max_message_size: int = 4 * 1024 * 1024,
        record_chunks: bool = True,
        record_requests: bool = True,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        """Configure (nothing listens until :meth:`start`).

        Args:
            port: TCP port on 127.0.0.1; 0 picks a free one.
            management_token: The REST bearer token (random when None).
            heartbeat: Seconds between server pings on agent sockets (None: no pings).
            auth_timeout: Seconds an agent socket may stay silent before its auth_request.
            max_message_size: Largest frame accepted from an agent (bigger: close 1009).
            record_chunks: Keep every chunk body agents send (off: counts only).
            record_requests: Keep every decoded AgentRequest per connection
                (off: counts only). Turn both off for benchmarks with huge traffic.
            ssl: A server-side SSL context: serve HTTPS and WSS instead (the URLs below
                become ``https://`` and ``wss://``).
        """
        self.host = "127.0.0.1"
        self.port = port
        self.management_token = management_token or secrets.token_urlsafe(24)
        self.heartbeat = heartbeat
        self.auth_timeout = auth_timeout
        self.max_message_size = max_message_size
        self.record_chunks = record_chunks
        self.record_requests = record_requests
        self.ssl = ssl
        self.log = logging.getLogger("fishjam_fast.local")
        #: Rooms by id.
        self.rooms: dict[str, Room] = {}
        self._tokens: dict[str, tuple[str, str]] = {}  # token -> (room id, peer id)
        self._agents: dict[str, AgentRecord] = {}  # peer id -> record, kept after deletion
        self._all_connections: list[ConnectionRecord] = []
        self._socket_tasks: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._running = False

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with TLS): ``FishjamClient``'s ``fishjam_id``."""
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT`` (``wss`` with TLS)."""
        return f"{'wss' if self.ssl else 'ws'}://{self.host}:{self.port}"

    @property
    def agent_socket_url(self) -> str:
        """``ws(s)://127.0.0.1:PORT/socket/agent/websocket``."""
        return self.ws_url + "/socket/agent/websocket"

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._running

    async def start(self) -> LocalFishjam:
        """Start listening.

        Returns:
            self, with :attr:`port` set to the bound port.

        Raises:
            OSError: If the port cannot be bound.
            RuntimeError: If already started.
        """
        if self._runner is not None:
            raise RuntimeError("LocalFishjam already started")
        app = web.Application(middlewares=[make_middleware(self)])
        app.add_routes(routes(self) + control_routes(self))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        # runner.addresses works on asyncio and uvloop servers alike
        self.port = int(runner.addresses[0][1])
        self._runner = runner
        self._running = True
        return self

    async def stop(self) -> None:
        """Stop: end every loop, close agent sockets (1001 going away), stop listening."""
        if self._runner is None:
            return
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        conns = [p.connection for r in self.rooms.values() for p in r.peers.values()]
        await asyncio.gather(
            *(c.close(1001, "server shutdown", timeout=2.0) for c in conns if c is not None),
            return_exceptions=True,
        )
        for task in list(self._socket_tasks):
            task.cancel()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> LocalFishjam:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ----------------------------------------------------------------- state (used by REST)

    def _create_room(self, config: dict[str, Any]) -> Room:
        room = Room(id=new_id(), config=config)
        self.rooms[room.id] = room
        return room

    def _room_or_error(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise ApiError(404, f"Room {room_id} does not exist")
        return room

    def _peer_or_error(self, room_id: str, peer_id: str) -> Peer:
        peer = self._room_or_error(room_id).peers.get(peer_id)
        if peer is None:
            raise ApiError(404, f"Peer with id {peer_id} doesn't exist")
        return peer

    def _add_peer(self, peer: Peer) -> Peer:
        self.rooms[peer.room_id].peers[peer.id] = peer
        self._tokens[peer.token] = (peer.room_id, peer.id)
        return peer

    def _add_agent(self, room_id: str, sample_rate: int, subscribe_mode: str = "auto") -> Peer:
        peer = Peer(id=new_id(), room_id=room_id, type="agent", subscribe_mode=subscribe_mode)
        peer.output_sample_rate = sample_rate
        peer.record = self._agents[peer.id] = AgentRecord(peer_id=peer.id, room_id=room_id)
        return self._add_peer(peer)

    def _add_webrtc_peer(
        self, room_id: str, metadata: dict[str, Any] | None, subscribe_mode: str = "auto"
    ) -> Peer:
        peer = Peer(id=new_id(), room_id=room_id, type="webrtc", subscribe_mode=subscribe_mode)
        peer.metadata = metadata
        return self._add_peer(peer)

    def _refresh_token(self, peer: Peer) -> str:
        peer.token = secrets.token_urlsafe(24)
        self._tokens[peer.token] = (peer.room_id, peer.id)
        return peer.token

    def _peer_for_token(self, token: str) -> tuple[Peer | None, str]:
        """The agent peer a token authenticates, or None and the close reason."""
        if not token:
            return None, "missing token"
        ids = self._tokens.get(token)
        if ids is None:
            return None, "invalid token"
        room = self.rooms.get(ids[0])
        if room is None:
            return None, "room not found"
        peer = room.peers.get(ids[1])
        if peer is None:
            return None, "peer not found"
        if peer.type != "agent":
            return None, "invalid token"
        if peer.connection is not None:
            return None, "peer already connected"
        return peer, ""

    def _capture_image(self, room_id: str, track_id: str) -> tuple[str, bytes] | None:
        room = self.rooms.get(room_id)
        if room is None:
            return None
        for peer in room.peers.values():
            for track in peer.tracks:
                if track.id == track_id and track.type == "video":
                    return track.content_type, track.image
        return None

    # ----------------------------------------------------------------- programmatic API

    async def create_room(self, **config: Any) -> str:
        """Create a room, as ``POST /room`` does.

        Args:
            **config: ``RoomConfig`` fields in the API's camelCase
                (``roomType="audio_only"``, ``maxPeers=4``...).

        Returns:
            The room id.

        Raises:
            ValueError: If a field is invalid.
        """
        return self._create_room(room_config(config)).id

    async def delete_room(self, room_id: str) -> None:
        """Delete a room; its connected agents are closed with 1000 ``Room stopped``.

        Args:
            room_id: The room.

        Raises:
            KeyError: If there is no such room.
        """
        room = self.rooms.pop(room_id)
        for task in list(self._tasks):
            if getattr(task, "_fishjam_room", None) == room_id:
                task.cancel()
        await asyncio.gather(
            *(
                p.connection.close(1000, ROOM_STOPPED)
                for p in room.peers.values()
                if p.connection is not None
            ),
            return_exceptions=True,
        )

    async def add_agent(self, room_id: str, sample_rate: int = 16000) -> Peer:
        """Add an agent peer, as ``POST /room/{id}/peer`` with type ``agent`` does.

        Args:
            room_id: The room.
            sample_rate: Output rate of peers' audio sent to the agent (16000 or 24000).

        Returns:
            The peer (``.id``, ``.token``; ``.record`` holds what it sends).

        Raises:
            KeyError: If there is no such room.
            ValueError: If the sample rate is not supported.
        """
        if room_id not in self.rooms:
            raise KeyError(room_id)
        if sample_rate not in AGENT_SAMPLE_RATES:
            raise ValueError(f"Unsupported audio sample rate: {sample_rate}")
        return self._add_agent(room_id, sample_rate)

    async def remove_peer(self, room_id: str, peer_id: str) -> None:
        """Remove a peer, as ``DELETE /room/{id}/peer/{id}`` does: a connected agent is
        closed with 1000 ``Peer removed``; a speaking peer stops.

        Args:
            room_id: The room.
            peer_id: The peer.

        Raises:
            KeyError: If there is no such room or peer.
        """
        peer = self.rooms[room_id].peers.pop(peer_id)
        for task in list(self._tasks):
            if getattr(task, "_fishjam_peer", None) == peer_id:
                task.cancel()
        if peer.connection is not None:
            await peer.connection.close(1000, PEER_REMOVED)

    async def kick(self, peer_id: str) -> None:
        """Kick an agent: the same as removing its peer (close 1000 ``Peer removed``).

        Args:
            peer_id: The agent's peer id.

        Raises:
            KeyError: If there is no such peer.
        """
        await self.remove_peer(self.peer(peer_id).room_id, peer_id)

    async def add_speaking_peer(
        self,
        room_id: str,
        source: AudioSource | npt.ArrayLike | None = None,
        *,
        source_sample_rate: int = 16000,
        realtime: bool = True,
        loop: bool = False,
        chunks: int | None = None,
        metadata: Any = None,
        start: bool = True,
    ) -> SpeakingPeer:
        """Add a simulated WebRTC peer with an audio track that speaks to the room's agents.

        Args:
            room_id: The room.
            source: An :class:`AudioSource`, or mono int16 samples at
                ``source_sample_rate``; None: a 440 Hz tone of one second.
            source_sample_rate: Rate of ``source`` when it is an array.
            realtime: Pace at 20 ms per chunk (False: as fast as possible).
            loop: Start again at the end of the source.
            chunks: Stop after this many chunks (None: one pass, or forever when looping,
                until the peer, its room or the server goes).
            metadata: Track metadata (JSON-encodable).
            start: Start speaking now (else call :meth:`start_speaking`).

        Returns:
            The speaking peer's handle.

        Raises:
            KeyError: If there is no such room.
        """
        if room_id not in self.rooms:
            raise KeyError(room_id)
        if source is None:
            source = AudioSource.tone(440.0, 1.0)
        elif not isinstance(source, AudioSource):
            source = AudioSource.from_array(source, source_sample_rate)
        peer = self._add_webrtc_peer(room_id, None)
        peer.simulated = True
        track = SimulatedTrack(id=new_id(), type="audio", metadata=metadata)
        peer.tracks.append(track)
        speaker = SpeakingPeer(
            peer=peer, track=track, source=source, realtime=realtime, loop=loop, chunks=chunks
        )
        if start:
            self.start_speaking(speaker)
        return speaker

    def start_speaking(self, speaker: SpeakingPeer) -> None:
        """Start (or restart from the beginning) a speaking peer's stream.

        Args:
            speaker: A handle from :meth:`add_speaking_peer`.
        """
        if speaker._task is not None and not speaker._task.done():
            speaker._task.cancel()
        speaker.done.clear()
        room = self.rooms[speaker.peer.room_id]
        task = self._spawn(speak(speaker, room, lambda: self._running))
        task._fishjam_peer = speaker.peer.id  # type: ignore[attr-defined]
        task._fishjam_room = room.id  # type: ignore[attr-defined]
        speaker._task = task

    async def add_video_peer(
        self,
        room_id: str,
        *,
        width: int = 32,
        height: int = 24,
        image: bytes | None = None,
        content_type: str = "image/jpeg",
        metadata: Any = None,
    ) -> SimulatedTrack:
        """Add a simulated WebRTC peer with a video track that answers ``capture_image``.

        Args:
            room_id: The room.
            width: Width of the generated PNG.
            height: Height of the generated PNG.
            image: Image bytes to answer with instead of a generated PNG.
            content_type: Content type of ``image`` (ignored for the generated PNG).
            metadata: Track metadata.

        Returns:
            The video track (``.id`` is what agents pass to ``capture_image``;
            ``.image`` the bytes they get back).

        Raises:
            KeyError: If there is no such room.
        """
        room = self.rooms[room_id]
        peer = self._add_webrtc_peer(room_id, None)
        peer.simulated = True
        track = video_track(new_id(), width, height, len(room.peers), image, content_type, metadata)
        peer.tracks.append(track)
        return track

    # ----------------------------------------------------------------- inspection

    def peer(self, peer_id: str) -> Peer:
        """A peer of any room.

        Args:
            peer_id: The peer id.

        Returns:
            The peer.

        Raises:
            KeyError: If no room has it.
        """
        for room in self.rooms.values():
            peer = room.peers.get(peer_id)
            if peer is not None:
                return peer
        raise KeyError(peer_id)

    def agent(self, peer_id: str) -> AgentRecord:
        """What an agent peer sent, over all its connections (kept after it is deleted).

        Args:
            peer_id: The agent's peer id.

        Returns:
            Its record.

        Raises:
            KeyError: If no agent had that id.
        """
        return self._agents[peer_id]

    def connection(self, peer_id: str) -> AgentConnection | None:
        """The live connection of an agent, if it is connected."""
        try:
            return self.peer(peer_id).connection
        except KeyError:
            return None

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every agent socket opened so far, authenticated or not, oldest first."""
        return list(self._all_connections)

    # ----------------------------------------------------------------- waiting

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.005
    ) -> T:
        """Poll ``predicate`` until it returns something truthy.

        Args:
            predicate: Called on the server's loop; its truthy result is returned.
            timeout: Seconds.
            interval: Seconds between polls.

        Returns:
            The predicate's result.

        Raises:
            TimeoutError: If it stayed falsy for ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(interval)

    async def wait_connected(self, peer_id: str, timeout: float = 5.0) -> AgentConnection:
        """Wait until an agent is connected and authenticated.

        Returns:
            Its live connection.

        Raises:
            TimeoutError: If it did not connect in time.
        """
        return await self.wait_for(lambda: self.connection(peer_id), timeout)

    async def wait_disconnected(self, peer_id: str, timeout: float = 5.0) -> ConnectionRecord:
        """Wait until an agent's latest connection has ended.

        Returns:
            That connection's record.

        Raises:
            TimeoutError: If it is still connected after ``timeout``.
        """
        rec = self.agent(peer_id)

        def ended() -> ConnectionRecord | None:
            last = rec.connections[-1] if rec.connections else None
            return last if last is not None and last.closed_at is not None else None

        return await self.wait_for(ended, timeout)

    async def wait_track(
        self, peer_id: str, index: int = 0, timeout: float = 5.0
    ) -> TrackRecording:
        """Wait until an agent has added its ``index``-th track.

        Returns:
            The track recording.

        Raises:
            TimeoutError: If it did not in time.
        """
        rec = self.agent(peer_id)
        return await self.wait_for(
            lambda: list(rec.tracks.values())[index] if len(rec.tracks) > index else None,
            timeout,
        )

    async def wait_bytes(self, track: TrackRecording, n: int, timeout: float = 5.0) -> int:
        """Wait until ``track`` has received at least ``n`` payload bytes.

        Returns:
            The bytes received so far.

        Raises:
            TimeoutError: If fewer arrived in time.
        """
        return await self.wait_for(
            lambda: track.total_bytes if track.total_bytes >= n else 0, timeout
        )

    async def wait_requests(self, peer_id: str, n: int, timeout: float = 5.0) -> int:
        """Wait until an agent's connections have sent ``n`` decoded requests in total.

        Returns:
            The count so far.

        Raises:
            TimeoutError: If fewer arrived in time.
        """
        rec = self.agent(peer_id)

        def count() -> int:
            c = sum(x.request_count for x in rec.connections)
            return c if c >= n else 0

        return await self.wait_for(count, timeout)

    # ----------------------------------------------------------------- fault injection

    def _live(self, peer_id: str) -> AgentConnection:
        conn = self.connection(peer_id)
        if conn is None:
            raise KeyError(f"agent {peer_id} is not connected")
        return conn

    async def close_agent(
        self, peer_id: str, code: int = 1011, reason: str = "internal error"
    ) -> None:
        """Close an agent's socket with ``code`` and ``reason``; the peer stays (it may
        reconnect).

        Raises:
            KeyError: If the agent is not connected.
        """
        await self._live(peer_id).close(code, reason)

    def drop_agent(self, peer_id: str) -> None:
        """Drop an agent's TCP connection without a close frame (the client sees 1006).

        Raises:
            KeyError: If the agent is not connected.
        """
        self._live(peer_id).abort()

    def stall_agent(self, peer_id: str, seconds: float) -> None:
        """Stop reading from an agent's socket for ``seconds``: once the buffers fill,
        the agent's sends block (TCP backpressure).

        Raises:
            KeyError: If the agent is not connected.
        """
        self._live(peer_id).stall(seconds)

    async def send_raw(self, peer_id: str, data: bytes) -> None:
        """Send ``data`` as one binary frame, as is (e.g. a malformed AgentResponse).

        Raises:
            KeyError: If the agent is not connected.
        """
        await self._live(peer_id).send(data)

    async def flood_agent(
        self,
        peer_id: str,
        count: int,
        *,
        chunk_bytes: int | None = None,
        peer_from: str = "flood",
        track_id: str = "flood-track",
    ) -> int:
        """Send ``count`` track_data chunks to an agent as fast as its socket drains.

        Args:
            peer_id: The agent.
            count: How many chunks.
            chunk_bytes: Payload size (default: 20 ms at the agent's output rate).
            peer_from: ``peer_id`` the chunks claim to come from.
            track_id: Their track id.

        Returns:
            How many were sent (fewer if the socket closed).

        Raises:
            KeyError: If the agent is not connected.
        """
        from fishjam_fast._proto import agent_pb2, notifications_pb2

        conn = self._live(peer_id)
        size = chunk_bytes if chunk_bytes is not None else conn.peer.output_sample_rate // 50 * 2
        frame = agent_pb2.AgentResponse(
            track_data=agent_pb2.AgentResponse.TrackData(
                peer_id=peer_from,
                track=notifications_pb2.Track(
                    id=track_id, type=notifications_pb2.TRACK_TYPE_AUDIO, metadata="null"
                ),
                data=bytes(size),
            )
        ).SerializeToString()
        sent = 0
        for _ in range(count):
            if not self._running or not await conn.send(frame):
                break
            sent += 1
        conn.record.track_data_sent += sent
        return sent
