"""LocalFishjam: the server object, its lifecycle and the programmatic API tests use.

The parts live in their own modules: the registry of rooms, peers, tokens and records
(:mod:`.state`), the agent socket (:mod:`.agent_socket`), the notification hub, socket
and webhooks (:mod:`.notifications`, :mod:`.server_socket`, :mod:`.webhooks`), the WebRTC
peer socket (:mod:`.peer_socket`), the REST and control routes (:mod:`.rest`,
:mod:`.control`), polling waits (:mod:`.waits`) and fault injection (:mod:`.faults`).
This module wires them together and owns the listening socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl as ssl_module
from types import TracebackType
from typing import Any

import numpy.typing as npt
from aiohttp import web

from .agent_socket import AgentConnection, AgentSockets, SocketOptions
from .control import control_routes
from .faults import FaultInjection
from .notifications import DEFAULT_MAX_QUEUE, NotificationHub
from .peer_socket import PeerSockets
from .peers import Person, SimulatedTrack, SpeakingPeer, speak, video_track
from .records import AgentRecord, ConnectionRecord
from .rest import make_middleware, routes
from .server_socket import ServerSockets
from .signals import AudioSource
from .state import AGENT_SAMPLE_RATES, Peer, Room, ServerState, new_id, room_config
from .waits import Waits
from .webhooks import WebhookPoster

#: Close reasons of the real server.
PEER_REMOVED = "Peer removed"
ROOM_STOPPED = "Room stopped"

#: Seconds :meth:`LocalFishjam.stop` lets queued webhooks go out before dropping them.
WEBHOOK_DRAIN_TIMEOUT = 1.0

#: Seconds :meth:`LocalFishjam.restart` and :meth:`LocalFishjam.stop` give REST requests
#: in flight to finish before their connections are closed.
SHUTDOWN_TIMEOUT = 2.0


class LocalFishjam(FaultInjection, Waits):
    """A local Fishjam server: REST subset and agent socket on one 127.0.0.1 port.

    Use as ``async with LocalFishjam() as fj:`` (or :meth:`start` / :meth:`stop`).
    All methods must be called on the event loop the server runs on. Fault injection
    (:class:`~fishjam_fast.local.faults.FaultInjection`) and waits
    (:class:`~fishjam_fast.local.waits.Waits`) are methods of this class too.
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
        webhook_secret: str | None = None,
        webhook_timeout: float = 5.0,
        webhook_retries: int = 3,
        notification_queue: int = DEFAULT_MAX_QUEUE,
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
            webhook_secret: Sign every webhook body (header ``x-fishjam-signature-256:
                sha256=<hex HMAC-SHA256 of the body>``); None: unsigned.
            webhook_timeout: Seconds one webhook POST may take.
            webhook_retries: Further attempts after a failed webhook POST.
            notification_queue: Notifications a notification-socket subscriber may have
                waiting; one that lets more pile up is disconnected (1011).
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
        #: Rooms, peers, tokens and agent records (kept across :meth:`restart`).
        self.state = ServerState()
        #: The agent socket endpoint (every open agent socket).
        options = SocketOptions(
            heartbeat, auth_timeout, max_message_size, record_chunks, record_requests
        )
        self.sockets = AgentSockets(self.state, options)
        #: Posts room notifications to their ``webhookUrl``.
        self.webhooks = WebhookPoster(
            webhook_secret, timeout=webhook_timeout, retries=webhook_retries
        )
        self.state.notifications.webhooks = self.webhooks
        #: The notification socket endpoint (``/socket/server/websocket``).
        self.server_sockets = ServerSockets(
            self.state.notifications,
            self.management_token,
            heartbeat=heartbeat,
            auth_timeout=auth_timeout,
            max_queue=notification_queue,
        )
        #: The WebRTC peer socket endpoint (``/socket/peer/websocket``).
        self.peer_sockets = PeerSockets(
            self.state, self.state.notifications, heartbeat=heartbeat, auth_timeout=auth_timeout
        )
        #: How many times :meth:`restart` reopened the listening socket.
        self.restarts = 0
        self._tasks: set[asyncio.Task[Any]] = set()  # speaking loops, restarts
        self._runner: web.AppRunner | None = None
        self._running = False
        self._lifecycle = asyncio.Lock()

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
    def notification_socket_url(self) -> str:
        """``ws(s)://127.0.0.1:PORT/socket/server/websocket``."""
        return self.ws_url + "/socket/server/websocket"

    @property
    def notifications(self) -> NotificationHub:
        """The notification hub (``.history``: the latest notifications emitted)."""
        return self.state.notifications

    @property
    def running(self) -> bool:
        """Whether the server is started (and not stopped; also during a restart)."""
        return self._running

    @property
    def listening(self) -> bool:
        """Whether the port accepts connections now (False during a restart's downtime)."""
        return self._runner is not None

    @property
    def rooms(self) -> dict[str, Room]:
        """Rooms by id (the registry's live dict)."""
        return self.state.rooms

    async def _listen(self) -> None:
        app = web.Application(middlewares=[make_middleware(self)])
        app.add_routes(routes(self) + control_routes(self))
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
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

    async def start(self) -> LocalFishjam:
        """Start listening.

        Returns:
            self, with :attr:`port` set to the bound port.

        Raises:
            OSError: If the port cannot be bound.
            RuntimeError: If already started.
        """
        async with self._lifecycle:
            if self._running:
                raise RuntimeError("LocalFishjam already started")
            await self._listen()
            self._running = True
        return self

    async def stop(self) -> None:
        """Stop: end every loop, close agent, notification and peer sockets (1001 going
        away), give queued webhooks up to :data:`WEBHOOK_DRAIN_TIMEOUT` seconds, stop
        listening."""
        async with self._lifecycle:
            if not self._running:
                return
            self._running = False
            current = asyncio.current_task()
            tasks = [t for t in self._tasks if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.sockets.close_all(1001, "server shutdown", timeout=2.0)
            await self.server_sockets.close_all(1001, "server shutdown", timeout=2.0)
            await self.peer_sockets.close_all(1001, "server shutdown", timeout=2.0)
            with contextlib.suppress(TimeoutError):  # the last webhooks, boundedly
                await self.webhooks.drain(WEBHOOK_DRAIN_TIMEOUT)
            await self.webhooks.close()
            runner, self._runner = self._runner, None
            if runner is not None:
                await runner.cleanup()

    async def restart(self, downtime: float = 0.0) -> None:
        """Restart as a deploy of the real server does: every agent socket is dropped
        (no close frame: clients see 1006), the listening socket is closed, and after
        ``downtime`` seconds it listens again on the same port. Rooms, peers, tokens,
        records and speaking peers are kept, so agents may reconnect with their tokens.

        Args:
            downtime: Seconds during which connections are refused.

        Raises:
            RuntimeError: If the server is not running.
            ValueError: If ``downtime`` is negative.
            OSError: If the port cannot be bound again.
        """
        if downtime < 0:
            raise ValueError(f"downtime must be >= 0 seconds, got {downtime}")
        async with self._lifecycle:
            if not self._running:
                raise RuntimeError("LocalFishjam is not running")
            runner, self._runner = self._runner, None
            if runner is not None:
                for site in list(runner.sites):
                    await site.stop()  # no new connection from here on
            self.sockets.drop_all()
            self.server_sockets.drop_all()
            self.peer_sockets.drop_all()
            if runner is not None:
                await runner.cleanup()
            if downtime:
                await asyncio.sleep(downtime)
            await self._listen()
            self.restarts += 1

    def restart_soon(self, downtime: float = 0.0) -> int:
        """Start :meth:`restart` in a task and return at once (for handlers of a
        request the restart would cut off: the control route, a signal).

        Args:
            downtime: As for :meth:`restart`.

        Returns:
            The value :attr:`restarts` will have once this restart is done.

        Raises:
            ValueError: If ``downtime`` is negative.
        """
        if downtime < 0:
            raise ValueError(f"downtime must be >= 0 seconds, got {downtime}")
        self._spawn(self.restart(downtime))
        return self.restarts + 1

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
        return self.state.create_room(room_config(config)).id

    async def delete_room(self, room_id: str) -> None:
        """Delete a room; its connected agents are closed with 1000 ``Room stopped``.

        Args:
            room_id: The room.

        Raises:
            KeyError: If there is no such room.
        """
        room = self.state.pop_room(room_id)
        for speaker in room.speakers.values():
            speaker.stop()
        await asyncio.gather(
            *(
                p.connection.close(1000, ROOM_STOPPED)
                for p in room.peers.values()
                if p.connection is not None
            ),
            *(
                p.peer_socket.close(1000, ROOM_STOPPED)
                for p in room.peers.values()
                if p.peer_socket is not None
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
        if room_id not in self.state.rooms:
            raise KeyError(room_id)
        if sample_rate not in AGENT_SAMPLE_RATES:
            raise ValueError(f"Unsupported audio sample rate: {sample_rate}")
        return self.state.add_agent(room_id, sample_rate)

    async def remove_peer(self, room_id: str, peer_id: str) -> None:
        """Remove a peer, as ``DELETE /room/{id}/peer/{id}`` does: a connected agent is
        closed with 1000 ``Peer removed``; a speaking peer stops.

        Args:
            room_id: The room.
            peer_id: The peer.

        Raises:
            KeyError: If there is no such room or peer.
        """
        peer, speaker = self.state.pop_peer(room_id, peer_id)
        if speaker is not None:
            speaker.stop()
        if peer.connection is not None:
            await peer.connection.close(1000, PEER_REMOVED)
        if peer.peer_socket is not None:
            await peer.peer_socket.close(1000, PEER_REMOVED)

    async def kick(self, peer_id: str) -> None:
        """Kick an agent: the same as removing its peer (close 1000 ``Peer removed``).

        Args:
            peer_id: The agent's peer id.

        Raises:
            KeyError: If there is no such peer.
        """
        await self.remove_peer(self.peer(peer_id).room_id, peer_id)

    def refresh_token(self, peer_id: str) -> str:
        """Issue a new token for a peer, as ``POST /room/{id}/peer/{id}/refresh_token``
        does (earlier tokens stay valid unless revoked).

        Args:
            peer_id: The peer.

        Returns:
            The new token.

        Raises:
            KeyError: If there is no such peer.
        """
        return self.state.refresh_token(self.peer(peer_id))

    def revoke_token(self, token: str) -> str:
        """Revoke one token: the next auth_request with it is refused with close 1000
        ``invalid token`` (a connection it already authenticated stays).

        Args:
            token: A token the server issued.

        Returns:
            The id of the peer it belonged to.

        Raises:
            KeyError: If the server never issued ``token``.
        """
        return self.state.revoke_token(token)

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
        room = self.state.room(room_id)
        if source is None:
            source = AudioSource.tone(440.0, 1.0)
        elif not isinstance(source, AudioSource):
            source = AudioSource.from_array(source, source_sample_rate)
        peer = self.state.add_webrtc_peer(room_id, simulated=True)
        track = self._publish(
            peer, room, SimulatedTrack(id=new_id(), type="audio", metadata=metadata)
        )
        speaker = SpeakingPeer(
            peer=peer, track=track, source=source, realtime=realtime, loop=loop, chunks=chunks
        )
        room.speakers[peer.id] = speaker
        if start:
            self.start_speaking(speaker)
        return speaker

    def _publish(self, peer: Peer, room: Room, track: SimulatedTrack) -> SimulatedTrack:
        """A simulated peer connects (at once) and publishes ``track``, with the
        notifications of both."""
        hub = self.state.notifications
        if not hub.is_connected(peer.id):
            hub.peer_connected(peer, room)
        peer.tracks.append(track)
        hub.track_added(peer, room, track.proto())
        return track

    async def join_person(
        self,
        room_id: str,
        *,
        audio: AudioSource | npt.ArrayLike | None = None,
        metadata: dict[str, Any] | None = None,
        source_sample_rate: int = 16000,
        realtime: bool = True,
        track_metadata: Any = None,
    ) -> Person:
        """A simulated WebRTC person joins a room: its peer is added (``PeerAdded``),
        connects (``PeerConnected``) and publishes an audio track (``TrackAdded``); given
        ``audio``, it speaks it to the room's agents at once, in real time, with voice
        activity notifications (``VadNotification`` SPEECH / SILENCE) from what it plays.

        Args:
            room_id: The room.
            audio: What it says: an :class:`AudioSource`, or mono int16 samples at
                ``source_sample_rate``; None: it stays silent.
            metadata: Peer metadata (the ``server`` part of the metadata REST shows).
            source_sample_rate: Rate of ``audio`` when it is an array.
            realtime: Pace at 20 ms per chunk (False: as fast as possible).
            track_metadata: The audio track's metadata (JSON-encodable).

        Returns:
            The person (``.peer_id``, ``.track_id``, ``wait_done(timeout)``).

        Raises:
            KeyError: If there is no such room.
            RoomFullError: If the room has ``maxPeers`` peers already.
            TypeError: If ``metadata`` is not a dict.
        """
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict or None, not {type(metadata).__name__}")
        room = self.state.room(room_id)
        if audio is not None and not isinstance(audio, AudioSource):
            audio = AudioSource.from_array(audio, source_sample_rate)
        peer = self.state.add_webrtc_peer(room_id, metadata, simulated=True)
        track = self._publish(
            peer, room, SimulatedTrack(id=new_id(), type="audio", metadata=track_metadata)
        )
        person = Person(peer=peer, track=track)
        if audio is not None:
            speaker = SpeakingPeer(peer=peer, track=track, source=audio, realtime=realtime)
            room.speakers[peer.id] = person.speaker = speaker
            self.start_speaking(speaker)
        self.log.info("local Fishjam: person %s joined room %s", peer.id, room_id)
        return person

    async def leave_person(self, peer_id: str) -> None:
        """A simulated person leaves: it stops speaking, its track goes
        (``TrackRemoved``), it disconnects (``PeerDisconnected``) and its peer is deleted
        (``PeerDeleted``). Works for any peer, as :meth:`remove_peer` does.

        Args:
            peer_id: The person's peer id.

        Raises:
            KeyError: If no room has that peer.
        """
        await self.remove_peer(self.peer(peer_id).room_id, peer_id)

    def update_track_metadata(self, peer_id: str, track_id: str, metadata: Any) -> None:
        """Change the metadata of a simulated peer's track (``TrackMetadataUpdated``).

        Args:
            peer_id: The simulated peer.
            track_id: Its track.
            metadata: The new metadata (JSON-encodable).

        Raises:
            KeyError: If the peer has no such track.
        """
        peer = self.peer(peer_id)
        track = next((t for t in peer.tracks if t.id == track_id), None)
        if track is None:
            raise KeyError(f"peer {peer_id} has no track {track_id}")
        track.metadata = metadata
        room = self.state.room(peer.room_id)
        self.state.notifications.track_metadata_updated(peer, room, track_id, metadata)

    async def flood_notifications(self, count: int, *, yield_every: int = 100) -> int:
        """Emit ``count`` notifications as fast as the loop allows, for tests of a
        notifier under load: ``PeerMetadataUpdated`` of room ``"flood"``, peer
        ``"flood-<i>"``, metadata ``{"i": i}`` (i from 0: a receiver can tell what it
        missed). They reach socket subscribers only (no room, no webhook). The loop is
        given back every ``yield_every`` notifications, so subscribers that read keep up
        and one that does not overflows (see :mod:`.notifications`).

        Args:
            count: How many.
            yield_every: Notifications between two yields to the loop.

        Returns:
            ``count``.

        Raises:
            ValueError: If ``count`` is negative or ``yield_every`` below 1.
        """
        if count < 0 or yield_every < 1:
            raise ValueError(f"count must be >= 0 and yield_every >= 1, got {count}, {yield_every}")
        hub = self.state.notifications
        message = hub.flood_message
        for i in range(count):
            hub.emit(message(i), None)
            if (i + 1) % yield_every == 0:
                await asyncio.sleep(0)
        return count

    def drop_notification_sockets(self) -> int:
        """Drop every notification socket without a close frame (clients see 1006), as
        a network failure would; notifications emitted until a client resubscribes are
        not delivered to it.

        Returns:
            How many sockets were dropped.
        """
        return self.server_sockets.drop_all()

    async def wait_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until every webhook notification queued so far was posted or given up on.

        Args:
            timeout: Seconds.

        Raises:
            TimeoutError: If some are still pending.
        """
        await self.webhooks.drain(timeout)

    def start_speaking(self, speaker: SpeakingPeer) -> None:
        """Start (or restart from the beginning) a speaking peer's stream.

        Args:
            speaker: A handle from :meth:`add_speaking_peer`.

        Raises:
            KeyError: If its room is gone.
        """
        room = self.state.room(speaker.peer.room_id)
        speaker.stop()
        speaker.done.clear()
        speaker.task = self._spawn(
            speak(speaker, room, lambda: self._running, self.state.notifications)
        )

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
        room = self.state.room(room_id)
        peer = self.state.add_webrtc_peer(room_id, simulated=True)
        seed = len(room.peers)
        track = video_track(new_id(), width, height, seed, image, content_type, metadata)
        return self._publish(peer, room, track)

    # ----------------------------------------------------------------- inspection

    def peer(self, peer_id: str) -> Peer:
        """A peer of any room.

        Raises:
            KeyError: If no room has it.
        """
        return self.state.peer(peer_id)

    def agent(self, peer_id: str) -> AgentRecord:
        """What an agent peer did, over all its connections (kept after it is deleted).

        Raises:
            KeyError: If no agent had that id.
        """
        return self.state.agent(peer_id)

    def connection(self, peer_id: str) -> AgentConnection | None:
        """The live connection of an agent, if it is connected."""
        return self.state.connection(peer_id)

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every agent socket opened so far, authenticated or not, oldest first."""
        return list(self.state.connections)

    def track_playout(self, peer_id: str, track_id: str) -> tuple[float, float]:
        """What the server has played of an agent's track and what it still holds,
        in seconds, at this instant (the latest recording of that track id; see
        :class:`~fishjam_fast.local.records.TrackRecording` for the model).

        Args:
            peer_id: The agent.
            track_id: Its track.

        Returns:
            ``(played_s, held_s)``.

        Raises:
            KeyError: If the agent or the track is unknown.
        """
        return self.state.agent(peer_id).tracks[track_id].playout()
