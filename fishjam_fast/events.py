"""Fishjam's server notifications, typed: one class per ``ServerMessage`` member.

The names, fields and enum members are the plain SDK's (``fishjam.events`` and its
generated ``fishjam.events._protos.fishjam``), so ``match`` statements and attribute
access written for it keep working; every class here is a slotted dataclass (value
equality, a readable repr, positional and keyword construction). A notification's
track is :class:`~fishjam_fast.Track` (``id``, ``type``, ``metadata``), the class the
agent's messages use too.

Besides the plain SDK's notifications, the protocol's voice activity
(:class:`ServerMessageVadNotification`) and track forwarding ones are here: the plain
Python SDK drops them, the JS server SDK emits them. :class:`NotificationGap` is
fishjam_fast's own: :class:`~fishjam_fast.FishjamNotifier` hands it on right after it
reconnected, because notifications sent while it was away are lost.

Decoding (native in ``_ext``, or google.protobuf in the fallback) follows protobuf:
unknown fields are skipped, a repeated scalar field's last value wins, a repeated
sub-message is merged, enums are open (a number the enum lacks stays a plain int).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ._codec import Track
from .enums import TrackEncoding, TrackType

__all__ = [
    "NotificationGap",
    "ServerMessageAuthRequest",
    "ServerMessageAuthenticated",
    "ServerMessageChannelAdded",
    "ServerMessageChannelRemoved",
    "ServerMessageComponentCrashed",
    "ServerMessageEventType",
    "ServerMessageHlsPlayable",
    "ServerMessageHlsUploadCrashed",
    "ServerMessageHlsUploaded",
    "ServerMessagePeerAdded",
    "ServerMessagePeerConnected",
    "ServerMessagePeerCrashed",
    "ServerMessagePeerDeleted",
    "ServerMessagePeerDisconnected",
    "ServerMessagePeerMetadataUpdated",
    "ServerMessagePeerType",
    "ServerMessageRecordingStatusChanged",
    "ServerMessageRecordingStatusChangedStatus",
    "ServerMessageRoomCrashed",
    "ServerMessageRoomCreated",
    "ServerMessageRoomDeleted",
    "ServerMessageStreamConnected",
    "ServerMessageStreamDisconnected",
    "ServerMessageStreamerConnected",
    "ServerMessageStreamerDisconnected",
    "ServerMessageSubscribeRequest",
    "ServerMessageSubscribeResponse",
    "ServerMessageTrackAdded",
    "ServerMessageTrackForwarding",
    "ServerMessageTrackForwardingRemoved",
    "ServerMessageTrackMetadataUpdated",
    "ServerMessageTrackRemoved",
    "ServerMessageVadNotification",
    "ServerMessageVadNotificationStatus",
    "ServerMessageViewerConnected",
    "ServerMessageViewerDisconnected",
    "Track",
    "TrackEncoding",
    "TrackType",
    "UnknownNotification",
]


class ServerMessagePeerType(IntEnum):
    """The kind of a peer (``ServerMessage.PeerType``)."""

    PEER_TYPE_UNSPECIFIED = 0
    PEER_TYPE_WEBRTC = 1
    PEER_TYPE_AGENT = 2
    PEER_TYPE_VAPI = 3


class ServerMessageEventType(IntEnum):
    """A group of messages a server client subscribes to (``ServerMessage.EventType``)."""

    EVENT_TYPE_UNSPECIFIED = 0
    EVENT_TYPE_SERVER_NOTIFICATION = 1


class ServerMessageVadNotificationStatus(IntEnum):
    """Voice activity on a track (``ServerMessage.VadNotification.Status``)."""

    STATUS_UNSPECIFIED = 0
    STATUS_SILENCE = 1
    STATUS_SPEECH = 2


class ServerMessageRecordingStatusChangedStatus(IntEnum):
    """A recording's status (``ServerMessage.RecordingStatusChanged.Status``)."""

    STATUS_UNSPECIFIED = 0
    STATUS_ACTIVE = 1
    STATUS_FINISHED = 2
    STATUS_AVAILABLE = 3
    STATUS_FAILED = 4


