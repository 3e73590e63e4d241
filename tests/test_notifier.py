"""FishjamNotifier against notification servers written here (tests/hostile.py), on both
transports and both loops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fishjam_fast import AgentAuthError, AgentConnectionError, FishjamNotifier, events
from fishjam_fast._core.reconnect import ReconnectPolicy
from fishjam_fast._proto.server_notifications_pb2 import ServerMessage
from fishjam_fast.notifier import NotifierAuthError, NotifierConnectionError
from tests.hostile import BINARY, CLOSE, HostileServer, Peer, close_payload, frame
from tests.wire import field_len, field_varint

pytestmark = pytest.mark.usefixtures("transport")

AUTHENTICATED = field_len(6, b"")
SUBSCRIBED = field_len(9, field_varint(1, 1))
FAST = ReconnectPolicy(budget=5.0, first_delay=0.01, max_delay=0.05)


def peer_added(i: int, room_id: str = "room") -> bytes:
    return ServerMessage(
        peer_added=ServerMessage.PeerAdded(room_id=room_id, peer_id=f"p{i}", peer_type=1)
    ).SerializeToString()


async def subscribe(peer: Peer) -> tuple[bytes, bytes]:
    """The server's side of the handshake; returns the two requests."""
    await peer.handshake()
    auth = await peer.read_until(BINARY)
    await peer.send(frame(BINARY, AUTHENTICATED))
    request = await peer.read_until(BINARY)
    await peer.send(frame(BINARY, SUBSCRIBED))
    return auth.payload, request.payload


def notifier(url: str, **options: Any) -> FishjamNotifier:
    options.setdefault("reconnect", FAST)
    options.setdefault("open_timeout", 5.0)
    return FishjamNotifier(url, "management-token", **options)


async def test_handlers_and_iterators_see_every_notification_in_order() -> None:
    requests: list[tuple[bytes, bytes]] = []

    async def serve(peer: Peer) -> None:
        requests.append(await subscribe(peer))
        await peer.send(*(frame(BINARY, peer_added(i)) for i in range(50)))
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        client = notifier(server.url)
        seen_sync: list[Any] = []
        seen_async: list[Any] = []
        client.on_server_notification(seen_sync.append)

        @client.on_server_notification
        async def slow(notification: Any) -> None:
            await asyncio.sleep(0)
            seen_async.append(notification)

        stream = client.notifications()
        async with client:
            assert client.state == "connected"
            iterated = []
            async for notification in stream:
                iterated.append(notification)
                if len(iterated) == 50:
                    break
        assert client.state == "closed"
    expected = [
        events.ServerMessagePeerAdded("room", f"p{i}", events.ServerMessagePeerType(1))
        for i in range(50)
    ]
    assert seen_sync == seen_async == iterated == expected
    auth, subscription = requests[0]
    assert ServerMessage.FromString(auth).auth_request.token == "management-token"
    assert ServerMessage.FromString(subscription).subscribe_request.event_type == 1
    assert client.stats.notifications == 50 and client.stats.frames_received == 50


async def test_an_invalid_token_is_a_typed_error_with_the_reason() -> None:
    async def serve(peer: Peer) -> None:
        await peer.handshake()
        await peer.read_until(BINARY)
        await peer.send(frame(CLOSE, close_payload(1000, b"invalid token")))
        await peer.read_until(CLOSE)

    async with HostileServer(serve) as server:
        client = notifier(server.url)
        with pytest.raises(NotifierAuthError) as caught:
            await client.connect()
    assert isinstance(caught.value, AgentAuthError)
    assert isinstance(caught.value, RuntimeError)  # what the plain SDK raises
    assert caught.value.reason == "invalid token"
    assert "invalid token" in str(caught.value)
    assert client.state == "closed"
    with pytest.raises(NotifierAuthError):
        await client.wait_ready(timeout=1)


@pytest.mark.parametrize("silent_at", ["auth", "subscribe"])
async def test_a_server_that_never_answers_meets_the_deadline(silent_at: str) -> None:
    async def serve(peer: Peer) -> None:
        await peer.handshake()
        await peer.read_until(BINARY)
        if silent_at == "subscribe":
            await peer.send(frame(BINARY, AUTHENTICATED))
            await peer.read_until(BINARY)
        await asyncio.sleep(10)

    async with HostileServer(serve) as server:
        client = notifier(server.url, open_timeout=0.3)
        step = "authentication" if silent_at == "auth" else "subscription"
        with pytest.raises(
            NotifierConnectionError,
            match=f"no answer to the {step} request within open_timeout=0.3",
        ):
            async with client:
                pass


