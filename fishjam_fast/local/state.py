"""Rooms and peers of the local server, and their JSON as the Fishjam REST API shows it.

The JSON shapes follow the OpenAPI models the plain SDK parses (camelCase keys:
``subscribeMode``, ``roomType``, ``maxPeers``...).
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .records import AgentRecord

if TYPE_CHECKING:
    from .agent_socket import AgentConnection
    from .peers import SimulatedTrack

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


def new_id() -> str:
    """A fresh id for a room or a peer (hex UUID, as Fishjam ids look)."""
    return uuid.uuid4().hex


@dataclass
class Peer:
    """A peer of a room: an agent (connects over the agent socket) or a WebRTC peer.

    WebRTC peers created through REST stay ``disconnected`` (nobody runs WebRTC here);
    simulated peers (speaking or video) are WebRTC peers that count as connected.
    """

    #: Peer id.
    id: str
    #: Room id.
    room_id: str
    #: ``"agent"`` or ``"webrtc"``.
    type: PeerType
    #: The token the peer authenticates with.
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: Peer metadata (WebRTC peers).
    metadata: dict[str, Any] | None = None
    #: ``"auto"`` or ``"manual"``.
    subscribe_mode: str = "auto"
    #: Sample rate of audio sent to this agent (agents only).
    output_sample_rate: int = 16000
    #: The live agent connection, if any.
    connection: AgentConnection | None = None
    #: Simulated tracks this peer publishes (speaking and video peers).
    tracks: list[SimulatedTrack] = field(default_factory=list)
    #: Whether this is a simulated (always connected) WebRTC peer.
    simulated: bool = False
    #: What the agent sent (agents only).
    record: AgentRecord | None = None

    @property
    def connected(self) -> bool:
        """Whether the peer counts as connected."""
        return self.simulated or self.connection is not None

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
            "metadata": self.metadata,
            "status": "connected" if self.connected else "disconnected",
            "subscribeMode": self.subscribe_mode,
            "subscriptions": {"peers": [], "tracks": []},
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
    config: dict[str, Any] = {
        "batchWebhookNotifications": bool(body.get("batchWebhookNotifications", False)),
        "maxPeers": max_peers,
        "public": bool(body.get("public", False)),
        "roomType": room_type,
        "webhookUrl": webhook,
    }
    if codec is not None:
        # the SDK parses videoCodec only when present, and rejects null
        config["videoCodec"] = codec
    return config


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