_PEER_UNSPECIFIED = ServerMessagePeerType.PEER_TYPE_UNSPECIFIED
PeerType = ServerMessagePeerType | int
"""A peer type: the enum member, or the plain int of a number the enum lacks."""


def _track() -> Track:
    return Track()


# -- rooms ------------------------------------------------------------------------------


@dataclass(slots=True)
class ServerMessageRoomCreated:
    """A room was created."""

    room_id: str = ""


@dataclass(slots=True)
class ServerMessageRoomDeleted:
    """A room was deleted."""

    room_id: str = ""


@dataclass(slots=True)
class ServerMessageRoomCrashed:
    """A room crashed."""

    room_id: str = ""


# -- peers ------------------------------------------------------------------------------


@dataclass(slots=True)
class ServerMessagePeerAdded:
    """A peer was added to a room (created over REST)."""

    room_id: str = ""
    peer_id: str = ""
    peer_type: PeerType = _PEER_UNSPECIFIED


@dataclass(slots=True)
class ServerMessagePeerDeleted:
    """A peer was removed from a room."""

    room_id: str = ""
    peer_id: str = ""
    peer_type: PeerType = _PEER_UNSPECIFIED


@dataclass(slots=True)
class ServerMessagePeerConnected:
    """A peer's socket authenticated."""

    room_id: str = ""
    peer_id: str = ""
    peer_type: PeerType = _PEER_UNSPECIFIED


@dataclass(slots=True)
class ServerMessagePeerDisconnected:
    """A peer's socket closed."""

    room_id: str = ""
    peer_id: str = ""
    peer_type: PeerType = _PEER_UNSPECIFIED


@dataclass(slots=True)
class ServerMessagePeerCrashed:
    """A peer crashed; ``reason`` says why."""

    room_id: str = ""
    peer_id: str = ""
    reason: str = ""
    peer_type: PeerType = _PEER_UNSPECIFIED


@dataclass(slots=True)
class ServerMessagePeerMetadataUpdated:
    """A peer's metadata changed (``metadata``: JSON text)."""

    room_id: str = ""
    peer_id: str = ""
    metadata: str = ""
    peer_type: PeerType = _PEER_UNSPECIFIED


@dataclass(slots=True)
class ServerMessageComponentCrashed:
    """A component crashed."""

    room_id: str = ""
    component_id: str = ""


# -- tracks -----------------------------------------------------------------------------
# peer_id and component_id form the oneof `endpoint_info`: setting one clears the other


@dataclass(slots=True)
class ServerMessageTrackAdded:
    """A peer or component published a track."""

    room_id: str = ""
    peer_id: str = ""
    component_id: str = ""
    track: Track = field(default_factory=_track)


@dataclass(slots=True)
class ServerMessageTrackRemoved:
    """A track was removed."""

    room_id: str = ""
    peer_id: str = ""
    component_id: str = ""
    track: Track = field(default_factory=_track)


@dataclass(slots=True)
class ServerMessageTrackMetadataUpdated:
    """A track's metadata changed."""

    room_id: str = ""
    peer_id: str = ""
    component_id: str = ""
    track: Track = field(default_factory=_track)


@dataclass(slots=True)
class ServerMessageVadNotification:
    """The server's voice activity detection on one audio track changed."""

    room_id: str = ""
    peer_id: str = ""
    track_id: str = ""
    status: ServerMessageVadNotificationStatus | int = (
        ServerMessageVadNotificationStatus.STATUS_UNSPECIFIED
    )


@dataclass(slots=True)
class ServerMessageTrackForwarding:
    """An upsert of a track forwarding to a composition (absent tracks: None)."""

    room_id: str = ""
    peer_id: str = ""
    composition_url: str = ""
    input_id: str = ""
    audio_track: Track | None = None
    video_track: Track | None = None


@dataclass(slots=True)
class ServerMessageTrackForwardingRemoved:
    """A track forwarding was removed."""

    room_id: str = ""
    peer_id: str = ""
    composition_url: str = ""
    input_id: str = ""


