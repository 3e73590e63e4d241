"""Dispatch rules: which jobs should run, from Fishjam's notifications and its REST state.

A rule is fed every server notification (``fishjam_fast.events`` objects, or anything
with the same class names and fields) and answers with :class:`StartJob` and
:class:`EndJob` actions. After a gap in the notifications, the server lists the rooms
over REST and calls :meth:`DispatchRule.reset`; :meth:`DispatchRule.desired` then says
which jobs should run, and the server starts the missing ones and ends the others.

The default, :class:`OneAgentPerRoom`: one job per room while at least one WebRTC peer
is connected to it; started when the first connects, ended when the last disconnects
or leaves, or the room is deleted or crashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..rest import Room
from .job import JobRequest

__all__ = ["DispatchRule", "EndJob", "OneAgentPerRoom", "StartJob", "notification_name"]

PEER_TYPE_WEBRTC = 1
"""``ServerMessagePeerType.PEER_TYPE_WEBRTC`` (protos: ``ServerMessage.PeerType``)."""


@dataclass(frozen=True)
class StartJob:
    """A job that should run (if none with its key runs yet)."""

    request: JobRequest


@dataclass(frozen=True)
class EndJob:
    """The job with this key should end."""

    key: str


Action = StartJob | EndJob


@runtime_checkable
class DispatchRule(Protocol):
    """What the server asks of a dispatch rule (replaceable: ``AgentServer(rule=...)``)."""

    def on_notification(self, notification: Any) -> Iterable[Action]:
        """Updates the rule's view with one notification; returns what to start or end."""
        ...

    def reset(self, rooms: Sequence[Room]) -> None:
        """Replaces the rule's view with the rooms as REST describes them (after a gap)."""
        ...

    def desired(self) -> Mapping[str, JobRequest]:
        """The jobs that should run now, by key."""
        ...


def notification_name(notification: Any) -> str:
    """The notification's type name without the ``ServerMessage`` prefix
    (``"PeerConnected"``), for fishjam_fast's and the plain SDK's classes alike."""
    return type(notification).__name__.removeprefix("ServerMessage")


def _is_webrtc(peer_type: Any) -> bool:
    # an IntEnum (fishjam_fast.events, betterproto) or a plain int
    try:
        return int(peer_type) == PEER_TYPE_WEBRTC
    except (TypeError, ValueError):
        return False


class OneAgentPerRoom:
    """One job per room while at least one WebRTC peer is connected to it.

    The job's key is the room id, its ``peer_id`` the WebRTC peer whose connection
    made the room need an agent, its metadata None.
    """

    def __init__(self) -> None:
        # room id -> the connected WebRTC peers, in order of connection
        self._rooms: dict[str, dict[str, None]] = {}
        self._first: dict[str, str] = {}

    def on_notification(self, notification: Any) -> list[Action]:
        """See :meth:`DispatchRule.on_notification`."""
        name = notification_name(notification)
        room_id = getattr(notification, "room_id", None)
        if not isinstance(room_id, str) or not room_id:
            return []
        if name == "PeerConnected" and _is_webrtc(getattr(notification, "peer_type", None)):
            peers = self._rooms.setdefault(room_id, {})
            was_empty = not peers
            peers[notification.peer_id] = None
            if was_empty:
                self._first[room_id] = notification.peer_id
                return [StartJob(self._request(room_id))]
            return []
        if name in ("PeerDisconnected", "PeerDeleted", "PeerCrashed"):
            present = self._rooms.get(room_id)
            if present is None or notification.peer_id not in present:
                return []
            del present[notification.peer_id]
            if not present:
                return self._forget(room_id)
            return []
        if name in ("RoomDeleted", "RoomCrashed"):
            return self._forget(room_id)
        return []

    def _request(self, room_id: str) -> JobRequest:
        return JobRequest(room_id=room_id, peer_id=self._first.get(room_id), key=room_id)

    def _forget(self, room_id: str) -> list[Action]:
        had = self._rooms.pop(room_id, None)
        self._first.pop(room_id, None)
        return [EndJob(room_id)] if had is not None else []

    def reset(self, rooms: Sequence[Room]) -> None:
        """See :meth:`DispatchRule.reset`: connected ``webrtc`` peers count."""
        self._rooms = {}
        self._first = {}
        for room in rooms:
            peers = {
                p.id: None for p in room.peers if p.type == "webrtc" and p.status == "connected"
            }
            if peers:
                self._rooms[room.id] = peers
                self._first[room.id] = next(iter(peers))

    def desired(self) -> dict[str, JobRequest]:
        """See :meth:`DispatchRule.desired`."""
        return {room_id: self._request(room_id) for room_id in self._rooms}
