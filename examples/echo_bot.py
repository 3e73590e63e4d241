"""An echo bot: an agent that joins a room and sends back everything it hears.

Shows the agent API of fishjam_fast: the async REST client makes a room and an agent,
``agent.connect()`` opens the session, ``session.add_track`` the agent's audio track,
and ``session.receive()`` yields what the room's people say (``IncomingTrackData``:
20 ms of PCM16), which the bot sends back with ``track.send_chunk``.

Run it (from a clone: after ``bash scripts/demo.sh`` or ``bash scripts/test.sh``, with
``.venv/bin/python``)::

    python examples/echo_bot.py --seconds 5

It uses the local Fishjam with a simulated person speaking, or your Fishjam with
``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set (then join the room it prints and
hear yourself). It ends after ``--seconds`` and prints what it echoed.
"""

from __future__ import annotations

import asyncio

import fishjam_fast
from fishjam_fast import AsyncFishjamClient, IncomingTrackData, OutgoingAudioTrackOptions

from _fishjam import arguments, fishjam


async def main(seconds: float) -> None:
    async with fishjam() as where:
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            room = await client.create_room()
            agent = await client.create_agent(room.id)  # its output: 16 kHz PCM16
        echoed = 0
        async with agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
            await where.person_speaks(room.id)
            try:
                async with asyncio.timeout(seconds):  # the example ends by itself
                    async for message in session.receive():
                        if isinstance(message, IncomingTrackData):
                            echoed += 1
                            await track.send_chunk(message.data)
            except TimeoutError:
                pass
        # the session is closed: everything sent has reached the server
        print(f"echoed {echoed} chunks ({echoed * 0.02:.1f} s of audio) in {seconds:g} s")
        recorded = where.chunks_recorded(agent.id)
        if recorded is not None:
            print(f"the local Fishjam recorded {recorded} chunks from the agent")
        if where.local is None:
            async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
                await client.delete_room(room.id)


if __name__ == "__main__":
    fishjam_fast.run(main(arguments(__doc__, seconds=5.0).seconds))  # uvloop where available
