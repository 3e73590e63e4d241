"""The agent server on several boxes sharing one Redis (issue 23).

- ``cluster-dispatch``: three boxes (``AgentServer`` with ``redis_url``, one worker
  each, in this process) follow the notifications of a local Fishjam (another process);
  a person joins each of a burst of rooms at once. Reported: latency from the join
  request to the agent authenticated (p50/p99) through Redis, the spread of the jobs
  over the boxes (largest deviation from even, %), and per job the Redis commands
  (``INFO stats``: every command the burst cost, those run inside the boxes' scripts and
  their polling included) and the boxes' Redis calls (a script, a read or a pipelined
  action each; polling included).
  Beside it, ``one-box``: the same burst on one box without Redis (same run). Both
  report the local Fishjam's CPU during the burst (``local_fishjam_cpu_s``,
  ``local_fishjam_core_share``): it shares this machine's cores with the boxes.
- ``cluster-failover``: three boxes as real ``serve --redis`` processes, 30 rooms; a
  box is SIGKILLed, the time until every one of its rooms is owned by another box and
  has its agent connected is measured, the box is started again; repeated (20 kills,
  5 in quick mode). Reported: p50/p99/max beside ``lease_ttl``.

Needs ``redis-server`` on PATH (skipped without it). Linux only. Quick mode
(``FISHJAM_FAST_BENCH_QUICK=1``) uses a smaller burst and fewer kills.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("aiohttp")
pytest.importorskip("redis")

from benchmarks.bench_server import LocalShare
from fishjam_fast.fleet import percentile
from fishjam_fast.local import LocalFishjamProcess
from fishjam_fast.runner import run
from fishjam_fast.server import AgentServer

redis_asyncio = pytest.importorskip("redis.asyncio")

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
BURST = 150 if QUICK else 1000
KILLS = 5 if QUICK else 20
BOXES = 3
LEASE = 2.0
FAILOVER_ROOMS = 30

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server on PATH"
)


def _app_path() -> None:
    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)  # the workers inherit it


class _Redis:
    """Our own redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._dir = tempfile.TemporaryDirectory()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Any = None

    def __enter__(self) -> _Redis:
        import subprocess

        self.process = subprocess.Popen(
            [
                str(shutil.which("redis-server")),
                "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", self._dir.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(10)
        self._dir.cleanup()


async def _until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark setup did not converge")
        await asyncio.sleep(0.02)


async def _commands(client: Any) -> int:
    return int((await client.info("stats"))["total_commands_processed"])


async def _dispatch_burst(
    local: LocalFishjamProcess, redis_url: str | None, count: int = BOXES
) -> dict[str, float]:
    rooms = [local.call("POST", "/room", {})["room"]["id"] for _ in range(BURST)]
    _app_path()
    boxes = [
        AgentServer(
            "server_app:idle",
            fishjam_url=local.url,
            management_token=local.token,
            workers=1,
            metrics_port=None,
            drain_timeout=0.0,
            redis_url=redis_url,
            lease_ttl=LEASE,
        )
        for _ in range(count)
    ]
    for box in boxes:
        await box.start()
    client = redis_asyncio.Redis.from_url(redis_url or "redis://", decode_responses=True)
    loop = asyncio.get_running_loop()
    joined: dict[str, float] = {}

    def join(room_id: str) -> None:
        joined[room_id] = time.monotonic()
        local.call("POST", f"/local/room/{room_id}/person", {})

    def connected() -> int:
        return sum(1 for b in boxes for j in b.supervisor.jobs() if j.connected)

    try:
        before = await _commands(client) if redis_url else 0
        calls_before = sum(b.cluster.operations for b in boxes if b.cluster is not None)
        share = LocalShare(local)
        await asyncio.gather(*(loop.run_in_executor(None, join, r) for r in rooms))
        await _until(lambda: connected() == BURST, 300)
        local_part = share.result()
        commands = await _commands(client) - before if redis_url else 0
        calls = sum(b.cluster.operations for b in boxes if b.cluster is not None) - calls_before
        latencies = []
        for room_id in rooms:
            (job,) = [j for b in boxes if (j := b.supervisor.job_for_key(room_id))]
            assert job.connected_at is not None
            latencies.append(job.connected_at - joined[room_id])
        per_box = [len(b.supervisor.jobs()) for b in boxes]
    finally:
        for box in boxes:
            await box.stop(drain=False)
        await client.aclose()
    even = BURST / count
    return {
        "rooms": float(BURST),
        "boxes": float(count),
        "p50_s": percentile(latencies, 0.5),
        "p99_s": percentile(latencies, 0.99),
        "spread_max_deviation_pct": 100 * max(abs(n - even) for n in per_box) / even,
        "redis_commands_per_job": commands / BURST,
        "redis_calls_per_job": calls / BURST,
        **local_part,
    }


async def _start_box(local: LocalFishjamProcess, redis_url: str, log: Path) -> Any:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
        ),
        "FISHJAM_MANAGEMENT_TOKEN": local.token,
    }
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-P", "-m", "fishjam_fast", "serve", "server_app:idle",
            "--fishjam-url", local.url, "--workers", "1", "--metrics-port", "0",
            "--source", "socket", "--redis", redis_url, "--lease-ttl", str(LEASE),
            env=env, stdout=out, stderr=out,
        )  # fmt: skip


