"""A fleet of echo agents in one process, measured: the demo's and the fan-out benchmark's
one measurement.

Every agent gets its own room on a local Fishjam running in a child process (its CPU is
not the client's), with a peer speaking 16 kHz audio in 20 ms chunks at real-time pace;
the agent echoes every chunk onto its own track. All agents connect first; then a
steady window opens, and everything below is measured over that window only:

- chunks delivered of those due (``agents * seconds / 20 ms``): a client that falls
  behind reads late, the server's writes wait, and fewer chunks arrive in the window;
- the round trip, peer chunk out -> echo back in, measured by the server (it times the
  echoes of its last 512 chunks, about 10 s: a round trip beyond that goes untimed, so
  a client that far behind shows a p99 near 10 s, a lower bound);
- the client's lateness: a chunk's arrival minus the agent's best-fitting 20 ms schedule;
- client CPU (``time.process_time``) per agent-second: per second of audio an agent
  received and echoed (50 chunks each way), so a client that falls behind is charged for
  the audio it handled, not for the wall time it took; from it the agents one core
  carries at 50% CPU (``0.5 / cpu_per_agent_second``: a linear reading of the cost
  measured at this N, stated as such);
- memory growth while the agents connected, per agent.

An implementation *kept real time* when at least 95% of the chunks due arrived and the
round trip's 99th percentile stayed within :data:`REAL_TIME_P99_MS`.

Works for ``fishjam_fast`` and the plain SDK's ``fishjam.agent`` alike (``module`` gives
``Agent``, ``OutgoingAudioTrackOptions`` and ``IncomingTrackData``). Needs the local
server (the ``local`` extra), imported when a fleet is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .runner import run

if TYPE_CHECKING:
    from .local.process import AgentSpec, LocalFishjamProcess

CHUNK_SECONDS = 0.020
"""The speaking peers' chunk duration."""

REAL_TIME_P99_MS = 100.0
"""The round trip (chunk out -> echo in) 99% of chunks must beat to count as real time."""

KEPT_PACE_FRACTION = 0.95
"""The share of due chunks that must arrive in the window to count as kept pace."""

CONNECT_SECONDS = 60.0
"""How long all agents may take to connect before the window opens anyway."""

WARMUP_SECONDS = 1.0
"""How long the fleet runs after every agent connected, before the window opens."""

STOP_SECONDS = 10.0
"""How long agents may take to close after the window before they are cancelled."""

