"""``python -m fishjam_fast demo``: echo agents against a local (or a real) Fishjam.

Starts the local Fishjam in another process, makes a room per agent with a simulated
peer that speaks, and connects fishjam_fast agents that echo what they hear on their
own track. A live line shows progress; a table sums up traffic, the server-measured
round trip (peer chunk out -> echo back in) and the client CPU spent per message. With
the plain SDK installed, the same run is repeated on ``fishjam.agent`` beside it.

With ``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set (or ``--fishjam-id`` and
``--management-token``), the agents join a room on that Fishjam instead (created with
the plain SDK's ``FishjamClient``) and echo whoever speaks there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from types import ModuleType

from . import _codec
from .local.process import AgentSpec, LocalFishjamProcess
from .runner import has_uvloop, run


@dataclass
class Counters:
    """Traffic of one implementation's run, all agents together."""

    chunks_in: int = 0
    bytes_in: int = 0
    chunks_out: int = 0
    bytes_out: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """What one implementation did in one run."""

    name: str
    seconds: float
    cpu_seconds: float
    counters: Counters
    latencies: list[float]

    @property
    def messages(self) -> int:
        return self.counters.chunks_in + self.counters.chunks_out

    @property
    def cpu_per_message_us(self) -> float:
        return 1e6 * self.cpu_seconds / self.messages if self.messages else float("nan")


def create_local_agents(server: LocalFishjamProcess, count: int) -> list[AgentSpec]:
    """A room per agent, each with an agent peer and a peer speaking in a loop."""
    speaker = {"source": "speech", "realtime": True, "loop": True}
    return [server.create_agent(speaker) for _ in range(count)]


CONNECT_SECONDS = 30.0
"""How long all agents may take to connect before the measured window opens anyway."""


@dataclass
class Window:
    """The measured window: agents connect first, then every count and the CPU clock
    start together, so connection set-up is not charged to the steady state."""

    open: bool = False
    connected: int = 0
    timeouts: list[asyncio.Timeout] = field(default_factory=list)


async def echo(module: ModuleType, spec: AgentSpec, window: Window, counters: Counters) -> None:
    """One agent: connect, add a track, echo every chunk heard until the window ends."""
    agent = module.Agent(spec.peer_id, spec.room_id, spec.token, spec.url)
    try:
        async with agent.connect() as session:
            track = await session.add_track(module.OutgoingAudioTrackOptions())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None) as timeout:  # set when the window opens
                    window.timeouts.append(timeout)
                    window.connected += 1
                    async for message in session.receive():
                        if isinstance(message, module.IncomingTrackData):
                            await track.send_chunk(message.data)
                            if window.open:
                                counters.chunks_in += 1
                                counters.bytes_in += len(message.data)
                                counters.chunks_out += 1
                                counters.bytes_out += len(message.data)
    except Exception as exc:  # one agent failing must not hide the others' results
        if window.open or not window.timeouts:
            counters.errors.append(f"{type(exc).__name__}: {exc}")