async def _failover(local: LocalFishjamProcess, redis_url: str) -> dict[str, float]:
    client = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
    logs = Path(tempfile.mkdtemp())
    boxes = [await _start_box(local, redis_url, logs / f"{i}.log") for i in range(BOXES)]
    rooms = [local.call("POST", "/room", {})["room"]["id"] for _ in range(FAILOVER_ROOMS)]
    times: list[float] = []

    async def owners() -> dict[str, int | None]:
        values = await client.mget([f"fishjam_fast:lease:{r}" for r in rooms])
        return {r: int(v.split(":")[1]) if v else None for r, v in zip(rooms, values, strict=True)}

    def agents_connected() -> int:
        status = local.call("GET", "/room")
        return sum(
            1
            for room in status
            if room["id"] in rooms
            and any(p["type"] == "agent" and p["status"] == "connected" for p in room["peers"])
        )

    async def settled(pids: set[int]) -> bool:
        held = await owners()
        return all(o in pids for o in held.values()) and agents_connected() == len(rooms)

    try:
        deadline = time.monotonic() + 120
        while len(await client.keys("fishjam_fast:box:*")) < BOXES:
            assert time.monotonic() < deadline, "boxes did not start"
            await asyncio.sleep(0.2)
        for person_room in rooms:
            local.call("POST", f"/local/room/{person_room}/person", {})
        deadline = time.monotonic() + 60
        while not await settled({b.pid for b in boxes}):
            assert time.monotonic() < deadline, "rooms did not get agents"
            await asyncio.sleep(0.05)
        for kill in range(KILLS):
            victim = boxes[kill % BOXES]
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            start = time.monotonic()
            alive = {b.pid for b in boxes if b is not victim}
            while not await settled(alive):
                assert time.monotonic() - start < LEASE + 30, "rooms did not move"
                await asyncio.sleep(0.05)
            times.append(time.monotonic() - start)
            boxes[kill % BOXES] = await _start_box(local, redis_url, logs / f"r{kill}.log")
            await asyncio.sleep(2.0)  # the new box joins and takes its share of new jobs
    finally:
        for box in boxes:
            if box.returncode is None:
                box.send_signal(signal.SIGKILL)
                await box.wait()
        await client.aclose()
    return {
        "kills": float(KILLS),
        "lease_ttl_s": LEASE,
        "p50_s": percentile(times, 0.5),
        "p99_s": percentile(times, 0.99),
        "max_s": max(times),
    }


@pytest.mark.benchmark(timer=time.perf_counter)
@pytest.mark.parametrize("what", ["dispatch", "one-box", "failover"])
def test_cluster(benchmark: Any, what: str) -> None:
    benchmark.group = "cluster-failover" if what == "failover" else "cluster-dispatch"
    benchmark.name = f"cluster[{what}]"
    results: list[dict[str, float]] = []

    def run_once() -> None:
        with LocalFishjamProcess(seconds=600, record=False) as local, _Redis() as redis:
            if what == "dispatch":
                results.append(run(_dispatch_burst(local, redis.url)))
            elif what == "one-box":  # the baseline: one box, no Redis, same burst
                results.append(run(_dispatch_burst(local, None, 1)))
            else:
                results.append(run(_failover(local, redis.url)))

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    benchmark.extra_info.update(results[0])
    print(what, results[0])
