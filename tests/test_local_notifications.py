"""The local server's notification socket, judged by the plain SDK's FishjamNotifier.

The scripted room life (create, agent joins, person joins and speaks, person leaves,
room deleted) must reach the unchanged plain notifier in the real server's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets
from fishjam import FishjamClient, FishjamNotifier
from fishjam.events import (
    ServerMessagePeerAdded,
    ServerMessagePeerConnected,
    ServerMessagePeerDeleted,
    ServerMessagePeerDisconnected,
    ServerMessagePeerMetadataUpdated,
    ServerMessagePeerType,
    ServerMessageRoomCreated,
    ServerMessageRoomDeleted,
    ServerMessageTrackAdded,
    ServerMessageTrackMetadataUpdated,
    ServerMessageTrackRemoved,
)
from websockets.exceptions import ConnectionClosed

import fishjam_fast
from fishjam_fast._proto import server_notifications_pb2
from fishjam_fast.local import AudioSource, LocalFishjam

ServerMessage = server_notifications_pb2.ServerMessage
TIMEOUT = 10.0
AGENT = ServerMessagePeerType.PEER_TYPE_AGENT
WEBRTC = ServerMessagePeerType.PEER_TYPE_WEBRTC


class Collected:
    """What a plain FishjamNotifier's handler saw."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.changed = asyncio.Event()

    def add(self, notification: Any) -> None:
        self.items.append(notification)
        self.changed.set()

    async def until(self, predicate: Callable[[list[Any]], bool], timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.items):
                self.changed.clear()
                await self.changed.wait()

    def of_room(self, room_id: str) -> list[Any]:
        return [n for n in self.items if getattr(n, "room_id", None) == room_id]


@contextlib.asynccontextmanager
async def plain_notifier(url: str, token: str) -> AsyncIterator[Collected]:
    notifier = FishjamNotifier(url, token)
    seen = Collected()
    notifier.on_server_notification(seen.add)
    task = asyncio.create_task(notifier.connect())
    try:
        await asyncio.wait_for(notifier.wait_ready(), TIMEOUT)
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def kinds(items: list[Any]) -> list[str]:
    return [type(n).__name__.removeprefix("ServerMessage") for n in items]


