"""The local server's registry: rooms, peers, tokens and agent records.

:class:`ServerState` is the one owner of this state; the REST routes, the agent socket,
the control routes and :class:`~fishjam_fast.local.LocalFishjam` all go through its
methods. It outlives the listening socket: :meth:`LocalFishjam.restart` keeps it, as a
deploy of the real server keeps its rooms, peers and tokens.

The JSON shapes follow the OpenAPI models the plain SDK parses (camelCase keys:
``subscribeMode``, ``roomType``, ``maxPeers``...).
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .notifications import NotificationHub
from .records import AgentRecord, AuthAttempt, ConnectionRecord

if TYPE_CHECKING:
    from .agent_socket import AgentConnection
    from .peer_socket import PeerConnection
    from .peers import SimulatedTrack, SpeakingPeer

PeerType = Literal["agent", "webrtc"]

#: Room types the REST API accepts.
ROOM_TYPES = (
    "conference",
    "audio_only",
    "livestream",
    "full_feature",
    "broadcaster",
    "audio_only_livestream",
)
#: Output sample rates an agent may ask for.
AGENT_SAMPLE_RATES = (16000, 24000)


class RoomFullError(ValueError):
    """A room already has ``maxPeers`` peers (the REST API answers 409)."""

    def __init__(self, room_id: str, max_peers: int) -> None:
        """Args: room_id: The room. max_peers: Its limit."""
        super().__init__(f"Reached peer limit in room {room_id} ({max_peers} peers)")
        self.room_id = room_id
        self.max_peers = max_peers


def new_id() -> str:
    """A fresh id for a room or a peer (hex UUID, as Fishjam ids look)."""
    return uuid.uuid4().hex


@dataclass
class Peer:
    """A peer of a room: an agent (connects over the agent socket) or a WebRTC peer.

    WebRTC peers created through REST are ``disconnected`` until a client authenticates
    on the peer socket with their token (nobody runs WebRTC here); simulated peers
    (people, speaking or video peers) are WebRTC peers that count as connected.
    """

    #: Peer id.
    id: str
    #: Room id.
    room_id: str
    #: ``"agent"`` or ``"webrtc"``.
    type: PeerType
    #: The token the peer authenticates with.
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: Peer metadata given at creation (WebRTC peers): the ``server`` part of the
    #: metadata the REST API shows.
    metadata: dict[str, Any] | None = None
    #: ``"auto"`` or ``"manual"``.
    subscribe_mode: str = "auto"
    #: Sample rate of audio sent to this agent (agents only).
    output_sample_rate: int = 16000
    #: The live agent connection, if any.
    connection: AgentConnection | None = None
    #: The live peer socket of a WebRTC peer, if any.
    peer_socket: PeerConnection | None = None
    #: Peers this one subscribed to (``subscribe_peer``; manual subscribe mode).
    subscribed_peers: list[str] = field(default_factory=list)
    #: Tracks this one subscribed to (``subscribe_tracks``; manual subscribe mode).
    subscribed_tracks: list[str] = field(default_factory=list)
    #: Simulated tracks this peer publishes (speaking and video peers).
    tracks: list[SimulatedTrack] = field(default_factory=list)
    #: Whether this is a simulated (always connected) WebRTC peer.
    simulated: bool = False
    #: What the agent sent (agents only).
    record: AgentRecord | None = None

    @property
    def connected(self) -> bool:
        """Whether the peer counts as connected."""
        return self.simulated or self.connection is not None or self.peer_socket is not None

    def hears(self, peer_id: str, track_id: str) -> bool:
        """Whether this peer receives track ``track_id`` of peer ``peer_id``: always in
        ``auto`` subscribe mode; in ``manual`` mode only once subscribed to the peer or
        to the track."""
        if self.subscribe_mode != "manual":
            return True
        return peer_id in self.subscribed_peers or track_id in self.subscribed_tracks

    def metadata_json(self) -> dict[str, Any]:
        """The peer's metadata as the REST API and ``PeerMetadataUpdated`` show it:
        ``{"peer": <what the peer itself set: always {} here>, "server": <metadata
        given at creation, {} when none>}``."""
        return {"peer": {}, "server": dict(self.metadata) if self.metadata else {}}

    def to_json(self) -> dict[str, Any]:
        """The ``Peer`` object of the REST API."""
        tracks: list[dict[str, Any]] = [t.to_json() for t in self.tracks]
        if self.record is not None:
            for rec in self.record.tracks.values():
                if rec.ended:
                    continue
                try:
                    meta = json.loads(rec.metadata) if rec.metadata else None
                except ValueError:
                    meta = rec.metadata
                tracks.append({"id": rec.track_id, "type": "audio", "metadata": meta})
        return {
            "id": self.id,
            "metadata": self.metadata_json(),
            "status": "connected" if self.connected else "disconnected",
            "subscribeMode": self.subscribe_mode,
            "subscriptions": {
                "peers": list(self.subscribed_peers),
                "tracks": list(self.subscribed_tracks),
            },
            "tracks": tracks,
            "type": self.type,
        }


@dataclass
class Room:
    """A room: its configuration and peers (in creation order)."""

    #: Room id.
    id: str
    #: The configuration as the REST API shows it (camelCase keys).
    config: dict[str, Any]
    #: Peers by id.
    peers: dict[str, Peer] = field(default_factory=dict)
    #: The room's speaking peers by peer id (each owns its speaking task).
    speakers: dict[str, SpeakingPeer] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``Room`` object of the REST API."""
        return {
            "config": dict(self.config),
            "id": self.id,
            "peers": [p.to_json() for p in self.peers.values()],
        }


