"""The notification hub: what the local server emits, in order, and to whom.

Every change of a room, a peer or a track goes through one :class:`NotificationHub`
method, which builds the ``fishjam.ServerMessage`` (google.protobuf, from
``fishjam_fast._proto``), serializes it once and hands the bytes to every subscriber of
the notification socket and, when the room has a ``webhookUrl``, to the webhook poster.

Order: one event loop runs the server, so notifications leave in the order the changes
happened, and every subscriber sees the same order. What the real server emits, and
when (the upstream SDK's tests wait for exactly these):

- ``RoomCreated`` when a room is created, ``RoomDeleted`` last when it is deleted (after
  ``PeerDisconnected`` / ``PeerDeleted`` of each of its peers);
- ``PeerAdded`` when a peer is created (REST or a simulated person), ``PeerConnected``
  when its socket authenticates (agent or peer socket; a simulated person at once),
  followed for an agent by ``PeerMetadataUpdated`` (the upstream SDK's agent test waits
  for it); ``TrackAdded`` when it publishes a track; ``TrackRemoved`` for each of its
  live tracks, then ``PeerDisconnected``, when it leaves or its socket closes;
  ``PeerDeleted`` when it is deleted;
- ``VadNotification`` (SPEECH / SILENCE) for the audio tracks of simulated speakers
  (see :mod:`fishjam_fast.local.vad`).

Bounds: each subscriber has a queue of at most ``max_queue`` notifications. A subscriber
that does not read (its socket does not drain) and lets its queue fill is disconnected
(``on_overflow``: the socket closes with 1011 ``notification queue overflow``) rather
than making the server buffer without bound or drop notifications silently; a client
that reconnects knows it missed some. :attr:`NotificationHub.history` keeps the latest
``history`` notifications for tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fishjam_fast._proto import notifications_pb2, server_notifications_pb2

if TYPE_CHECKING:
    from .state import Peer, Room
    from .webhooks import WebhookPoster

ServerMessage = server_notifications_pb2.ServerMessage

#: ``ServerMessage.PeerType`` of each peer type of the REST API.
PEER_TYPES = {
    "webrtc": ServerMessage.PEER_TYPE_WEBRTC,
    "agent": ServerMessage.PEER_TYPE_AGENT,
}
#: Notifications a subscriber may have queued before it is disconnected.
DEFAULT_MAX_QUEUE = 10_000
#: Notifications :attr:`NotificationHub.history` keeps.
DEFAULT_HISTORY = 10_000

log = logging.getLogger("fishjam_fast.local")


def track_proto(track_id: str, kind: str, metadata: Any) -> notifications_pb2.Track:
    """A ``fishjam.notifications.Track``.

    Args:
        track_id: The track id.
        kind: ``"audio"`` or ``"video"``.
        metadata: JSON-encodable metadata, or a JSON text already (``str``).

    Returns:
        The message.
    """
    kind_value = (
        notifications_pb2.TRACK_TYPE_VIDEO
        if kind == "video"
        else notifications_pb2.TRACK_TYPE_AUDIO
    )
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    return notifications_pb2.Track(id=track_id, type=kind_value, metadata=text)


class Subscriber:
    """One subscribed notification socket: a bounded queue of serialized messages."""

    def __init__(self, max_queue: int, on_overflow: Callable[[], None]) -> None:
        """Args: max_queue: The queue's bound. on_overflow: Called once when it overflows."""
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        #: Serialized ``ServerMessage`` frames waiting to be sent, oldest first.
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(max_queue)
        #: Set once the queue overflowed (the subscriber is being disconnected).
        self.overflowed = False
        #: Notifications queued so far.
        self.queued = 0
        self._on_overflow = on_overflow

    def offer(self, frame: bytes) -> None:
        """Queue ``frame``; on overflow, mark the subscriber and call ``on_overflow``."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            self._on_overflow()
            return
        self.queued += 1


class NotificationHub:
    """Builds, orders and fans out the server's notifications (see the module docstring)."""

    def __init__(self, *, history: int = DEFAULT_HISTORY) -> None:
        """Args: history: How many recent notifications :attr:`history` keeps."""
        #: The latest notifications emitted, oldest first (bounded).
        self.history: deque[server_notifications_pb2.ServerMessage] = deque(maxlen=history)
        #: Notifications emitted so far.
        self.emitted = 0
        #: Subscribers disconnected because their queue overflowed.
        self.overflows = 0
        #: Where room notifications are posted (set by the server).
        self.webhooks: WebhookPoster | None = None
        self._subscribers: list[Subscriber] = []
        # peers announced connected (and not yet disconnected) -> their live tracks
        self._live: dict[str, dict[str, notifications_pb2.Track]] = {}

    # ---------------------------------------------------------------- subscribers

    def subscribe(self, subscriber: Subscriber) -> None:
        """Deliver every notification from now on to ``subscriber``."""
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber`` (idempotent)."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    @property
    def subscriber_count(self) -> int:
        """Subscribers now."""
        return len(self._subscribers)

    def emit(self, message: server_notifications_pb2.ServerMessage, room: Room | None) -> None:
        """Send one notification to every subscriber and to ``room``'s webhook.

        Args:
            message: The notification.
            room: The room it concerns (its ``webhookUrl`` gets it), or None.
        """
        frame = message.SerializeToString()
        self.history.append(message)
        self.emitted += 1
        for subscriber in list(self._subscribers):
            subscriber.offer(frame)
            if subscriber.overflowed:
                self.overflows += 1
                self.unsubscribe(subscriber)
                log.warning("local Fishjam: a notification subscriber overflowed; disconnecting it")
        if room is not None and self.webhooks is not None:
            url = room.config.get("webhookUrl")
            if url:
                batch = bool(room.config.get("batchWebhookNotifications"))
                self.webhooks.post(room.id, url, batch, message, frame)

    # ---------------------------------------------------------------- rooms

    def room_created(self, room: Room) -> None:
        """``RoomCreated``."""
        self.emit(ServerMessage(room_created=ServerMessage.RoomCreated(room_id=room.id)), room)

    def room_deleted(self, room: Room) -> None:
        """``PeerDisconnected``/``PeerDeleted`` of each peer left, then ``RoomDeleted``;
        the room's webhook queue is closed after it."""
        for peer in list(room.peers.values()):
            self.peer_deleted(peer, room)
        self.emit(ServerMessage(room_deleted=ServerMessage.RoomDeleted(room_id=room.id)), room)
        if self.webhooks is not None:
            self.webhooks.room_done(room.id)

    # ---------------------------------------------------------------- peers

    def peer_added(self, peer: Peer, room: Room) -> None:
        """``PeerAdded``."""
        msg = ServerMessage.PeerAdded(
            room_id=room.id, peer_id=peer.id, peer_type=PEER_TYPES[peer.type]
        )
        self.emit(ServerMessage(peer_added=msg), room)

    def peer_connected(self, peer: Peer, room: Room) -> None:
        """``PeerConnected`` (and ``PeerMetadataUpdated`` for an agent)."""
        self._live[peer.id] = {}
        kind = PEER_TYPES[peer.type]
        msg = ServerMessage.PeerConnected(room_id=room.id, peer_id=peer.id, peer_type=kind)
        self.emit(ServerMessage(peer_connected=msg), room)
        if peer.type == "agent":
            self.peer_metadata_updated(peer, room)

    def peer_metadata_updated(self, peer: Peer, room: Room) -> None:
        """``PeerMetadataUpdated`` with the peer's metadata as JSON text."""
        msg = ServerMessage.PeerMetadataUpdated(
            room_id=room.id,
            peer_id=peer.id,
            metadata=json.dumps(peer.metadata_json()),
            peer_type=PEER_TYPES[peer.type],
        )
        self.emit(ServerMessage(peer_metadata_updated=msg), room)

    @staticmethod
    def flood_message(i: int) -> server_notifications_pb2.ServerMessage:
        """Notification ``i`` of a test flood (``LocalFishjam.flood_notifications``)."""
        msg = ServerMessage.PeerMetadataUpdated(
            room_id="flood",
            peer_id=f"flood-{i}",
            metadata=json.dumps({"i": i}),
            peer_type=ServerMessage.PEER_TYPE_WEBRTC,
        )
        return ServerMessage(peer_metadata_updated=msg)

    def is_connected(self, peer_id: str) -> bool:
        """Whether ``PeerConnected`` was emitted for the peer and ``PeerDisconnected`` not yet."""
        return peer_id in self._live

    def peer_disconnected(self, peer: Peer, room: Room) -> None:
        """``TrackRemoved`` for each live track, then ``PeerDisconnected``; nothing if the
        peer was not announced connected (idempotent)."""
        tracks = self._live.pop(peer.id, None)
        if tracks is None:
            return
        for track in tracks.values():
            self._track_removed(peer, room, track)
        kind = PEER_TYPES[peer.type]
        msg = ServerMessage.PeerDisconnected(room_id=room.id, peer_id=peer.id, peer_type=kind)
        self.emit(ServerMessage(peer_disconnected=msg), room)

    def peer_deleted(self, peer: Peer, room: Room) -> None:
        """``PeerDisconnected`` if it was connected, then ``PeerDeleted``."""
        self.peer_disconnected(peer, room)
        kind = PEER_TYPES[peer.type]
        msg = ServerMessage.PeerDeleted(room_id=room.id, peer_id=peer.id, peer_type=kind)
        self.emit(ServerMessage(peer_deleted=msg), room)

    # ---------------------------------------------------------------- tracks

    def track_added(self, peer: Peer, room: Room, track: notifications_pb2.Track) -> None:
        """``TrackAdded`` (ignored unless the peer is announced connected, or the track
        is already live)."""
        tracks = self._live.get(peer.id)
        if tracks is None or track.id in tracks:
            return
        tracks[track.id] = track
        msg = ServerMessage.TrackAdded(room_id=room.id, peer_id=peer.id, track=track)
        self.emit(ServerMessage(track_added=msg), room)

    def track_removed(self, peer: Peer, room: Room, track_id: str) -> None:
        """``TrackRemoved`` of a live track (ignored for other tracks)."""
        tracks = self._live.get(peer.id)
        track = tracks.pop(track_id, None) if tracks is not None else None
        if track is not None:
            self._track_removed(peer, room, track)

    def _track_removed(self, peer: Peer, room: Room, track: notifications_pb2.Track) -> None:
        msg = ServerMessage.TrackRemoved(room_id=room.id, peer_id=peer.id, track=track)
        self.emit(ServerMessage(track_removed=msg), room)

    def track_metadata_updated(self, peer: Peer, room: Room, track_id: str, metadata: Any) -> None:
        """``TrackMetadataUpdated`` of a live track (its stored metadata replaced).

        Raises:
            KeyError: If the peer has no such live track.
        """
        track = self._live[peer.id][track_id]
        track.metadata = json.dumps(metadata)
        msg = ServerMessage.TrackMetadataUpdated(room_id=room.id, peer_id=peer.id, track=track)
        self.emit(ServerMessage(track_metadata_updated=msg), room)

    def vad(self, peer: Peer, room: Room, track_id: str, speaking: bool) -> None:
        """``VadNotification`` SPEECH or SILENCE of a live track (ignored for others)."""
        tracks = self._live.get(peer.id)
        if tracks is None or track_id not in tracks:
            return
        status = ServerMessage.VadNotification.STATUS_SPEECH
        if not speaking:
            status = ServerMessage.VadNotification.STATUS_SILENCE
        msg = ServerMessage.VadNotification(
            room_id=room.id, peer_id=peer.id, track_id=track_id, status=status
        )
        self.emit(ServerMessage(vad_notification=msg), room)
