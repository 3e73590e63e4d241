"""Entrypoints the agent server tests run in worker processes (importable by name: the
tests put this directory on sys.path, which spawned workers inherit)."""

from __future__ import annotations

import asyncio
import gc
import os

import fishjam_fast
from fishjam_fast import IncomingTrackData, OutgoingAudioTrackOptions

PREWARMED: list[int] = []


def prewarm() -> None:
    """Found by itself beside the entrypoints: marks the process."""
    PREWARMED.append(os.getpid())


async def echo(job: fishjam_fast.Job) -> None:
    """Echoes every chunk heard onto its own track until the room or agent goes."""
    async with job.agent.connect() as session:
        # the track's metadata says where the job ran and whether prewarm ran there first
        where = {
            "pid": os.getpid(),
            "prewarmed": PREWARMED == [os.getpid()],
            "job": job.id,
            "frozen": gc.get_freeze_count(),  # objects the worker froze after prewarm
        }
        track = await session.add_track(OutgoingAudioTrackOptions(metadata=where))
        async for message in session.receive():
            if isinstance(message, IncomingTrackData):
                await track.send_chunk(message.data)


async def idle(job: fishjam_fast.Job) -> None:
    """Connects and stays until cancelled or the session ends."""
    async with job.agent.connect() as session:
        async for _ in session.receive():
            pass


async def slow_exit(job: fishjam_fast.Job) -> None:
    """Connects, then stays; on cancellation keeps running for metadata["linger"] s."""
    async with job.agent.connect():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(float((job.metadata or {}).get("linger", 0)))
            raise


async def finite(job: fishjam_fast.Job) -> None:
    """Connects and ends after metadata["seconds"]."""
    async with job.agent.connect():
        await asyncio.sleep(float((job.metadata or {}).get("seconds", 0.5)))


async def crash(job: fishjam_fast.Job) -> None:
    """Raises when metadata says so, else idles."""
    if (job.metadata or {}).get("crash"):
        raise RuntimeError(f"crash requested in room {job.room_id}")
    await idle(job)
