"""Webhooks of the local server, received by a real aiohttp server in the test and
judged by the plain SDK's decode_server_notifications and verify_webhook_signature."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from fishjam import FishjamClient, RoomOptions, decode_server_notifications
from fishjam import verify_webhook_signature as plain_verify

from fishjam_fast._proto import server_notifications_pb2
from fishjam_fast.local import AudioSource, LocalFishjam, LocalFishjamProcess
from fishjam_fast.local.webhooks import WebhookPoster

ServerMessage = server_notifications_pb2.ServerMessage
TIMEOUT = 10.0


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST; answers ``statuses`` in turn
    (then 200)."""

    url: str = ""
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0

    def notifications(self) -> list[str]:
        """Every notification received, flattened, as the plain SDK decodes them."""
        return [
            type(n).__name__ for _, body in self.posts for n in decode_server_notifications(body)
        ]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        rec.posts.append((dict(request.headers), await request.read()))
        if rec.delay:
            await asyncio.sleep(rec.delay)
        return web.Response(status=rec.statuses.pop(0) if rec.statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def short(names: list[str]) -> list[str]:
    return [n.removeprefix("ServerMessage") for n in names]


async def test_each_notification_is_posted_in_order(
    local_fishjam: LocalFishjam, receiver: Receiver
) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    other = await fj.create_room()  # no webhookUrl: nothing posted for it
    room = await asyncio.to_thread(client.create_room, RoomOptions(webhook_url=receiver.url))
    person = await fj.join_person(room.id, audio=AudioSource.tone(440.0, 0.3))
    await person.wait_done(TIMEOUT)
    await fj.leave_person(person.peer_id)
    await fj.join_person(other)
    await asyncio.to_thread(client.delete_room, room.id)
    await fj.wait_webhooks(TIMEOUT)

    assert short(receiver.notifications()) == [
        "RoomCreated",
        "PeerAdded",
        "PeerConnected",
        "TrackAdded",
        "TrackRemoved",
        "PeerDisconnected",
        "PeerDeleted",
        "RoomDeleted",
    ]
    # one notification per POST, the binary ServerMessage, unsigned (no secret)
    bodies = [body for _, body in receiver.posts]
    assert len(bodies) == 10  # VAD SPEECH and SILENCE too (the plain SDK skips them)
    vads = [ServerMessage.FromString(b) for b in bodies]
    assert [m.vad_notification.status for m in vads if m.HasField("vad_notification")] == [
        ServerMessage.VadNotification.STATUS_SPEECH,
        ServerMessage.VadNotification.STATUS_SILENCE,
    ]
    for headers, _ in receiver.posts:
        assert headers["Content-Type"] == "application/x-protobuf"
        assert "x-fishjam-signature-256" not in {k.lower() for k in headers}
    assert all(
        getattr(n, "room_id", room.id) == room.id
        for b in bodies
        for n in decode_server_notifications(b)
    )
    assert fj.webhooks.stats.posted == 10 and fj.webhooks.stats.failed == 0


async def test_batched_room_gets_notification_batches(receiver: Receiver) -> None:
    receiver.delay = 0.05  # notifications emitted during a POST travel together
    async with LocalFishjam() as fj:
        client = FishjamClient(fj.url, fj.management_token)
        options = RoomOptions(webhook_url=receiver.url, batch_webhook_notifications=True)
        room = await asyncio.to_thread(client.create_room, options)
        assert room.config.batch_webhook_notifications is True
        peer, _ = await asyncio.to_thread(client.create_peer, room.id)
        person = await fj.join_person(room.id)
        await fj.leave_person(person.peer_id)
        await asyncio.to_thread(client.delete_peer, room.id, peer.id)
        await asyncio.to_thread(client.delete_room, room.id)
        await fj.wait_webhooks(TIMEOUT)
    messages = [ServerMessage.FromString(body) for _, body in receiver.posts]
    assert {m.WhichOneof("content") for m in messages} == {"notification_batch"}
    sizes = [len(m.notification_batch.notifications) for m in messages]
    assert sizes[0] == 1 and len(sizes) < sum(sizes)  # the first alone, later ones together
    assert short(receiver.notifications()) == [
        "RoomCreated",
        "PeerAdded",
        "PeerAdded",
        "PeerConnected",
        "TrackAdded",
        "TrackRemoved",
        "PeerDisconnected",
        "PeerDeleted",
        "PeerDeleted",
        "RoomDeleted",
    ]


async def test_signed_bodies_verify_with_the_plain_sdk(receiver: Receiver) -> None:
    secret = "s3cret"
    async with LocalFishjam(webhook_secret=secret) as fj:
        room = await fj.create_room(webhookUrl=receiver.url)
        await fj.delete_room(room)
        await fj.wait_webhooks(TIMEOUT)
    assert len(receiver.posts) == 2
    for headers, body in receiver.posts:
        signature = headers["x-fishjam-signature-256"]
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert signature == f"sha256={expected}"
        assert plain_verify(body, signature, secret)
        assert not plain_verify(body, signature, "other secret")
        assert not plain_verify(body + b"\x00", signature, secret)


async def test_failing_receiver_is_retried_boundedly_and_never_blocks(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500, 503, 500, 500, 502]  # first POST: 4 failures; second: 1
    async with LocalFishjam(webhook_retries=3) as fj:
        fj.webhooks.backoff = 0.01
        with caplog.at_level(logging.WARNING, logger="fishjam_fast.local"):
            room = await fj.create_room(webhookUrl=receiver.url)
            await fj.delete_room(room)
            await fj.wait_webhooks(TIMEOUT)
    stats = fj.webhooks.stats
    assert (stats.failed, stats.posted, stats.retries) == (1, 1, 4)
    assert len(receiver.posts) == 6
    assert short(receiver.notifications()) == ["RoomCreated"] * 4 + ["RoomDeleted"] * 2
    assert "failed 4 times (status 500)" in caplog.text


async def test_unreachable_receiver_times_out_and_the_server_goes_on() -> None:
    async with LocalFishjam(webhook_retries=0, webhook_timeout=0.5) as fj:
        # a listening socket that never answers: the POST times out
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            room = await fj.create_room(webhookUrl=f"http://127.0.0.1:{port}/hook")
            other = await fj.create_room()  # not delayed by the stuck POST
            assert other in fj.rooms
            await fj.delete_room(room)
            await fj.wait_webhooks(TIMEOUT)
        finally:
            server.close()
    assert fj.webhooks.stats.failed == 2 and fj.webhooks.stats.posted == 0


async def test_room_queue_is_bounded(receiver: Receiver) -> None:
    async with LocalFishjam() as fj:
        fj.webhooks.max_queue = 3
        room_id = await fj.create_room(webhookUrl=receiver.url)
        room = fj.rooms[room_id]
        for _ in range(10):  # in one go: 1 in flight once the task runs, 3 queued
            fj.notifications.room_created(room)
        await fj.wait_webhooks(TIMEOUT)
    assert fj.webhooks.stats.dropped == 10 + 1 - 3
    assert len(receiver.posts) == 3


def test_poster_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        WebhookPoster(timeout=0)
    with pytest.raises(ValueError, match="max_queue and batch_max"):
        WebhookPoster(max_queue=0)


async def test_process_server_signs_with_the_command_line_secret(receiver: Receiver) -> None:
    status: dict[str, Any] = {"webhooks": {"posted": 0}}
    with LocalFishjamProcess(seconds=60, webhook_secret="cli-secret") as server:
        room = await asyncio.to_thread(server.call, "POST", "/room", {"webhookUrl": receiver.url})
        async with asyncio.timeout(TIMEOUT):  # received, and counted once answered
            while not receiver.posts or not status["webhooks"]["posted"]:
                await asyncio.sleep(0.01)
                status = await asyncio.to_thread(server.call, "GET", "/local/server")
    headers, body = receiver.posts[0]
    assert plain_verify(body, headers["x-fishjam-signature-256"], "cli-secret")
    assert [n.room_id for n in decode_server_notifications(body)] == [room["room"]["id"]]
    assert status["webhooks"]["failed"] == 0


async def test_stop_sends_what_is_queued(receiver: Receiver) -> None:
    async with LocalFishjam() as fj:
        room = await fj.create_room(webhookUrl=receiver.url)
        await fj.delete_room(room)  # queued, not yet posted, when the server stops
        assert fj.webhooks.pending == 2
    assert short(receiver.notifications()) == ["RoomCreated", "RoomDeleted"]
