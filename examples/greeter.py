"""A greeter: it says hello when a person joins its room and notes when they leave.

Shows server notifications with ``fishjam_fast.FishjamNotifier``: the bot joins its
room as an agent and, from the notification socket, learns who arrives
(``ServerMessagePeerConnected`` of a WebRTC peer: it plays a short two-tone greeting on
its track), who speaks (``ServerMessageVadNotification``: the server's voice activity,
which the plain SDK's notifier drops) and who leaves (``ServerMessagePeerDisconnected``).
A ``NotificationGap`` would mean the socket was lost for a while: the bot would list the
room's peers over REST to catch up.

Run it (from a clone: ``.venv/bin/python`` after ``bash scripts/test.sh``)::

    python examples/greeter.py --seconds 4

It uses the local Fishjam, where a simulated person joins, speaks and leaves, or your
Fishjam with ``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set (then join the room
it prints). It ends after ``--seconds`` and prints who it greeted.
"""

from __future__ import annotations

import asyncio
from typing import Final

import numpy as np
import numpy.typing as npt

from fishjam_fast import AsyncFishjamClient, FishjamNotifier, OutgoingAudioTrackOptions
from fishjam_fast.events import (
    NotificationGap,
    ServerMessagePeerConnected,
    ServerMessagePeerDisconnected,
    ServerMessagePeerType,
    ServerMessageVadNotification,
    ServerMessageVadNotificationStatus,
)

from _fishjam import Fishjam, arguments, fishjam

RATE: Final = 16000


def greeting() -> npt.NDArray[np.float32]:
    """Two short tones, rising: a stand-in for a TTS "hello"."""
    t = np.arange(int(0.15 * RATE)) / RATE
    tones = [0.2 * np.sin(2 * np.pi * f * t) for f in (660.0, 880.0)]
    return np.concatenate(tones).astype(np.float32)


async def person_comes_and_goes(where: Fishjam, room_id: str) -> None:
    """Locally: a simulated person joins, says something and leaves."""
    local = where.local
    if local is None:
        return
    from fishjam_fast.local import AudioSource

    await asyncio.sleep(0.3)
    person = await local.join_person(room_id, audio=AudioSource.tone(440.0, 0.5))
    await person.wait_done(5.0)
    await asyncio.sleep(0.5)
    await local.leave_person(person.peer_id)


async def main(seconds: float) -> None:
    async with fishjam() as where:
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            room = await client.create_room()
            agent = await client.create_agent(room.id)
        print(f"room {room.id}: join it", flush=True)
        notifier = FishjamNotifier(where.fishjam_id, where.management_token)
        notifications = notifier.notifications()  # before connecting: none is missed
        greeted: list[str] = []
        async with notifier, agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=RATE))
            visitor = asyncio.create_task(person_comes_and_goes(where, room.id))
            try:
                async with asyncio.timeout(seconds):
                    async for notification in notifications:
                        match notification:
                            case ServerMessagePeerConnected(
                                room_id=room.id,
                                peer_id=peer_id,
                                peer_type=ServerMessagePeerType.PEER_TYPE_WEBRTC,
                            ):
                                print(f"hello, {peer_id}!", flush=True)
                                greeted.append(peer_id)
                                await track.send_pcm(greeting())
                            case ServerMessageVadNotification(
                                room_id=room.id,
                                peer_id=peer_id,
                                status=ServerMessageVadNotificationStatus.STATUS_SPEECH,
                            ):
                                print(f"{peer_id} is speaking", flush=True)
                            case ServerMessagePeerDisconnected(
                                room_id=room.id,
                                peer_id=peer_id,
                                peer_type=ServerMessagePeerType.PEER_TYPE_WEBRTC,
                            ):
                                print(f"goodbye, {peer_id}", flush=True)
                            case NotificationGap(cause=cause):
                                print(f"missed notifications ({cause}): listing the room")
                                async with AsyncFishjamClient(
                                    where.fishjam_id, where.management_token
                                ) as client:
                                    peers = (await client.get_room(room.id)).peers
                                    print(f"{len(peers)} peers in the room", flush=True)
            except TimeoutError:
                pass
            finally:
                visitor.cancel()
                await asyncio.gather(visitor, return_exceptions=True)
        print(f"greeted {len(greeted)} people; notifier stats: {notifier.stats}", flush=True)
        recorded = where.chunks_recorded(agent.id)
        if recorded is not None:
            print(f"the local Fishjam recorded {recorded} chunks of greetings", flush=True)
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            await client.delete_room(room.id)


if __name__ == "__main__":
    args = arguments(__doc__, seconds=4.0)
    asyncio.run(main(args.seconds))