async def test_a_dropped_socket_reconnects_and_reports_the_gap() -> None:
    connections = 0

    async def serve(peer: Peer) -> None:
        nonlocal connections
        connections += 1
        await subscribe(peer)
        if connections == 1:
            await peer.send(*(frame(BINARY, peer_added(i)) for i in range(3)))
            await asyncio.sleep(0.05)
            peer.writer.transport.abort()  # dropped mid-stream, no close frame
            return
        await peer.send(*(frame(BINARY, peer_added(i)) for i in range(3, 5)))
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        client = notifier(server.url)
        states: list[str] = []
        client.on_state_change(lambda change: states.append(change.state))
        got: list[Any] = []
        async with client:
            async for notification in client.notifications():
                got.append(notification)
                if len(got) == 6:
                    break
    assert [n.peer_id for n in got[:3]] == ["p0", "p1", "p2"]
    gap = got[3]
    assert isinstance(gap, events.NotificationGap)
    assert gap.disconnected_at <= gap.reconnected_at and "1006" in gap.cause
    assert [n.peer_id for n in got[4:]] == ["p3", "p4"]
    assert client.stats.reconnects == 1 and client.stats.reconnect_attempts >= 1
    assert states == ["connecting", "connected", "reconnecting", "connected", "closed"]


async def test_without_reconnect_a_drop_ends_connect_with_the_code() -> None:
    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        peer.writer.transport.abort()

    async with HostileServer(serve) as server:
        client = notifier(server.url, reconnect=False)
        with pytest.raises(NotifierConnectionError) as caught:
            await client.connect()
    assert caught.value.code == 1006 and isinstance(caught.value, AgentConnectionError)


async def test_malformed_and_unknown_frames_are_skipped_and_counted() -> None:
    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        await peer.send(
            frame(BINARY, b"\xa2\x01\x80"),  # truncated length
            frame(BINARY, field_len(40, b"future")),  # a member this version lacks
            frame(BINARY, b"\x02\x00"),  # field number 0
            frame(BINARY, peer_added(7)),
        )
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        async with notifier(server.url) as client:
            first = await anext(aiter(client.notifications()))
    assert first.peer_id == "p7"
    assert (client.stats.malformed, client.stats.skipped, client.stats.notifications) == (2, 1, 1)


async def test_a_handler_error_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        await peer.send(frame(BINARY, peer_added(0)), frame(BINARY, peer_added(1)))
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        client = notifier(server.url)
        got: list[Any] = []

        @client.on_server_notification
        def broken(notification: Any) -> None:
            raise ValueError("bug in the application")

        client.on_server_notification(got.append)
        async with client:
            while len(got) < 2:
                await asyncio.sleep(0.01)
    assert client.stats.handler_errors == 2
    assert "bug in the application" in caplog.text


async def test_a_flood_with_a_slow_consumer_stays_bounded_and_loses_nothing() -> None:
    """100,000 notifications while the handler is stuck: reading pauses, the server's
    side holds the rest; once the handler moves, every one arrives, in order."""
    total = 100_000
    server_done = asyncio.Event()
    held: list[int] = []

    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        # ~16 MB: more than the kernel's socket buffers take on loopback
        room = "r" * 150
        batch = b"".join(frame(BINARY, peer_added(i, room)) for i in range(total))
        peer.writer.write(batch)
        # the client cannot read it all while its handler is stuck: the bytes wait here
        await asyncio.sleep(0.5)
        held.append(peer.writer.transport.get_write_buffer_size())
        await peer.writer.drain()
        server_done.set()
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        client = notifier(server.url, max_queue=16)
        release = asyncio.Event()
        ids: list[str] = []

        @client.on_server_notification
        async def slow(notification: Any) -> None:
            if not release.is_set():
                await release.wait()
            ids.append(notification.peer_id)

        async with client:
            while not held:
                await asyncio.sleep(0.05)
            received_while_stuck = client.stats.frames_received
            release.set()
            async with asyncio.timeout(60):
                while len(ids) < total:
                    await asyncio.sleep(0.05)
    assert held[0] > 1_000_000, "the server's buffer did not hold the flood"
    assert received_while_stuck <= 16 + 2, received_while_stuck
    assert ids == [f"p{i}" for i in range(total)]
    assert server_done.is_set()


async def test_close_while_reconnecting_returns_promptly() -> None:
    async def serve(peer: Peer) -> None:
        if len(server.peers) == 1:
            await subscribe(peer)
            peer.writer.transport.abort()
        else:
            await asyncio.sleep(10)  # never answers the reconnection

    async with HostileServer(serve) as server:
        client = notifier(server.url, open_timeout=30.0)
        reconnecting = asyncio.Event()
        client.on_state_change(
            lambda change: reconnecting.set() if change.state == "reconnecting" else None
        )
        task = asyncio.create_task(client.connect())
        await asyncio.wait_for(reconnecting.wait(), 5)
        async with asyncio.timeout(5):
            await client.close()
            await task  # returns normally: closed on purpose
    assert client.state == "closed"


