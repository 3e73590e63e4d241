"""FishjamNotifier against the local Fishjam, beside the plain SDK's notifier: the same
notifications in the same order for a scripted room life (and the voice activity the
plain SDK drops), on both loops and both transports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fishjam import FishjamClient
from fishjam import FishjamNotifier as PlainNotifier

import fishjam_fast
from fishjam_fast import events
from fishjam_fast.local import AudioSource, LocalFishjam

pytestmark = pytest.mark.usefixtures("transport")

TIMEOUT = 10.0


def kinds(items: list[Any]) -> list[str]:
    return [type(n).__name__.removeprefix("ServerMessage") for n in items]


def fields(notification: Any) -> dict[str, Any]:
    """A notification of either side as plain data (the plain SDK's enums are at times
    plain ints: compared as ints)."""
    out: dict[str, Any] = {}
    for name in ("room_id", "peer_id", "peer_type", "metadata", "track"):
        value = getattr(notification, name, None)
        if name == "track" and value is not None:
            value = (value.id, int(value.type), value.metadata)
        elif name == "peer_type" and value is not None:
            value = int(value)
        out[name] = value
    return out


async def test_both_notifiers_see_the_scripted_room_life_alike(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    plain_seen: list[Any] = []
    plain = PlainNotifier(fj.url, fj.management_token)
    plain.on_server_notification(plain_seen.append)
    plain_task = asyncio.create_task(plain.connect())
    ours = fishjam_fast.FishjamNotifier(fj.url, fj.management_token)
    stream = ours.notifications()
    client = FishjamClient(fj.url, fj.management_token)
    try:
        await asyncio.wait_for(plain.wait_ready(), TIMEOUT)
        async with ours:
            room = await asyncio.to_thread(client.create_room)
            agent = await asyncio.to_thread(client.create_agent, room.id)
            async with agent.connect() as session:
                person = await fj.join_person(room.id, audio=AudioSource.tone(440.0, 0.4))
                heard = 0
                async for _ in session.receive():
                    heard += 1
                    if heard == 10:
                        break
                await person.wait_done(TIMEOUT)
                await fj.leave_person(person.peer_id)
            await fj.wait_disconnected(agent.id, timeout=TIMEOUT)
            await asyncio.to_thread(client.delete_room, room.id)
            got: list[Any] = []
            async with asyncio.timeout(TIMEOUT):
                async for notification in stream:
                    got.append(notification)
                    if isinstance(notification, events.ServerMessageRoomDeleted):
                        break
        async with asyncio.timeout(TIMEOUT):
            while not any(type(n).__name__ == "ServerMessageRoomDeleted" for n in plain_seen):
                await asyncio.sleep(0.01)
    finally:
        plain_task.cancel()
        await asyncio.gather(plain_task, return_exceptions=True)

    mine = [n for n in got if getattr(n, "room_id", None) == room.id]
    theirs = [n for n in plain_seen if getattr(n, "room_id", None) == room.id]
    # the plain SDK drops voice activity: everything else is the same, in the same order
    without_vad = [n for n in mine if not isinstance(n, events.ServerMessageVadNotification)]
    assert kinds(without_vad) == kinds(theirs)
    assert [fields(n) for n in without_vad] == [fields(n) for n in theirs]
    types = {type(n.peer_type) for n in without_vad if hasattr(n, "peer_type")}
    assert types == {events.ServerMessagePeerType}
    assert kinds(theirs)[:2] == ["RoomCreated", "PeerAdded"] and kinds(theirs)[-1] == "RoomDeleted"
    # and ours has the person's speech and silence between its track's arrival and removal
    names = kinds(mine)
    speech = names.index("VadNotification")
    assert names.index("TrackAdded") < speech < names.index("TrackRemoved")
    vads = [n for n in mine if isinstance(n, events.ServerMessageVadNotification)]
    assert [v.status for v in vads] == [
        events.ServerMessageVadNotificationStatus.STATUS_SPEECH,
        events.ServerMessageVadNotificationStatus.STATUS_SILENCE,
    ]
    assert {(v.peer_id, v.track_id) for v in vads} == {(person.peer_id, person.track_id)}
    assert ours.stats.skipped == ours.stats.malformed == 0


async def test_a_wrong_management_token_is_refused_with_the_reason(
    local_fishjam: LocalFishjam,
) -> None:
    notifier = fishjam_fast.FishjamNotifier(local_fishjam.url, "not the token")
    with pytest.raises(fishjam_fast.NotifierAuthError) as caught:
        await notifier.connect()
    assert "invalid token" in caught.value.reason