async def test_plain_notifier_sees_the_scripted_room_life_in_order(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    async with plain_notifier(fj.url, fj.management_token) as seen:
        room = await asyncio.to_thread(client.create_room)
        agent = await asyncio.to_thread(client.create_agent, room.id)
        async with agent.connect() as session:
            person = await fj.join_person(
                room.id, audio=AudioSource.tone(440.0, 0.4), metadata={"name": "Ann"}
            )
            heard = 0
            async for _ in session.receive():
                heard += 1
                if heard == 20:
                    break
            await person.wait_done(TIMEOUT)
            await fj.leave_person(person.peer_id)
        await fj.wait_disconnected(agent.id, timeout=TIMEOUT)
        await asyncio.to_thread(client.delete_room, room.id)
        await seen.until(lambda items: any(isinstance(n, ServerMessageRoomDeleted) for n in items))

    # the plain SDK drops VadNotification: it sees everything else, in this order
    got = seen.of_room(room.id)
    assert kinds(got) == [
        "RoomCreated",
        "PeerAdded",  # the agent, over REST
        "PeerConnected",  # its socket authenticated
        "PeerMetadataUpdated",
        "PeerAdded",  # the person
        "PeerConnected",
        "TrackAdded",
        "TrackRemoved",  # the person leaves
        "PeerDisconnected",
        "PeerDeleted",
        "PeerDisconnected",  # the agent's socket closed
        "PeerDeleted",  # the room goes with its agent
        "RoomDeleted",
    ]
    assert [(n.peer_id, n.peer_type) for n in got[1:4]] == [(agent.id, AGENT)] * 3
    assert [(n.peer_id, n.peer_type) for n in got[4:6]] == [(person.peer_id, WEBRTC)] * 2
    assert got[6].track.id == got[7].track.id == person.track_id
    assert [(n.peer_id, n.peer_type) for n in got[10:12]] == [(agent.id, AGENT)] * 2
    # what the server emitted, VAD included (SPEECH while the tone plays, then SILENCE)
    emitted = [m.WhichOneof("content") for m in fj.notifications.history]
    i = emitted.index("track_added")
    assert emitted[i + 1 : i + 4] == ["vad_notification", "vad_notification", "track_removed"]
    vads = [m.vad_notification for m in fj.notifications.history if m.HasField("vad_notification")]
    assert [v.status for v in vads] == [
        ServerMessage.VadNotification.STATUS_SPEECH,
        ServerMessage.VadNotification.STATUS_SILENCE,
    ]
    assert {(v.peer_id, v.track_id) for v in vads} == {(person.peer_id, person.track_id)}


async def test_several_subscribers_see_the_same_notifications(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with (
        plain_notifier(fj.url, fj.management_token) as first,
        plain_notifier(fj.url + "/api/v1/connect/abc", fj.management_token) as second,
    ):
        room = await fj.create_room()
        person = await fj.join_person(room)
        fj.update_track_metadata(person.peer_id, person.track_id, {"muted": True})
        await fj.delete_room(room)
        for seen in (first, second):
            await seen.until(lambda i: any(isinstance(n, ServerMessageRoomDeleted) for n in i))
        assert (
            kinds(first.items)
            == kinds(second.items)
            == [
                "RoomCreated",
                "PeerAdded",
                "PeerConnected",
                "TrackAdded",
                "TrackMetadataUpdated",
                "TrackRemoved",
                "PeerDisconnected",
                "PeerDeleted",
                "RoomDeleted",
            ]
        )
        update = first.items[4]
        assert isinstance(update, ServerMessageTrackMetadataUpdated)
        assert update.track.metadata == '{"muted": true}'
    assert fj.notifications.subscriber_count == 0


async def test_agent_tracks_and_the_upstream_connect_signal(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    async with plain_notifier(fj.url, fj.management_token) as seen:
        agent = fishjam_fast.Agent(peer.id, room, peer.token, fj.url)  # it can remove tracks
        async with agent.connect() as session:
            await seen.until(
                lambda i: any(isinstance(n, ServerMessagePeerMetadataUpdated) for n in i)
            )
            options = fishjam_fast.OutgoingAudioTrackOptions(metadata={"voice": "bot"})
            track = await session.add_track(options)
            await seen.until(lambda i: any(isinstance(n, ServerMessageTrackAdded) for n in i))
            await session.remove_track(track.id)
            await seen.until(lambda i: any(isinstance(n, ServerMessageTrackRemoved) for n in i))
            await session.add_track(fishjam_fast.OutgoingAudioTrackOptions())
            await seen.until(lambda i: kinds(i).count("TrackAdded") == 2)
        await seen.until(lambda i: any(isinstance(n, ServerMessagePeerDisconnected) for n in i))
    assert kinds(seen.items) == [
        "PeerConnected",
        "PeerMetadataUpdated",
        "TrackAdded",
        "TrackRemoved",
        "TrackAdded",
        "TrackRemoved",  # its live track goes when it disconnects
        "PeerDisconnected",
    ]
    meta = seen.items[1]
    assert meta.peer_id == peer.id and meta.metadata == '{"peer": {}, "server": {}}'
    added = seen.items[2]
    assert added.track.id == track.id and added.track.metadata == '{"voice": "bot"}'


async def test_rest_webrtc_peer_and_room_deletion_order(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    async with plain_notifier(fj.url, fj.management_token) as seen:
        room = await asyncio.to_thread(client.create_room)
        peer, _ = await asyncio.to_thread(client.create_peer, room.id)
        await fj.join_person(room.id)
        await asyncio.to_thread(client.delete_peer, room.id, peer.id)
        await asyncio.to_thread(client.delete_room, room.id)
        await seen.until(lambda i: any(isinstance(n, ServerMessageRoomDeleted) for n in i))
    assert kinds(seen.items) == [
        "RoomCreated",
        "PeerAdded",  # REST peer: never connected, so no PeerDisconnected
        "PeerAdded",
        "PeerConnected",
        "TrackAdded",
        "PeerDeleted",
        "TrackRemoved",
        "PeerDisconnected",
        "PeerDeleted",
        "RoomDeleted",
    ]
    assert isinstance(seen.items[0], ServerMessageRoomCreated)
    assert isinstance(seen.items[1], ServerMessagePeerAdded) and seen.items[1].peer_type == WEBRTC
    assert isinstance(seen.items[3], ServerMessagePeerConnected)
    assert isinstance(seen.items[5], ServerMessagePeerDeleted) and seen.items[5].peer_id == peer.id


# -- the socket's protocol, with a raw client ------------------------------------------


def auth(token: str) -> bytes:
    return ServerMessage(auth_request=ServerMessage.AuthRequest(token=token)).SerializeToString()


SUBSCRIBE = ServerMessage(
    subscribe_request=ServerMessage.SubscribeRequest(
        event_type=ServerMessage.EVENT_TYPE_SERVER_NOTIFICATION
    )
).SerializeToString()


async def _closed_with(url: str, *frames: bytes | str) -> tuple[int | None, str]:
    async with websockets.connect(url) as ws:
        for frame in frames:
            await ws.send(frame)
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    await ws.recv()
    rcvd = info.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")


async def test_plain_notifier_with_a_wrong_token_gets_invalid_token(
    local_fishjam: LocalFishjam,
) -> None:
    notifier = FishjamNotifier(local_fishjam.url, "wrong")
    notifier.on_server_notification(lambda n: None)
    with pytest.raises(RuntimeError, match="Invalid management token"):
        await asyncio.wait_for(notifier.connect(), TIMEOUT)


@pytest.mark.parametrize(
    ("frames", "code", "reason"),
    [
        ((auth("wrong"),), 1000, "invalid token"),
        ((auth(""),), 1000, "missing token"),
        ((SUBSCRIBE,), 1000, "unauthenticated"),
        ((b"\xff\xff",), 1011, "invalid message"),
        (("text",), 1003, "unsupported data"),
    ],
)
async def test_refusals(
    local_fishjam: LocalFishjam, frames: tuple[bytes | str, ...], code: int, reason: str
) -> None:
    assert await _closed_with(local_fishjam.notification_socket_url, *frames) == (code, reason)


async def test_silent_client_is_closed_after_auth_timeout() -> None:
    async with LocalFishjam(auth_timeout=0.2) as fj:
        assert await _closed_with(fj.notification_socket_url) == (1000, "unauthenticated")


async def test_subscribe_response_comes_first_then_nothing_from_before(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    async with websockets.connect(fj.notification_socket_url) as ws:
        await ws.send(auth(fj.management_token))
        answer = ServerMessage.FromString(await ws.recv())
        assert answer.WhichOneof("content") == "authenticated"
        early = await fj.create_room()  # authenticated, not subscribed: not delivered
        await ws.send(SUBSCRIBE)
        await fj.wait_for(lambda: fj.notifications.subscriber_count == 1, TIMEOUT)
        late = await fj.create_room()  # queued behind the subscribe_response
        first = ServerMessage.FromString(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert first.WhichOneof("content") == "subscribe_response"
        assert first.subscribe_response.event_type == ServerMessage.EVENT_TYPE_SERVER_NOTIFICATION
        second = ServerMessage.FromString(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert second.room_created.room_id == late != early


async def test_subscribers_that_overflow_are_closed(local_fishjam: LocalFishjam) -> None:
    async with LocalFishjam(notification_queue=5) as fj:
        async with (
            websockets.connect(fj.notification_socket_url) as raw,
            plain_notifier(fj.url, fj.management_token) as plain,
        ):
            await raw.send(auth(fj.management_token))
            await raw.recv()
            await raw.send(SUBSCRIBE)
            await fj.wait_for(lambda: fj.notifications.subscriber_count == 2, TIMEOUT)
            # spaced out, 10 notifications never fill a queue of 5
            rooms = []
            for _ in range(10):
                rooms.append(await fj.create_room())
                await asyncio.sleep(0.02)
            await plain.until(lambda i: len(i) == 10)
            assert [n.room_id for n in plain.items] == rooms
            assert fj.notifications.overflows == 0
            # emitted in one go, before any sender runs: both queues of 5 overflow
            for _ in range(10):
                fj.state.notifications.room_created(fj.rooms[rooms[0]])
            assert fj.notifications.overflows == 2
            assert fj.notifications.subscriber_count == 0
            with pytest.raises(ConnectionClosed) as info:
                async with asyncio.timeout(TIMEOUT):
                    while True:
                        await raw.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (
                1011,
                "notification queue overflow",
            )


async def test_dropped_notification_socket_and_resubscribe(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    notifier = FishjamNotifier(fj.url, fj.management_token)
    seen = Collected()
    notifier.on_server_notification(seen.add)
    task = asyncio.create_task(notifier.connect())
    await asyncio.wait_for(notifier.wait_ready(), TIMEOUT)
    await fj.wait_for(lambda: fj.notifications.subscriber_count == 1, TIMEOUT)
    assert fj.drop_notification_sockets() == 1
    with pytest.raises(ConnectionClosed):  # the plain notifier ends on a dropped socket
        await asyncio.wait_for(task, TIMEOUT)
    await fj.wait_for(lambda: fj.notifications.subscriber_count == 0, TIMEOUT)
    missed = await fj.create_room()
    async with plain_notifier(fj.url, fj.management_token) as again:
        room = await fj.create_room()
        await again.until(lambda i: len(i) == 1)
        assert [n.room_id for n in again.items] == [room] != [missed]


def _control(fj: LocalFishjam, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fj.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {fj.management_token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_flood_reaches_a_reading_subscriber_whole_and_in_order(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    count = 30_000  # three times a subscriber's queue: the server yields as it emits
    async with websockets.connect(fj.notification_socket_url, max_queue=None) as ws:
        await ws.send(auth(fj.management_token))
        await ws.recv()
        await ws.send(SUBSCRIBE)
        await ws.recv()
        flood = asyncio.create_task(
            asyncio.to_thread(_control, fj, "POST", "/local/notifications/flood", {"count": count})
        )
        got = []
        async with asyncio.timeout(60):
            while len(got) < count:
                got.append(ServerMessage.FromString(await ws.recv()).peer_metadata_updated)
        assert await flood == (200, {"data": {"emitted": count}})
    assert [m.peer_id for m in got] == [f"flood-{i}" for i in range(count)]
    assert got[-1].metadata == json.dumps({"i": count - 1}) and got[0].room_id == "flood"
    status, body = await asyncio.to_thread(_control, fj, "GET", "/local/server")
    assert status == 200 and body["data"]["notifications_emitted"] == count
    assert body["data"]["notification_overflows"] == 0
    assert body["data"]["webhooks"]["posted"] == 0


async def test_flood_and_drop_control_routes_refuse_and_drop(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    bad = await asyncio.to_thread(_control, fj, "POST", "/local/notifications/flood", {"count": -1})
    assert bad[0] == 400
    with pytest.raises(ValueError, match="count must be >= 0"):
        await fj.flood_notifications(-1)
    async with plain_notifier(fj.url, fj.management_token):
        await fj.wait_for(lambda: fj.notifications.subscriber_count == 1, TIMEOUT)
        status, body = await asyncio.to_thread(_control, fj, "POST", "/local/notifications/drop")
        assert (status, body) == (200, {"data": {"dropped": 1}})
        await fj.wait_for(lambda: fj.notifications.subscriber_count == 0, TIMEOUT)
