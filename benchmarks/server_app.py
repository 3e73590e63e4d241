"""The entrypoints the agent server benchmark runs in its worker processes (importable
by name: bench_server.py puts this directory on sys.path, which the workers inherit)."""

from __future__ import annotations

import fishjam_fast
from fishjam_fast import IncomingTrackData, OutgoingAudioTrackOptions


async def echo(job: fishjam_fast.Job) -> None:
    """Echoes every chunk heard onto its own track."""
    async with job.agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        async for message in session.receive():
            if isinstance(message, IncomingTrackData):
                await track.send_chunk(message.data)


async def idle(job: fishjam_fast.Job) -> None:
    """Connects and stays (memory per agent; dispatch latency)."""
    async with job.agent.connect() as session:
        async for _ in session.receive():
            pass