SPEAKER = {"source": "noise", "seconds": 10.0, "realtime": True, "loop": True}
"""Each room's speaking peer: 10 s of noise, looped, at real-time pace."""


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` (nearest rank), nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class FleetResult:
    """One implementation's fleet, measured over the steady window."""

    implementation: str
    loop: str
    agents: int
    connected: int
    seconds: float
    cpu_seconds: float
    chunks_received: int
    chunks_due: int
    errors: int
    round_trip_p50_ms: float
    round_trip_p99_ms: float
    lateness_p50_ms: float
    lateness_p99_ms: float
    rss_per_agent_kib: float
    error_samples: list[str] = field(default_factory=list)

    @property
    def cpu_per_agent_second(self) -> float:
        """Client CPU seconds per second of audio one agent received (and echoed)."""
        audio_seconds = self.chunks_received * CHUNK_SECONDS
        return self.cpu_seconds / audio_seconds if audio_seconds else math.nan

    @property
    def agents_per_core_at_half(self) -> float:
        """Agents one core carries at 50% CPU, read linearly from the cost at this N."""
        cost = self.cpu_per_agent_second
        return 0.5 / cost if cost > 0 else math.nan

    @property
    def delivered_fraction(self) -> float:
        """Chunks that arrived in the window, of those due."""
        return self.chunks_received / self.chunks_due if self.chunks_due else math.nan

    @property
    def kept_pace(self) -> bool:
        """At least :data:`KEPT_PACE_FRACTION` of the chunks due arrived."""
        return self.chunks_due > 0 and self.delivered_fraction >= KEPT_PACE_FRACTION

    @property
    def kept_real_time(self) -> bool:
        """Kept pace, every agent connected, and the round trip's p99 within bounds."""
        return (
            self.kept_pace
            and self.connected == self.agents
            and self.round_trip_p99_ms <= REAL_TIME_P99_MS
        )

    def as_dict(self) -> dict[str, Any]:
        """Every field and derived figure, JSON-ready (for benchmark ``extra_info``)."""
        out = asdict(self)
        del out["error_samples"]
        for name in (
            "cpu_per_agent_second",
            "agents_per_core_at_half",
            "delivered_fraction",
            "kept_pace",
            "kept_real_time",
        ):
            out[name] = getattr(self, name)
        return out


@dataclass
class Progress:
    """What the window has seen so far (handed to the progress callback twice a second)."""

    elapsed: float
    seconds: float
    chunks_received: int
    chunks_echoed: int
    cpu_seconds: float
    done: bool = False


@dataclass
class _Window:
    """The measured window: agents connect first, then every count and the CPU clock
    start together, so connection set-up is not charged to the steady state."""

    open: bool = False
    connected: int = 0
    received: int = 0
    echoed: int = 0
    timeouts: list[asyncio.Timeout] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _AgentLog:
    arrivals: list[float] = field(default_factory=list)  # perf_counter, window only
    echoed: int = 0  # echoes sent in the window


@dataclass
class WindowResult:
    """The client-side figures of one window (:func:`run_window`)."""

    seconds: float
    cpu_seconds: float
    connected: int
    received: int
    errors: list[str]
    echoed_per_agent: list[int]
    lateness: list[float]
    rss_growth_kib: int


async def _echo(module: ModuleType, agent: Any, window: _Window, log: _AgentLog) -> None:
    """One agent: connect, add a track, echo every chunk heard until the window ends."""
    try:
        async with agent.connect() as session:
            track = await session.add_track(module.OutgoingAudioTrackOptions())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None) as timeout:  # set when the window opens
                    window.timeouts.append(timeout)
                    window.connected += 1
                    async for message in session.receive():
                        if not isinstance(message, module.IncomingTrackData):
                            continue
                        if window.open:
                            window.received += 1
                            log.arrivals.append(time.perf_counter())
                        await track.send_chunk(message.data)
                        if window.open:
                            window.echoed += 1
                            log.echoed += 1
    except Exception as exc:  # one agent failing must not hide the others' results
        window.errors.append(f"{type(exc).__name__}: {exc}")


def rss_kib() -> int:
    """This process's resident memory in KiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:  # not Linux: memory is not reported
        pass
    return 0


def _lateness(arrivals: list[float]) -> list[float]:
    """Each arrival minus the best-fitting 20 ms schedule (the earliest arrival is zero)."""
    if len(arrivals) < 2:
        return []
    offset = min(t - i * CHUNK_SECONDS for i, t in enumerate(arrivals))
    return [t - i * CHUNK_SECONDS - offset for i, t in enumerate(arrivals)]


async def run_window(
    module: ModuleType,
    agents: list[Any],
    seconds: float,
    progress: Callable[[Progress], None] | None = None,
    warmup: float = WARMUP_SECONDS,
) -> WindowResult:
    """Connects every agent, then runs them all for ``seconds`` of measured window.

    Args:
        module: ``fishjam_fast`` or ``fishjam.agent``: where the agents' option and
            message classes come from.
        agents: Agents of that module, not yet connected.
        seconds: The window's length.
        progress: Called twice a second during the window, and once at its end.
        warmup: Seconds between the last agent connecting and the window opening.

    Returns:
        The window's client-side figures.
    """
    window = _Window()
    logs = [_AgentLog() for _ in agents]
    loop = asyncio.get_running_loop()
    rss_before = rss_kib()
    tasks = [
        asyncio.create_task(_echo(module, a, window, log))
        for a, log in zip(agents, logs, strict=True)
    ]
    connect_deadline = loop.time() + CONNECT_SECONDS
    while window.connected + len(window.errors) < len(agents) and loop.time() < connect_deadline:
        await asyncio.sleep(0.05)
    rss_growth = rss_kib() - rss_before
    connected = window.connected
    await asyncio.sleep(warmup)
    start_wall, start_cpu = loop.time(), time.process_time()
    window.open = True
    for timeout in window.timeouts:
        timeout.reschedule(start_wall + seconds)
    while loop.time() < start_wall + seconds and not all(t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=min(0.5, max(0.0, start_wall + seconds - loop.time())))
        if progress is not None and loop.time() < start_wall + seconds:
            progress(_progress(window, loop.time() - start_wall, seconds, start_cpu))
    wall, cpu = loop.time() - start_wall, time.process_time() - start_cpu
    window.open = False
    if progress is not None:
        progress(_progress(window, wall, seconds, start_cpu, done=True))
    _, pending = await asyncio.wait(tasks, timeout=STOP_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return WindowResult(
        seconds=wall,
        cpu_seconds=cpu,
        connected=connected,
        received=window.received,
        errors=window.errors,
        echoed_per_agent=[log.echoed for log in logs],
        lateness=[x for log in logs for x in _lateness(log.arrivals)],
        rss_growth_kib=rss_growth,
    )


def _progress(
    window: _Window, elapsed: float, seconds: float, start_cpu: float, done: bool = False
) -> Progress:
    return Progress(
        elapsed,
        seconds,
        window.received,
        window.echoed,
        time.process_time() - start_cpu,
        done,
    )


def window_round_trips(samples: list[float], count: int, echoed: int) -> list[float]:
    """The round trips of the window's ``echoed`` echoes, from the server's record.

    The server keeps every round trip in arrival order up to its sample size, then a
    uniform sample of the whole run. While it kept all of them, the last ``echoed`` are
    the window's; beyond that the sample stands for the run (mostly the window).

    Args:
        samples: The agent's ``echo_latencies``.
        count: How many round trips the server timed (``echo_count``).
        echoed: How many echoes the agent sent in the window.
    """
    if count > len(samples):
        return samples
    return samples[len(samples) - echoed :] if echoed else []


def create_local_agents(server: LocalFishjamProcess, count: int) -> list[AgentSpec]:
    """A room per agent on ``server``, each with an agent peer and a speaking peer."""
    return [server.create_agent(SPEAKER) for _ in range(count)]


def measure_local(
    server: LocalFishjamProcess,
    module: ModuleType,
    name: str,
    agents: int,
    seconds: float,
    *,
    use_uvloop: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> FleetResult:
    """Measures ``agents`` echo agents of ``module`` against a local Fishjam.

    Args:
        server: The local Fishjam (its rooms are created here and deleted after).
        module: ``fishjam_fast`` or ``fishjam.agent``.
        name: The implementation's name in the result.
        agents: How many agents, a room each.
        seconds: The measured window.
        use_uvloop: Run the agents on uvloop (where installed), else on asyncio.
        progress: Called during the window (see :func:`run_window`).

    Returns:
        The fleet's figures.
    """
    from .runner import has_uvloop

    specs = create_local_agents(server, agents)
    fleet = [module.Agent(s.peer_id, s.room_id, s.token, s.url) for s in specs]
    window = run(run_window(module, fleet, seconds, progress), use_uvloop=use_uvloop)
    round_trips: list[float] = []
    for spec, echoed in zip(specs, window.echoed_per_agent, strict=True):
        summary = server.call("GET", f"/local/agent/{spec.peer_id}")
        round_trips += window_round_trips(summary["echo_latencies"], summary["echo_count"], echoed)
        server.call("DELETE", f"/room/{spec.room_id}")
    return FleetResult(
        implementation=name,
        loop="uvloop" if use_uvloop and has_uvloop() else "asyncio",
        agents=agents,
        connected=window.connected,
        seconds=window.seconds,
        cpu_seconds=window.cpu_seconds,
        chunks_received=window.received,
        chunks_due=round(agents * window.seconds / CHUNK_SECONDS),
        errors=len(window.errors),
        round_trip_p50_ms=1e3 * percentile(round_trips, 0.50),
        round_trip_p99_ms=1e3 * percentile(round_trips, 0.99),
        lateness_p50_ms=1e3 * percentile(window.lateness, 0.50),
        lateness_p99_ms=1e3 * percentile(window.lateness, 0.99),
        rss_per_agent_kib=window.rss_growth_kib / agents,
        error_samples=window.errors[:3],
    )
