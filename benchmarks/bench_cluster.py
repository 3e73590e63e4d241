"""The agent server on several boxes sharing one Redis (issue 23).

- ``cluster-dispatch``: three boxes, each a real ``serve --redis`` process with one
  worker (as in production and the tests), follow the notifications of a local Fishjam
  (another process); a person joins each of a burst of rooms (from a few threads). The
  latency is the local Fishjam's own record of each agent's authentication minus its
  room's join request (CLOCK_MONOTONIC on both sides): p50/p99/max. Per stage (p50/p99
  since the stage before): the join request -> the job's request on the stream (its
  entry id) -> taken and leased by a box (its "took job" log line) -> its agent peer
  made over REST and handed to the worker ("job ... started") -> the worker's socket
  open at the local Fishjam -> authenticated. Also: the spread of the jobs over the
  boxes (largest deviation from even, %), the Redis commands per job (``INFO``: every
  command Redis ran during the burst, those inside scripts and the boxes' renewals
  included) with the most frequent by name, the CPU seconds of the boxes' processes
  and of Redis during the burst, the share of the machine's cores this benchmark's
  processes used, and the 1-minute load average.
  Beside it, ``one-box``: the same burst on one such process without Redis (same run).
  Both report the local Fishjam's CPU during the burst (``local_fishjam_cpu_s``,
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
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("aiohttp")
pytest.importorskip("redis")

from benchmarks.bench_server import LocalShare, cpu_seconds
from fishjam_fast.fleet import percentile
from fishjam_fast.local import LocalFishjamProcess
from fishjam_fast.runner import run

redis_asyncio = pytest.importorskip("redis.asyncio")

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
BURST = 150 if QUICK else 1000
KILLS = 5 if QUICK else 20
BOXES = 3
LEASE = 2.0
FAILOVER_ROOMS = 30
JOIN_THREADS = 6
"""Threads sending the burst's join requests (the default executor's size here)."""
STAGES = ("stream", "taken", "started", "opened", "authenticated")
"""A job's stages after the join: its request on the stream, taken (leased) by a box,
its agent peer made over REST and handed to a worker, the worker's socket open at the
local Fishjam, authenticated there."""

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server on PATH"
)


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


async def _commands(client: Any) -> dict[str, int]:
    """Commands Redis ran so far, in all and by name (those inside scripts included)."""
    stats = await client.info("commandstats")
    out = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    out["total"] = int((await client.info("stats"))["total_commands_processed"])
    return out


def _per_job(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """The commands of the burst per job: in all, then the most frequent by name."""
    spent = {name: calls - before.get(name, 0) for name, calls in after.items()}
    top = sorted((n for n in spent if n != "total"), key=lambda n: -spent[n])[:8]
    return {
        "redis_commands_per_job": spent["total"] / BURST,
        **{f"redis_{name}_per_job": spent[name] / BURST for name in top},
    }


def _join_all(local: LocalFishjamProcess, rooms: list[str]) -> dict[str, float]:
    """A person joins each room, from a few threads at once (the burst); returns each
    join request's ``time.monotonic()`` (the same clock as the local Fishjam's)."""
    joined: dict[str, float] = {}

    def join(room_id: str) -> None:
        joined[room_id] = time.monotonic()
        local.call("POST", f"/local/room/{room_id}/person", {})

    with ThreadPoolExecutor(JOIN_THREADS) as pool:
        list(pool.map(join, rooms))
    return joined


def _agents_by_room(local: LocalFishjamProcess, rooms: list[str]) -> dict[str, str]:
    wanted = set(rooms)
    out: dict[str, str] = {}
    for room in local.call("GET", "/room"):
        if room["id"] in wanted:
            for peer in room["peers"]:
                if peer["type"] == "agent" and peer["status"] == "connected":
                    out[room["id"]] = peer["id"]
    return out


def _log_times(logs: list[Path], offset: float) -> dict[str, dict[str, float]]:
    """Per room, from the boxes' INFO lines: when a box took its job ("took job") and
    when its agent peer was made and handed to a worker ("job ... started"), as
    ``time.monotonic()`` (log times are wall clock to the millisecond)."""
    took = re.compile(r"^(\S+ \S+) INFO \S+: took job \S+ in room (\S+) ")
    started = re.compile(r"^(\S+ \S+) INFO \S+: job \S+ started in room (\S+) ")
    out: dict[str, dict[str, float]] = {"taken": {}, "started": {}}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            for stage, pattern in (("taken", took), ("started", started)):
                if match := pattern.match(line):
                    wall = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    out[stage].setdefault(match[2], wall - offset)
    return out


async def _stream_times(client: Any, offset: float) -> dict[str, float]:
    """Per job key, when its request was added to the stream (the entry id's
    milliseconds: Redis's wall clock, this machine's), as ``time.monotonic()``."""
    out: dict[str, float] = {}
    for entry_id, fields in await client.xrange("fishjam_fast:jobs"):
        out.setdefault(fields["key"], int(entry_id.split("-")[0]) / 1000 - offset)
    return out


def _stages(
    rooms: list[str], joined: dict[str, float], marks: dict[str, dict[str, float]]
) -> dict[str, float]:
    """p50/p99 of each stage's time since the join, and of each stage's own length."""
    out: dict[str, float] = {}
    previous = "join"
    for stage in [s for s in STAGES if marks.get(s)]:
        since_join = [marks[stage][r] - joined[r] for r in rooms if r in marks[stage]]
        start = joined if previous == "join" else marks[previous]
        own = [marks[stage][r] - start[r] for r in rooms if r in marks[stage] and r in start]
        out[f"at_{stage}_p50_s"] = percentile(since_join, 0.5)
        out[f"at_{stage}_p99_s"] = percentile(since_join, 0.99)
        out[f"{previous}_to_{stage}_p50_s"] = percentile(own, 0.5)
        out[f"{previous}_to_{stage}_p99_s"] = percentile(own, 0.99)
        previous = stage
    return out


async def _dispatch_burst(
    local: LocalFishjamProcess, redis_url: str | None, count: int = BOXES, redis_pid: int = 0
) -> dict[str, float]:
    """``count`` boxes as real ``serve`` processes (one worker each) on the local
    Fishjam's notifications; a person joins each of BURST rooms at once; the latency is
    the local Fishjam's record of the agent's authentication minus the join request."""
    logs = Path(tempfile.mkdtemp())
    paths = [logs / f"{i}.log" for i in range(count)]
    boxes = [
        await _start_box(local, redis_url, path, ("--source", "socket", "--drain-timeout", "0"))
        for path in paths
    ]
    client = redis_asyncio.Redis.from_url(redis_url or "redis://", decode_responses=True)
    try:
        await _ready(boxes, paths)
        rooms = [local.call("POST", "/room", {})["room"]["id"] for _ in range(BURST)]
        before = await _commands(client) if redis_url else {}
        load_before = os.getloadavg()[0]
        box_pids = [p for box in boxes for p in _tree(box.pid)]
        redis_pids = [redis_pid] if redis_pid else []
        cpu_before = _cpu(box_pids), _cpu(redis_pids)
        share = LocalShare(local)
        joined = await asyncio.to_thread(_join_all, local, rooms)
        deadline = time.monotonic() + 300
        # cheap to ask while the burst runs (sockets open, authenticated or not), then
        # the room listing once they all are
        while int(local.call("GET", "/local/server")["open_sockets"]) < BURST:
            assert time.monotonic() < deadline, "the burst's agents did not all connect"
            await asyncio.sleep(0.1)
        while len(agents := _agents_by_room(local, rooms)) < BURST:
            assert time.monotonic() < deadline, f"{len(agents)} of {BURST} agents connected"
            await asyncio.sleep(0.1)
        local_part = share.result()
        cpu = _cpu(box_pids) - cpu_before[0], _cpu(redis_pids) - cpu_before[1]
        commands = _per_job(before, await _commands(client)) if redis_url else {}
        load_after = os.getloadavg()[0]
        offset = time.time() - time.monotonic()
        marks: dict[str, dict[str, float]] = {"stream": {}, "opened": {}, "authenticated": {}}
        if redis_url:
            marks["stream"] = await _stream_times(client, offset)
        for room_id, agent_id in agents.items():
            record = local.agent(agent_id)
            marks["opened"][room_id] = record["connection_log"][0]["opened_at"]
            marks["authenticated"][room_id] = next(
                a["at"] for a in record["auth_attempts"] if a["accepted"]
            )
        marks.update(_log_times(paths, offset))
        per_box = [p.read_text(errors="replace").count(" started in room ") for p in paths]
    finally:
        for box in boxes:
            if box.returncode is None:
                box.send_signal(signal.SIGKILL)
                await box.wait()
        await client.aclose()
    latencies = [marks["authenticated"][r] - joined[r] for r in rooms]
    even = BURST / count
    return {
        "rooms": float(BURST),
        "boxes": float(count),
        "p50_s": percentile(latencies, 0.5),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies),
        **_stages(rooms, joined, marks),
        "spread_max_deviation_pct": 100 * max(abs(n - even) for n in per_box) / even,
        **commands,
        # the boxes' processes (supervisors and workers) and Redis, over the burst
        "boxes_cpu_s": cpu[0],
        "redis_cpu_s": cpu[1],
        "machine_core_share": (cpu[0] + cpu[1] + local_part["local_fishjam_cpu_s"])
        / local_part["burst_wall_s"]
        / (os.cpu_count() or 1),
        "load_1min_before": load_before,
        "load_1min_after": load_after,
        **local_part,
    }


def _tree(pid: int) -> list[int]:
    """A process and its descendants (a box: its supervisor and its workers)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out.extend(_tree(int(child)))
    return out


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