async def test_the_plain_sdk_notifier_sees_the_same_notifications() -> None:
    plain_sdk = pytest.importorskip("fishjam", reason="the plain SDK (the sdk extra)")
    plain_notifier = plain_sdk.FishjamNotifier

    messages = [
        ServerMessage(room_created=ServerMessage.RoomCreated(room_id="r")),
        ServerMessage(peer_added=ServerMessage.PeerAdded(room_id="r", peer_id="p", peer_type=2)),
        ServerMessage(
            track_added=ServerMessage.TrackAdded(
                room_id="r", peer_id="p", track={"id": "t", "type": 2, "metadata": "{}"}
            )
        ),
        ServerMessage(peer_deleted=ServerMessage.PeerDeleted(room_id="r", peer_id="p")),
        ServerMessage(room_deleted=ServerMessage.RoomDeleted(room_id="r")),
    ]

    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        await peer.send(*(frame(BINARY, m.SerializeToString()) for m in messages))
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        plain_seen: list[Any] = []
        plain = plain_notifier(server.url, "management-token")
        plain.on_server_notification(plain_seen.append)
        plain_task = asyncio.create_task(plain.connect())
        async with notifier(server.url) as ours:
            ours_seen = []
            async for notification in ours.notifications():
                ours_seen.append(notification)
                if len(ours_seen) == len(messages):
                    break
        async with asyncio.timeout(5):
            while len(plain_seen) < len(messages):
                await asyncio.sleep(0.01)
        plain_task.cancel()
    assert [type(n).__name__ for n in ours_seen] == [type(n).__name__ for n in plain_seen]
    for mine, theirs in zip(ours_seen, plain_seen, strict=True):
        assert mine.room_id == theirs.room_id
    assert ours_seen[2].track.id == plain_seen[2].track.id == "t"


async def test_close_with_a_stuck_handler_is_bounded_by_close_timeout() -> None:
    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        await peer.send(frame(BINARY, peer_added(0)))
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        client = notifier(server.url, close_timeout=0.2)
        entered = asyncio.Event()
        cancelled = asyncio.Event()

        @client.on_server_notification
        async def stuck(notification: Any) -> None:
            entered.set()
            try:
                await asyncio.Event().wait()  # never returns by itself
            except asyncio.CancelledError:
                cancelled.set()
                raise

        task = asyncio.create_task(client.connect())
        await asyncio.wait_for(entered.wait(), 5)
        async with asyncio.timeout(3):
            await client.close()
            await task  # closed on purpose: connect() returns
    assert cancelled.is_set() and client.state == "closed"


async def test_a_handler_may_close_the_notifier() -> None:
    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        await peer.send(*(frame(BINARY, peer_added(i)) for i in range(3)))
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        client = notifier(server.url)
        seen: list[Any] = []

        @client.on_server_notification
        async def close_on_first(notification: Any) -> None:
            seen.append(notification)
            await client.close()

        async with asyncio.timeout(5):
            async with client:
                await client._finished.wait()
    assert len(seen) == 1 and client.state == "closed"
    assert server.peers[0].close_received() is not None  # a clean closing handshake


async def test_a_removed_handler_gets_nothing_after_its_removal() -> None:
    more = asyncio.Event()

    async def serve(peer: Peer) -> None:
        await subscribe(peer)
        await peer.send(frame(BINARY, peer_added(0)), frame(BINARY, peer_added(1)))
        await more.wait()
        await peer.send(frame(BINARY, peer_added(2)), frame(BINARY, peer_added(3)))
        await peer.serve_pings()

    async with HostileServer(serve) as server:
        client = notifier(server.url)
        kept: list[Any] = []
        removed_later: list[Any] = []
        removed_by_another: list[Any] = []
        once: list[str] = []
        seen_by_first: list[str] = []

        def first(notification: Any) -> None:
            # (called after remove_itself removed itself: not skipped)
            seen_by_first.append(notification.peer_id)
            # removes, during notification p1, a handler registered after it
            if notification.peer_id == "p1":
                assert client.remove_server_notification_handler(removed_by_another.append)
                assert not client.remove_server_notification_handler(removed_by_another.append)

        @client.on_server_notification
        def remove_itself(notification: Any) -> None:
            once.append(notification.peer_id)
            assert client.remove_server_notification_handler(remove_itself)

        client.on_server_notification(first)
        client.on_server_notification(removed_by_another.append)
        client.on_server_notification(removed_later.append)
        client.on_server_notification(kept.append)
        async with client:
            while len(kept) < 2:
                await asyncio.sleep(0.01)
            assert client.remove_server_notification_handler(removed_later.append)
            more.set()
            while len(kept) < 4:
                await asyncio.sleep(0.01)
    assert [n.peer_id for n in kept] == ["p0", "p1", "p2", "p3"]
    assert [n.peer_id for n in removed_later] == ["p0", "p1"]
    assert [n.peer_id for n in removed_by_another] == ["p0"]
    assert once == ["p0"]
    assert seen_by_first == ["p0", "p1", "p2", "p3"]
    assert client.stats.handler_errors == 0
    assert not client.remove_server_notification_handler(print)
