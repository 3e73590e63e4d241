"""A fleet: N agents in N rooms, all on one event loop in one process.

Shows how fishjam_fast runs many agents at once: the rooms and agents are created
concurrently with the async REST client, and each agent echoes with the fast path,
``session.on_track_data(callback)`` answering with ``track.send_chunk_nowait``: no
task, future or queue per chunk. A chunk that cannot be sent at once (the socket's
write buffer is full) is counted and skipped, never queued without bound; one agent
that fails is reported without stopping the others.

Run it (from a clone: ``.venv/bin/python`` after ``bash scripts/test.sh``)::

    python examples/fleet.py --seconds 5 --agents 20

It uses the local Fishjam (in this process: its CPU is counted with the agents'; the
demo, ``bash scripts/demo.sh``, measures a fleet with the server in another process)
with a simulated person speaking in every room, or your Fishjam with ``FISHJAM_ID``
and ``FISHJAM_MANAGEMENT_TOKEN`` set (then join any of the rooms it prints and speak).
It ends after ``--seconds`` and prints what the fleet echoed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import fishjam_fast
from fishjam_fast import (
    Agent,
    AgentWouldBlockError,
    AsyncFishjamClient,
    IncomingTrackData,
    OutgoingAudioTrackOptions,
)

from _fishjam import Fishjam, arguments, fishjam


@dataclass
class Echoes:
    """What one agent did."""

    echoed: int = 0
    skipped: int = 0  # would have blocked: dropped, not queued


async def echo(agent: Agent, room_id: str, where: Fishjam, seconds: float) -> Echoes:
    """One agent: echoes its room for ``seconds``."""
    counts = Echoes()
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))

        def on_chunk(message: IncomingTrackData) -> None:  # called as each chunk arrives
            try:
                track.send_chunk_nowait(message.data)
                counts.echoed += 1
            except AgentWouldBlockError:
                counts.skipped += 1

        session.on_track_data(on_chunk)
        await where.person_speaks(room_id)
        try:
            async with asyncio.timeout(seconds):
                async for _ in session.receive():  # images only now; raises if it fails
                    pass
        except TimeoutError:
            pass
    return counts


async def main(agents: int, seconds: float) -> None:
    async with fishjam() as where:
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            rooms = await asyncio.gather(*(client.create_room() for _ in range(agents)))
            fleet = await asyncio.gather(*(client.create_agent(room.id) for room in rooms))
            print(f"{agents} agents in {agents} rooms, one event loop")
            cpu = time.process_time()
            runs = [echo(a, room.id, where, seconds) for a, room in zip(fleet, rooms, strict=True)]
            results = await asyncio.gather(*runs, return_exceptions=True)
            cpu = time.process_time() - cpu
            if where.local is None:
                await asyncio.gather(*(client.delete_room(room.id) for room in rooms))
        done = [r for r in results if isinstance(r, Echoes)]
        for error in (r for r in results if not isinstance(r, Echoes)):
            print(f"an agent failed: {error!r}")
        echoed = [r.echoed for r in done]
        print(
            f"{len(done)} of {agents} agents ran: {sum(echoed)} chunks echoed in {seconds:g} s "
            f"(per agent {min(echoed, default=0)} to {max(echoed, default=0)}), "
            f"{sum(r.skipped for r in done)} skipped; CPU {100 * cpu / seconds:.0f}% of a core"
        )
        if where.local is not None:
            recorded = sum(where.chunks_recorded(agent.id) or 0 for agent in fleet)
            print(f"the local Fishjam recorded {recorded} chunks from the agents")


if __name__ == "__main__":
    args = arguments(__doc__, seconds=5.0, agents=10)
    if args.agents < 1:
        raise SystemExit("--agents must be at least 1")
    fishjam_fast.run(main(args.agents, args.seconds))
