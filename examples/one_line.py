"""A program written for the plain Fishjam SDK, made fast by one line.

Everything below ``fishjam_fast.install()`` is plain-SDK code as its docs write it:
``FishjamClient(...).create_agent(room.id)``, ``from fishjam.agent import ...``,
``match`` on the messages, ``except AgentAuthError``. ``install()`` makes the plain
SDK produce fishjam_fast's objects (its agent, session, messages and errors), so the
same program runs on the native codec and uvloop; delete that line and it runs on the
plain SDK, unchanged.

Run it (needs the plain SDK: ``pip install 'fishjam-fast[sdk,local]'``; from a clone,
``.venv/bin/python`` after ``bash scripts/test.sh``)::

    python examples/one_line.py --seconds 5

It uses the local Fishjam with a simulated person speaking, or your Fishjam with
``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set. It ends after ``--seconds`` and
prints which implementation ran and what it echoed.
"""

from __future__ import annotations

import fishjam_fast

fishjam_fast.install()  # the one line

import asyncio  # noqa: E402  (the rest is the unchanged plain-SDK program)

from fishjam import FishjamClient  # noqa: E402
from fishjam.agent import (  # noqa: E402
    AgentAuthError,
    IncomingTrackData,
    OutgoingAudioTrackOptions,
)

from _fishjam import arguments, fishjam  # noqa: E402


async def main(seconds: float) -> None:
    async with fishjam() as where:
        client = FishjamClient(where.fishjam_id, where.management_token)
        # the plain SDK's REST client is synchronous: off the event loop (which also
        # runs the local Fishjam here)
        room = await asyncio.to_thread(client.create_room)
        agent = await asyncio.to_thread(client.create_agent, room.id)
        print(f"agent: {type(agent).__module__}.{type(agent).__qualname__}")
        echoed = 0
        try:
            async with agent.connect() as session:
                track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
                await where.person_speaks(room.id)
                try:
                    async with asyncio.timeout(seconds):
                        async for message in session.receive():
                            match message:
                                case IncomingTrackData(data=data):
                                    echoed += 1
                                    await track.send_chunk(data)
                except TimeoutError:
                    pass
        except AgentAuthError as error:
            print(f"Fishjam refused the agent: {error}")
            return
        print(f"echoed {echoed} chunks")
        recorded = where.chunks_recorded(agent.id)
        if recorded is not None:
            print(f"the local Fishjam recorded {recorded} chunks from the agent")
        if where.local is None:
            await asyncio.to_thread(client.delete_room, room.id)


if __name__ == "__main__":
    asyncio.run(main(arguments(__doc__, seconds=5.0).seconds))
