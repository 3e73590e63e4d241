"""The fan-out measurement: N echo agents in one process, each hearing one real-time peer.

The local Fishjam runs in a child process and gives every agent its own room with a
peer speaking 16 kHz noise in 20 ms chunks at real-time pace; every agent echoes each
chunk onto its own track. After a warm-up, the client's CPU time (``process_time``)
over a steady window gives CPU per agent-second, and from it the number of such agents
one core carries at 50% CPU (``0.5 / cpu_per_agent_second``: a linear reading of the
measured cost, stated as such). Lateness of a chunk is its arrival time minus the
agent's best-fitting 20 ms schedule (the earliest arrival defines zero); the server
checks it kept pace (chunks delivered vs due) so an overloaded server is reported, not
silently counted as a fast client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from fishjam_fast.local import LocalFishjamProcess
from fishjam_fast.local.process import AgentSpec

CHUNK_SECONDS = 0.020


@dataclass
class FanoutResult:
    """One fan-out run."""

    implementation: str
    loop: str
    agents: int
    seconds: float
    cpu_seconds: float
    chunks_received: int
    chunks_due: int
    errors: int
    lateness_p50_ms: float
    lateness_p99_ms: float
    rss_per_agent_kib: float

    @property
    def cpu_per_agent_second(self) -> float:
        return self.cpu_seconds / (self.agents * self.seconds)

    @property
    def agents_per_core_at_half(self) -> float:
        return 0.5 / self.cpu_per_agent_second if self.cpu_per_agent_second else float("inf")

    @property
    def kept_pace(self) -> bool:
        """The server delivered at least 95% of the chunks due in the window."""
        return self.chunks_received >= 0.95 * self.chunks_due

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cpu_per_agent_second"] = self.cpu_per_agent_second
        out["agents_per_core_at_half"] = self.agents_per_core_at_half
        out["kept_pace"] = self.kept_pace
        return out


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _fanout(
    module: ModuleType, specs: list[AgentSpec], warmup: float, seconds: float
) -> tuple[float, int, int, list[float], int]:
    window = {"open": False, "received": 0}
    arrivals: list[list[float]] = [[] for _ in specs]
    errors = 0
    stop = asyncio.Event()

    async def agent_task(index: int, spec: AgentSpec) -> None:
        nonlocal errors
        agent = module.Agent(spec.peer_id, spec.room_id, spec.token, spec.url)
        mine = arrivals[index]
        try:
            async with agent.connect() as session:
                track = await session.add_track(module.OutgoingAudioTrackOptions())
                with contextlib.suppress(asyncio.CancelledError):
                    async for message in session.receive():
                        if window["open"]:
                            window["received"] += 1
                            mine.append(time.perf_counter())
                        await track.send_chunk(message.data)
                        if stop.is_set():
                            break
        except Exception:
            errors += 1

    rss_before = _rss_kib()
    tasks = [asyncio.create_task(agent_task(i, s)) for i, s in enumerate(specs)]
    await asyncio.sleep(warmup)
    rss_after = _rss_kib()
    window["open"] = True
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    window["open"] = False
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lateness = []
    for times in arrivals:
        if len(times) < 2:
            continue
        offset = min(t - i * CHUNK_SECONDS for i, t in enumerate(times))
        lateness += [t - i * CHUNK_SECONDS - offset for i, t in enumerate(times)]
    return cpu, int(window["received"]), errors, lateness, rss_after - rss_before


def run_fanout(
    module: ModuleType,
    name: str,
    agents: int,
    seconds: float,
    *,
    warmup: float = 2.0,
    use_uvloop: bool = True,
) -> FanoutResult:
    """Measures ``agents`` echo agents of ``module`` (fishjam_fast or fishjam.agent)."""
    import fishjam_fast

    with LocalFishjamProcess(seconds=120 + 2 * seconds + agents / 10) as server:
        speaker = {"source": "noise", "seconds": 10.0, "realtime": True, "loop": True}
        specs = [server.create_agent(speaker) for _ in range(agents)]
        cpu, received, errors, lateness, rss = fishjam_fast.run(
            _fanout(module, specs, warmup, seconds), use_uvloop=use_uvloop
        )
    return FanoutResult(
        implementation=name,
        loop="uvloop" if use_uvloop else "asyncio",
        agents=agents,
        seconds=seconds,
        cpu_seconds=cpu,
        chunks_received=received,
        chunks_due=round(agents * seconds / CHUNK_SECONDS),
        errors=errors,
        lateness_p50_ms=1e3 * _percentile(lateness, 0.50),
        lateness_p99_ms=1e3 * _percentile(lateness, 0.99),
        rss_per_agent_kib=rss / agents,
    )