@dataclass(slots=True)
class ServerMessageChannelAdded:
    """A data channel was added."""

    room_id: str = ""
    peer_id: str = ""
    component_id: str = ""
    channel_id: str = ""


@dataclass(slots=True)
class ServerMessageChannelRemoved:
    """A data channel was removed."""

    room_id: str = ""
    peer_id: str = ""
    component_id: str = ""
    channel_id: str = ""


# -- HLS, streams, viewers, recordings --------------------------------------------------


@dataclass(slots=True)
class ServerMessageHlsPlayable:
    """An HLS stream became playable."""

    room_id: str = ""
    component_id: str = ""


@dataclass(slots=True)
class ServerMessageHlsUploaded:
    """An HLS recording was uploaded."""

    room_id: str = ""


@dataclass(slots=True)
class ServerMessageHlsUploadCrashed:
    """An HLS upload crashed."""

    room_id: str = ""


@dataclass(slots=True)
class ServerMessageStreamConnected:
    """A livestream connected."""

    stream_id: str = ""


@dataclass(slots=True)
class ServerMessageStreamDisconnected:
    """A livestream disconnected."""

    stream_id: str = ""


@dataclass(slots=True)
class ServerMessageViewerConnected:
    """A livestream viewer connected."""

    stream_id: str = ""
    viewer_id: str = ""


@dataclass(slots=True)
class ServerMessageViewerDisconnected:
    """A livestream viewer disconnected."""

    stream_id: str = ""
    viewer_id: str = ""


@dataclass(slots=True)
class ServerMessageStreamerConnected:
    """A livestream's streamer connected."""

    stream_id: str = ""
    streamer_id: str = ""


@dataclass(slots=True)
class ServerMessageStreamerDisconnected:
    """A livestream's streamer disconnected."""

    stream_id: str = ""
    streamer_id: str = ""


@dataclass(slots=True)
class ServerMessageRecordingStatusChanged:
    """A recording's status changed."""

    recording_id: str = ""
    status: ServerMessageRecordingStatusChangedStatus | int = (
        ServerMessageRecordingStatusChangedStatus.STATUS_UNSPECIFIED
    )
    metadata: str = ""


# -- the socket's control messages (not notifications) ----------------------------------


@dataclass(slots=True)
class ServerMessageAuthenticated:
    """The server accepted the management token."""


@dataclass(slots=True)
class ServerMessageAuthRequest:
    """A client's authentication request."""

    token: str = ""


@dataclass(slots=True)
class ServerMessageSubscribeRequest:
    """A client's subscription request."""

    event_type: ServerMessageEventType | int = ServerMessageEventType.EVENT_TYPE_UNSPECIFIED


@dataclass(slots=True)
class ServerMessageSubscribeResponse:
    """The server's answer to a subscription request."""

    event_type: ServerMessageEventType | int = ServerMessageEventType.EVENT_TYPE_UNSPECIFIED


# -- fishjam_fast's own -----------------------------------------------------------------


@dataclass(slots=True)
class UnknownNotification:
    """A ``ServerMessage`` this version cannot type: a member it does not know (a newer
    server), an empty message (``field_number`` 0), or a batch nested in a batch
    (``field_number`` 33; Fishjam never nests them). The decoders hand it to the
    notifier, which skips and counts it (``stats.skipped``); it never reaches
    handlers, and :func:`~fishjam_fast.decode_server_notifications` leaves it out."""

    field_number: int = 0


@dataclass(frozen=True, slots=True)
class NotificationGap:
    """The notifier was disconnected and is back: what the server sent in between is
    lost. Reconcile over REST (list the rooms and peers) if the application keeps state.

    Attributes:
        disconnected_at: ``time.time()`` when the connection was lost.
        reconnected_at: ``time.time()`` when the notifier was subscribed again.
        cause: Why the connection was lost (the close code and reason, or the error).
    """

    disconnected_at: float
    reconnected_at: float
    cause: str