async def run_agents(
    module: ModuleType, name: str, specs: list[AgentSpec], seconds: float, live: bool
) -> tuple[float, float, Counters]:
    """Connects every agent, then runs them for ``seconds``.

    Returns:
        The measured window's wall and CPU seconds, and the traffic counters.
    """
    counters = Counters()
    window = Window()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(echo(module, spec, window, counters)) for spec in specs]
    connect_deadline = loop.time() + CONNECT_SECONDS
    while window.connected < len(specs) and loop.time() < connect_deadline:
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    start_wall, start_cpu = loop.time(), time.process_time()
    window.open = True
    for timeout in window.timeouts:
        timeout.reschedule(start_wall + seconds)
    while not all(t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=0.5)
        elapsed = loop.time() - start_wall
        cpu = time.process_time() - start_cpu
        line = (
            f"  {name:<12} {elapsed:5.1f}/{seconds:.0f} s  chunks in {counters.chunks_in:6d}  "
            f"out {counters.chunks_out:6d}  CPU {100 * cpu / max(elapsed, 1e-9):5.1f}%"
        )
        if live:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif all(t.done() for t in tasks) or int(elapsed * 2) % 2 == 0:
            print(line, file=sys.stderr, flush=True)
    if live:
        print(file=sys.stderr)
    return loop.time() - start_wall, time.process_time() - start_cpu, counters


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, nan if empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summary_table(results: list[RunResult], agents: int) -> str:
    """The closing table: one column per implementation, ratio column if two."""
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, values: list[str]) -> None:
        rows.append((label, values))

    add("agents", [str(agents) for _ in results])
    add("seconds", [f"{r.seconds:.1f}" for r in results])
    add("chunks in (peer -> agent)", [f"{r.counters.chunks_in:,}" for r in results])
    add("bytes in", [f"{r.counters.bytes_in:,}" for r in results])
    add("chunks out (echo)", [f"{r.counters.chunks_out:,}" for r in results])
    add("bytes out", [f"{r.counters.bytes_out:,}" for r in results])
    add("round trip p50 (ms)", [f"{1e3 * percentile(r.latencies, 0.5):.2f}" for r in results])
    add("round trip p99 (ms)", [f"{1e3 * percentile(r.latencies, 0.99):.2f}" for r in results])
    add("client CPU (% of a core)", [f"{100 * r.cpu_seconds / r.seconds:.2f}" for r in results])
    add("client CPU per message (us)", [f"{r.cpu_per_message_us:.1f}" for r in results])
    add("errors", [str(len(r.counters.errors)) for r in results])
    header = ["", *[r.name for r in results]]
    if len(results) == 2 and results[0].messages and results[1].messages:
        ratio = results[1].cpu_per_message_us / results[0].cpu_per_message_us
        header.append("ratio")
        rows = [(label, [*values, ""]) for label, values in rows]
        label, values = rows[-2]
        rows[-2] = (label, [*values[:-1], f"{ratio:.1f}x less"])
    widths = [max(len(header[0]), *(len(label) for label, _ in rows))]
    for i in range(1, len(header)):
        widths.append(max(len(header[i]), *(len(values[i - 1]) for _, values in rows)))
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for label, values in rows:
        cells = [
            label.ljust(widths[0]),
            *(v.rjust(w) for v, w in zip(values, widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def implementations(compare: bool) -> list[tuple[str, ModuleType]]:
    """fishjam_fast, and the plain SDK beside it when installed and wanted."""
    import fishjam_fast

    found: list[tuple[str, ModuleType]] = [("fishjam_fast", fishjam_fast)]
    if compare:
        try:
            import fishjam.agent as plain
        except ImportError:
            print("(install fishjam-server-sdk to compare with the plain SDK)", file=sys.stderr)
        else:
            found.append(("plain SDK", plain))
    return found


def run_local(args: argparse.Namespace) -> int:
    """The demo against the local Fishjam in a child process."""
    impls = implementations(not args.no_compare)
    budget = 30 + len(impls) * (args.seconds + 10) + args.agents
    live = sys.stderr.isatty()
    results = []
    with LocalFishjamProcess(budget) as server:
        print(f"local Fishjam at {server.url}", file=sys.stderr)
        for name, module in impls:
            specs = create_local_agents(server, args.agents)
            wall, cpu, counters = run(
                run_agents(module, name, specs, args.seconds, live), use_uvloop=not args.asyncio
            )
            latencies = [
                x
                for s in specs
                for x in server.call("GET", f"/local/agent/{s.peer_id}")["echo_latencies"]
            ]
            for spec in specs:
                server.call("DELETE", f"/room/{spec.room_id}")
            results.append(RunResult(name, wall, cpu, counters, latencies))
            for error in counters.errors[:3]:
                print(f"  {name} agent error: {error}", file=sys.stderr)
    loop_name = "asyncio" if args.asyncio or not has_uvloop() else "uvloop"
    codec = "native" if _codec.NATIVE else "pure-Python fallback"
    print(f"\n{args.agents} echo agent(s), {args.seconds:.0f} s each, on {loop_name}; ", end="")
    print(f"fishjam_fast codec: {codec}\n")
    print(summary_table(results, args.agents))
    failed = any(r.counters.chunks_in == 0 or r.counters.errors for r in results)
    return 1 if failed else 0


def run_remote(args: argparse.Namespace) -> int:
    """The demo against a real Fishjam: the agents echo whoever speaks in a new room."""
    try:
        from .client import FishjamClient
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = FishjamClient(args.fishjam_id, args.management_token)
    room = client.create_room()
    print(
        f"room {room.id} on {args.fishjam_id}: join it and speak; the agents echo you",
        file=sys.stderr,
    )
    agents = [client.create_agent(room.id) for _ in range(args.agents)]
    specs = [AgentSpec(a.id, a.room_id, a._token, a._fishjam_url) for a in agents]
    import fishjam_fast

    try:
        wall, cpu, counters = run(
            run_agents(fishjam_fast, "fishjam_fast", specs, args.seconds, sys.stderr.isatty()),
            use_uvloop=not args.asyncio,
        )
    finally:
        client.delete_room(room.id)
    print(summary_table([RunResult("fishjam_fast", wall, cpu, counters, [])], args.agents))
    return 1 if counters.errors else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's command-line options."""
    parser.add_argument("--seconds", type=float, default=5.0, help="run time per implementation")
    parser.add_argument("--agents", type=int, default=1, help="echo agents at once (a room each)")
    parser.add_argument("--no-compare", action="store_true", help="skip the plain SDK run")
    parser.add_argument("--asyncio", action="store_true", help="run on asyncio, not uvloop")
    parser.add_argument(
        "--fishjam-id", default=os.environ.get("FISHJAM_ID"), help="a real Fishjam (ID or URL)"
    )
    parser.add_argument(
        "--management-token",
        default=os.environ.get("FISHJAM_MANAGEMENT_TOKEN"),
        help="its management token",
    )


def main(args: argparse.Namespace) -> int:
    """Runs the demo; returns the exit status."""
    if args.seconds <= 0 or args.agents < 1:
        print("error: --seconds must be positive and --agents at least 1", file=sys.stderr)
        return 2
    if args.fishjam_id:
        if not args.management_token:
            print("error: a real Fishjam needs FISHJAM_MANAGEMENT_TOKEN too", file=sys.stderr)
            return 2
        return run_remote(args)
    return run_local(args)