def room_config(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a ``POST /room`` body and fill in the defaults the server shows.

    Args:
        body: The decoded JSON body (``RoomConfig``).

    Returns:
        The configuration to store.

    Raises:
        ValueError: With the REST error text, if a field is invalid.
    """
    room_type = body.get("roomType", "conference")
    if room_type not in ROOM_TYPES:
        raise ValueError(f"Invalid room type: {room_type}")
    max_peers = body.get("maxPeers")
    if max_peers is not None and (not isinstance(max_peers, int) or max_peers < 0):
        raise ValueError("maxPeers must be a number")
    codec = body.get("videoCodec")
    if codec not in (None, "h264", "vp8"):
        raise ValueError("videoCodec must be 'h264' or 'vp8'")
    webhook = body.get("webhookUrl")
    if webhook is not None and not isinstance(webhook, str):
        raise ValueError("webhookUrl must be a string")
    # the real server answers maxPeers 0 (no limit) and videoCodec "h264" by default
    return {
        "batchWebhookNotifications": bool(body.get("batchWebhookNotifications", False)),
        "maxPeers": max_peers or 0,
        "public": bool(body.get("public", False)),
        "roomType": room_type,
        "videoCodec": codec or "h264",
        "webhookUrl": webhook,
    }


def agent_sample_rate(options: dict[str, Any]) -> int:
    """The output sample rate from an agent peer's ``options``.

    Accepts the API's camelCase (``{"output": {"audioSampleRate": 24000}}``) and the
    snake_case spelling (``audio_sample_rate``).

    Args:
        options: The ``options`` object of ``POST /room/{id}/peer``.

    Returns:
        16000 or 24000 (16000 when not given).

    Raises:
        ValueError: With the REST error text, if the format or rate is unsupported.
    """
    output = options.get("output") or {}
    if not isinstance(output, dict):
        raise ValueError("Invalid agent output options")
    fmt = output.get("audioFormat", output.get("audio_format", "pcm16"))
    if fmt != "pcm16":
        raise ValueError(f"Unsupported audio format: {fmt}")
    rate = output.get("audioSampleRate", output.get("audio_sample_rate", 16000))
    if rate not in AGENT_SAMPLE_RATES:
        raise ValueError(f"Unsupported audio sample rate: {rate}")
    return int(rate)


class ServerState:
    """Rooms, peers, tokens and what agents did: the registry every part of the server
    reads and changes through these methods.

    Lookups raise ``KeyError`` for an unknown id; the REST routes turn that into 404.
    """

    def __init__(self) -> None:
        """An empty registry (and its notification hub)."""
        #: Every change of a room, peer or track is notified through it.
        self.notifications = NotificationHub()
        #: Rooms by id.
        self.rooms: dict[str, Room] = {}
        #: Agent records by peer id, kept after the peer or its room is deleted.
        self.agents: dict[str, AgentRecord] = {}
        #: Every agent socket opened so far, authenticated or not, oldest first.
        self.connections: list[ConnectionRecord] = []
        #: Every auth_request answered, whatever its token, oldest first.
        self.auth_attempts: list[AuthAttempt] = []
        self._tokens: dict[str, tuple[str, str]] = {}  # token -> (room id, peer id)
        self._revoked: set[str] = set()

    # -- rooms and peers

    def create_room(self, config: dict[str, Any]) -> Room:
        """Add a room with a validated ``config`` (see :func:`room_config`)."""
        room = Room(id=new_id(), config=config)
        self.rooms[room.id] = room
        self.notifications.room_created(room)
        return room

    def room(self, room_id: str) -> Room:
        """The room ``room_id``.

        Raises:
            KeyError: If there is no such room.
        """
        return self.rooms[room_id]

    def peer(self, peer_id: str, room_id: str | None = None) -> Peer:
        """The peer ``peer_id`` (of ``room_id`` when given, else of any room).

        Raises:
            KeyError: If there is no such room or peer.
        """
        if room_id is not None:
            return self.rooms[room_id].peers[peer_id]
        for room in self.rooms.values():
            peer = room.peers.get(peer_id)
            if peer is not None:
                return peer
        raise KeyError(peer_id)

    def add_agent(self, room_id: str, sample_rate: int, subscribe_mode: str = "auto") -> Peer:
        """Add an agent peer (and its :class:`AgentRecord`) to a room.

        Raises:
            KeyError: If there is no such room.
            RoomFullError: If the room has ``maxPeers`` peers already.
        """
        room = self.rooms[room_id]
        self._check_room_space(room)
        peer = Peer(id=new_id(), room_id=room.id, type="agent", subscribe_mode=subscribe_mode)
        peer.output_sample_rate = sample_rate
        peer.record = self.agents[peer.id] = AgentRecord(peer_id=peer.id, room_id=room.id)
        return self._add_peer(room, peer)

    def add_webrtc_peer(
        self,
        room_id: str,
        metadata: dict[str, Any] | None = None,
        subscribe_mode: str = "auto",
        *,
        simulated: bool = False,
    ) -> Peer:
        """Add a WebRTC peer (``simulated``: one of ours, which counts as connected).

        Raises:
            KeyError: If there is no such room.
            RoomFullError: If the room has ``maxPeers`` peers already.
        """
        room = self.rooms[room_id]
        self._check_room_space(room)
        peer = Peer(id=new_id(), room_id=room.id, type="webrtc", subscribe_mode=subscribe_mode)
        peer.metadata = metadata
        peer.simulated = simulated
        return self._add_peer(room, peer)

    @staticmethod
    def _check_room_space(room: Room) -> None:
        limit = room.config.get("maxPeers") or 0
        if limit and len(room.peers) >= limit:
            raise RoomFullError(room.id, limit)

    def _add_peer(self, room: Room, peer: Peer) -> Peer:
        room.peers[peer.id] = peer
        self._tokens[peer.token] = (peer.room_id, peer.id)
        self.notifications.peer_added(peer, room)
        return peer

    def pop_peer(self, room_id: str, peer_id: str) -> tuple[Peer, SpeakingPeer | None]:
        """Remove a peer from its room (its tokens stop authenticating: peer not found).

        Returns:
            The peer, and its speaking handle if it was a speaking peer (the caller
            stops it).

        Raises:
            KeyError: If there is no such room or peer.
        """
        room = self.rooms[room_id]
        peer = room.peers[peer_id]
        self.notifications.peer_deleted(peer, room)
        del room.peers[peer_id]
        return peer, room.speakers.pop(peer_id, None)

    def pop_room(self, room_id: str) -> Room:
        """Remove a room (the caller stops its speakers and closes its agents).

        Raises:
            KeyError: If there is no such room.
        """
        room = self.rooms[room_id]
        self.notifications.room_deleted(room)
        return self.rooms.pop(room_id)

    def agent(self, peer_id: str) -> AgentRecord:
        """What an agent did, over all its connections (kept after it is deleted).

        Raises:
            KeyError: If no agent had that id.
        """
        return self.agents[peer_id]

    def connection(self, peer_id: str) -> AgentConnection | None:
        """The live connection of an agent, if it is connected (None for unknown ids)."""
        try:
            return self.peer(peer_id).connection
        except KeyError:
            return None

    def video_image(self, room_id: str, track_id: str) -> tuple[str, bytes] | None:
        """``(content_type, image)`` of a simulated video track in a room, else None."""
        room = self.rooms.get(room_id)
        if room is None:
            return None
        for peer in room.peers.values():
            for track in peer.tracks:
                if track.id == track_id and track.type == "video":
                    return track.content_type, track.image
        return None

    # -- tokens

    def refresh_token(self, peer: Peer) -> str:
        """Issue a new token for ``peer`` (earlier ones stay valid, as tokens here never
        expire), as ``POST /room/{id}/peer/{id}/refresh_token`` does.

        Returns:
            The new token (also ``peer.token``).
        """
        peer.token = secrets.token_urlsafe(24)
        self._tokens[peer.token] = (peer.room_id, peer.id)
        return peer.token

    def revoke_token(self, token: str) -> str:
        """Make ``token`` fail from its next auth_request on (close 1000 ``invalid token``);
        a connection it already authenticated stays.

        Returns:
            The id of the peer the token belonged to.

        Raises:
            KeyError: If the server never issued ``token``.
        """
        _, peer_id = self._tokens[token]
        self._revoked.add(token)
        return peer_id

    def authenticate(self, token: str, at: float) -> tuple[Peer | None, str]:
        """Check an auth_request's token and record the attempt (server-wide and on the
        agent's record).

        Args:
            token: The token sent.
            at: ``time.monotonic()`` of the request.

        Returns:
            The agent peer it authenticates, or None and the real server's close reason
            (``missing token``, ``invalid token``, ``room not found``, ``peer not
            found``, ``peer already connected``).
        """
        ids = self._tokens.get(token)
        peer, reason = self._check(token, ids)
        attempt = AuthAttempt(at, token, peer is not None, reason, ids[1] if ids else None)
        self.auth_attempts.append(attempt)
        record = self.agents.get(ids[1]) if ids else None
        if record is not None:
            record.auth_attempts.append(attempt)
        return peer, reason

    def authenticate_peer(self, token: str) -> tuple[Peer | None, str]:
        """Check a WebRTC peer socket's token (not recorded).

        Returns:
            The WebRTC peer it authenticates, or None and the close reason (as for
            agents; an agent's token is ``invalid token`` here).
        """
        return self._check(token, self._tokens.get(token), "webrtc")

    def _check(
        self, token: str, ids: tuple[str, str] | None, peer_type: str = "agent"
    ) -> tuple[Peer | None, str]:
        """The peer ``token`` authenticates on the ``peer_type`` peer's socket, or None
        and the close reason the real Fishjam gives (another type's token is invalid)."""
        if not token:
            return None, "missing token"
        if ids is None or token in self._revoked:
            return None, "invalid token"
        room = self.rooms.get(ids[0])
        if room is None:
            return None, "room not found"
        peer = room.peers.get(ids[1])
        if peer is None:
            return None, "peer not found"
        # a simulated person is connected without a socket: its token opens none
        if peer.type != peer_type or peer.simulated:
            return None, "invalid token"
        socket = peer.connection if peer_type == "agent" else peer.peer_socket
        if socket is not None:
            return None, "peer already connected"
        return peer, ""
