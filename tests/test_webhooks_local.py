"""fishjam_fast's webhook receiver (webhook_app) fed by the local Fishjam: signed,
batched webhooks of a scripted room life arrive typed, in the order emitted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from fishjam_fast import events
from fishjam_fast.local import AudioSource, LocalFishjam
from fishjam_fast.webhooks import webhook_app

TIMEOUT = 10.0
SECRET = "webhook-secret"


@pytest.fixture
async def received() -> AsyncIterator[tuple[str, list[Any]]]:
    notifications: list[Any] = []
    runner = web.AppRunner(webhook_app(notifications.append, secret=SECRET, path="/hook"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", notifications
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
async def test_signed_webhooks_arrive_typed_in_order(
    received: tuple[str, list[Any]], batched: bool
) -> None:
    url, notifications = received
    async with LocalFishjam(webhook_secret=SECRET) as fj:
        room = await fj.create_room(webhookUrl=url, batchWebhookNotifications=batched)
        person = await fj.join_person(room, audio=AudioSource.tone(440.0, 0.3))
        await person.wait_done(TIMEOUT)
        await fj.leave_person(person.peer_id)
        await fj.delete_room(room)
        await fj.wait_webhooks(TIMEOUT)
        emitted = [
            m.WhichOneof("content")
            for m in fj.notifications.history
            if getattr(getattr(m, m.WhichOneof("content")), "room_id", None) == room
        ]
    names = [type(n).__name__ for n in notifications]
    expected = [
        "ServerMessage" + "".join(part.title() for part in name.split("_")) for name in emitted
    ]
    assert names == expected
    assert names[0] == "ServerMessageRoomCreated" and names[-1] == "ServerMessageRoomDeleted"
    vads = [n for n in notifications if isinstance(n, events.ServerMessageVadNotification)]
    assert [v.status for v in vads] == [
        events.ServerMessageVadNotificationStatus.STATUS_SPEECH,
        events.ServerMessageVadNotificationStatus.STATUS_SILENCE,
    ]
    assert all(n.room_id == room for n in notifications)


async def test_a_receiver_with_another_secret_refuses_them() -> None:
    notifications: list[Any] = []
    statuses: list[int] = []
    app = webhook_app(notifications.append, secret="another secret")

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        statuses.append(response.status)
        return response

    app.middlewares.append(record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        async with LocalFishjam(webhook_secret=SECRET) as fj:
            await fj.create_room(webhookUrl=url)
            async with asyncio.timeout(TIMEOUT):
                while not statuses:
                    await asyncio.sleep(0.01)
    finally:
        await runner.cleanup()
    assert set(statuses) == {403}
    assert notifications == []
