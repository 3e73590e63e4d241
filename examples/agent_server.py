"""An agent server: an echo agent in every room while people are in it, on every core.

Shows fishjam_fast's agent server: it follows Fishjam's notifications, starts a job when
the first person joins a room and ends it when the last one leaves. ``entry`` runs once
per job, in a worker process (one per core), with an agent the server created for the
job (and deletes after it); ``prewarm`` runs once in each worker before its first job.

Run it (from a clone: after ``bash scripts/demo.sh`` or ``bash scripts/test.sh``, with
``.venv/bin/python``)::

    python examples/agent_server.py --seconds 5 --rooms 4

On the local Fishjam a simulated person joins each room, speaks, and leaves at the end;
with ``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set, on your Fishjam: join a room
it prints and speak. In production, the same entrypoint from the command line::

    python -m fishjam_fast serve agent_server:entry --fishjam-url URL --workers auto
"""

from __future__ import annotations

import asyncio
import os
import time

import fishjam_fast
from fishjam_fast import AsyncFishjamClient, IncomingTrackData, OutgoingAudioTrackOptions

from _fishjam import arguments, fishjam

WARMED_AT = 0.0


def prewarm() -> None:
    """Once per worker process, before its first job: load models, open pools here."""
    global WARMED_AT
    WARMED_AT = time.time()


async def entry(job: fishjam_fast.Job) -> None:
    """One job: echo what the room says until the server ends the job."""
    async with job.agent.connect() as session:
        where = {"worker_pid": os.getpid(), "warmed_at": WARMED_AT}
        track = await session.add_track(OutgoingAudioTrackOptions(metadata=where))
        async for message in session.receive():
            if isinstance(message, IncomingTrackData):
                await track.send_chunk(message.data)


async def main(seconds: float, rooms: int) -> None:
    async with fishjam() as where:
        server = fishjam_fast.AgentServer(
            entry,
            fishjam_url=where.fishjam_id,
            management_token=where.management_token,
            metrics_port=None,  # a real server serves /metrics and /health (9464)
            drain_timeout=2.0,
        )
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            async with server:
                room_ids = [(await client.create_room()).id for _ in range(rooms)]
                people = []
                for room_id in room_ids:
                    if where.local is None:
                        print(f"room {room_id}: join it and speak", flush=True)
                    else:
                        from fishjam_fast.local import AudioSource

                        speech = AudioSource.speech("Hello! Is anyone there? I am a person.")
                        person = await where.local.join_person(room_id, audio=speech)
                        people.append(person.peer_id)
                await asyncio.sleep(seconds)
                jobs = server.supervisor.jobs()
                per_worker = [len(w.jobs) for w in server.supervisor.workers]
                print(
                    f"{len(jobs)} jobs in {rooms} rooms on {len(per_worker)} workers "
                    f"(jobs per worker: {per_worker})"
                )
                agents = [j.agent_peer_id for j in jobs if j.agent_peer_id is not None]
                for peer_id in people:  # the people leave: the server ends the jobs
                    assert where.local is not None
                    await where.local.leave_person(peer_id)
                deadline = time.monotonic() + 10
                while people and server.supervisor.jobs() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                if people:
                    print(f"after the people left: {len(server.supervisor.jobs())} jobs running")
            for room_id in room_ids:
                await client.delete_room(room_id)
        recorded = [where.chunks_recorded(peer_id) for peer_id in agents]
        if where.local is not None:
            print(
                f"the local Fishjam recorded {sum(r or 0 for r in recorded)} chunks "
                f"echoed by {sum(1 for r in recorded if r)} agents"
            )


if __name__ == "__main__":  # needed: the worker processes import this module
    args = arguments(__doc__, seconds=5.0, rooms=4)
    asyncio.run(main(args.seconds, args.rooms))
