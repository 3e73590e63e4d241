"""``python -m fishjam_fast demo --server``: the agent server dispatching while simulated
people join, speak and leave many rooms of a local Fishjam (in a child process).

People join the rooms in waves; each speaks for a while and leaves. The server follows
the notifications: one echo agent per room while someone is in it. Every second a line
says how many rooms have people, how many jobs run on which worker, and the dispatch
latency so far (person joined -> agent authenticated); at the end every job has ended
and every agent peer is deleted.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import fishjam_fast
from fishjam_fast import IncomingTrackData, OutgoingAudioTrackOptions

__all__ = ["echo", "run_demo"]

STAY_SECONDS = (2.0, 5.0)
"""How long a person stays, drawn uniformly."""


async def echo(job: fishjam_fast.Job) -> None:
    """The demo's job: echo the room."""
    async with job.agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        async for message in session.receive():
            if isinstance(message, IncomingTrackData):
                await track.send_chunk(message.data)


def _percentile(values: list[float], q: float) -> float:
    from ..fleet import percentile

    return percentile(values, q) if values else float("nan")


async def _play(local: Any, server: Any, rooms: int, seconds: float, out: Any) -> int:
    loop = asyncio.get_running_loop()

    def call(method: str, path: str, body: Any = None) -> Any:
        return loop.run_in_executor(None, local.call, method, path, body)

    room_ids = [(await call("POST", "/room", {}))["room"]["id"] for _ in range(rooms)]
    present: dict[str, str] = {}  # room -> the person in it
    leave_at: dict[str, float] = {}
    rng = random.Random(19)
    start = time.monotonic()
    next_line = start + 1.0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        for room_id in [r for r, t in leave_at.items() if t <= now]:
            peer_id = present.pop(room_id)
            del leave_at[room_id]
            await call("DELETE", f"/local/room/{room_id}/person/{peer_id}")
        empty = [r for r in room_ids if r not in present]
        for room_id in rng.sample(empty, k=min(len(empty), max(1, rooms // 10))):
            body = {"audio": {"source": "noise", "seconds": STAY_SECONDS[1] + 1.0}}
            person = await call("POST", f"/local/room/{room_id}/person", body)
            present[room_id] = person["peer_id"]
            leave_at[room_id] = now + rng.uniform(*STAY_SECONDS)
        if now >= next_line:
            next_line += 1.0
            jobs = server.supervisor.jobs()
            per_worker = [len(w.jobs) for w in server.supervisor.workers]
            latencies = [
                j.connected_at - j.submitted_at for j in jobs if j.connected_at is not None
            ]
            print(
                f"{now - start:5.1f} s: {len(present):4d} rooms with a person, "
                f"{len(jobs):4d} jobs (per worker {per_worker}), dispatch latency "
                f"p50 {_percentile(latencies, 0.5) * 1000:.0f} ms "
                f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms",
                file=out,
                flush=True,
            )
        await asyncio.sleep(0.1)
    for room_id, peer_id in present.items():
        await call("DELETE", f"/local/room/{room_id}/person/{peer_id}")
    deadline = time.monotonic() + 15.0
    while server.supervisor.jobs() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    left = len(server.supervisor.jobs())
    peers = 0
    for room_id in room_ids:
        room = await call("GET", f"/room/{room_id}")
        peers += sum(1 for p in room["peers"] if p["type"] == "agent")
    print(
        f"everyone left: {left} jobs still running, {peers} agent peers left", file=out, flush=True
    )
    return 0 if left == 0 and peers == 0 else 1


async def run_demo(rooms: int, seconds: float, workers: int | str, out: Any) -> int:
    """Plays people in ``rooms`` rooms for ``seconds`` while the agent server dispatches.

    Returns:
        0 when every job ended and every agent peer was deleted after everyone left.
    """
    from ..local.process import LocalFishjamProcess
    from .agent_server import AgentServer

    with LocalFishjamProcess(seconds=seconds + 120.0) as local:
        print(f"local Fishjam at {local.url}; {rooms} rooms", file=out, flush=True)
        server = AgentServer(
            echo,
            fishjam_url=local.url,
            management_token=local.token,
            workers=workers,
            metrics_port=None,
            drain_timeout=5.0,
        )
        async with server:
            return await _play(local, server, rooms, seconds, out)