async def _ready(boxes: list[Any], logs: list[Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for box, log in zip(boxes, logs, strict=True):
        while "agent server ready" not in log.read_text(errors="replace"):
            assert box.returncode is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"box not ready: {log.read_text()}"
            await asyncio.sleep(0.05)


async def _start_box(
    local: LocalFishjamProcess,
    redis_url: str | None,
    log: Path,
    extra: tuple[str, ...] = ("--source", "socket"),
) -> Any:
    # run from the log's directory: a worker (multiprocessing) puts its working directory
    # first on its path, and from the repository's root it would import the source tree
    # (no extension) instead of the installed package
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
        ),
        "FISHJAM_MANAGEMENT_TOKEN": local.token,
    }
    fleet = ("--redis", redis_url, "--lease-ttl", str(LEASE)) if redis_url else ()
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-P", "-m", "fishjam_fast", "serve", "server_app:idle",
            "--fishjam-url", local.url, "--workers", "1", "--metrics-port", "0",
            *fleet, *extra, env=env, stdout=out, stderr=out, cwd=log.parent,
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
                results.append(run(_dispatch_burst(local, redis.url, BOXES, redis.process.pid)))
            elif what == "one-box":  # the baseline: one box, no Redis, same burst
                results.append(run(_dispatch_burst(local, None, 1)))
            else:
                results.append(run(_failover(local, redis.url)))

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    benchmark.extra_info.update(results[0])
    print(what, results[0])