CONTROL_MESSAGES = (
    ServerMessageAuthenticated,
    ServerMessageAuthRequest,
    ServerMessageSubscribeRequest,
    ServerMessageSubscribeResponse,
)
"""Members that are the socket's handshake, not notifications."""


# -- the schema both decoders read ------------------------------------------------------
# Every member's fields are numbered 1, 2, 3... in the order of the dataclass fields, so a
# member is its class and one kind per field: a str kind below, or for an enum field the
# tuple of the enum's members (indexed by value: every enum here is dense from 0).

K_STR = "str"
K_ENDPOINT = "endpoint"  # a str of the oneof endpoint_info (fields 2 and 3)
K_TRACK = "track"  # a fishjam.notifications.Track, Track() when absent
K_OPT_TRACK = "optional_track"  # the same, None when absent
K_BATCH = "batch"  # repeated ServerMessage (NotificationBatch.notifications)

BATCH_FIELD = 33
"""The ``notification_batch`` member's field number."""

_PEER = tuple(ServerMessagePeerType)
_ENDPOINT = (K_STR, K_ENDPOINT, K_ENDPOINT)
_S, _S2, _S4 = (K_STR,), (K_STR, K_STR), (K_STR,) * 4

SCHEMA: dict[int, tuple[type, tuple[Any, ...]]] = {
    1: (ServerMessageRoomCrashed, _S),
    2: (ServerMessagePeerConnected, (*_S2, _PEER)),
    3: (ServerMessagePeerDisconnected, (*_S2, _PEER)),
    4: (ServerMessagePeerCrashed, (K_STR, K_STR, K_STR, _PEER)),
    5: (ServerMessageComponentCrashed, _S2),
    6: (ServerMessageAuthenticated, ()),
    7: (ServerMessageAuthRequest, _S),
    8: (ServerMessageSubscribeRequest, (tuple(ServerMessageEventType),)),
    9: (ServerMessageSubscribeResponse, (tuple(ServerMessageEventType),)),
    10: (ServerMessageRoomCreated, _S),
    11: (ServerMessageRoomDeleted, _S),
    13: (ServerMessageHlsPlayable, _S2),
    14: (ServerMessageHlsUploaded, _S),
    15: (ServerMessageHlsUploadCrashed, _S),
    16: (ServerMessagePeerMetadataUpdated, (K_STR, K_STR, K_STR, _PEER)),
    17: (ServerMessageTrackAdded, (*_ENDPOINT, K_TRACK)),
    18: (ServerMessageTrackRemoved, (*_ENDPOINT, K_TRACK)),
    19: (ServerMessageTrackMetadataUpdated, (*_ENDPOINT, K_TRACK)),
    20: (ServerMessagePeerAdded, (*_S2, _PEER)),
    21: (ServerMessagePeerDeleted, (*_S2, _PEER)),
    22: (ServerMessageStreamConnected, _S),
    23: (ServerMessageStreamDisconnected, _S),
    24: (ServerMessageViewerConnected, _S2),
    25: (ServerMessageViewerDisconnected, _S2),
    26: (ServerMessageStreamerConnected, _S2),
    27: (ServerMessageStreamerDisconnected, _S2),
    28: (ServerMessageChannelAdded, (*_ENDPOINT, K_STR)),
    29: (ServerMessageChannelRemoved, (*_ENDPOINT, K_STR)),
    30: (ServerMessageTrackForwarding, (*_S4, K_OPT_TRACK, K_OPT_TRACK)),
    31: (ServerMessageTrackForwardingRemoved, _S4),
    32: (
        ServerMessageVadNotification,
        (K_STR, K_STR, K_STR, tuple(ServerMessageVadNotificationStatus)),
    ),
    BATCH_FIELD: (list, (K_BATCH,)),  # decoded as the list of its notifications
    34: (
        ServerMessageRecordingStatusChanged,
        (K_STR, tuple(ServerMessageRecordingStatusChangedStatus), K_STR),
    ),
}
"""``ServerMessage``'s oneof ``content``: field number -> (class, kind of each field)."""
