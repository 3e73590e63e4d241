"""``python -m fishjam_fast demo``: a fleet of echo agents, fishjam_fast beside the plain SDK.

Starts the local Fishjam in another process and measures a fleet of agents (100 by
default), each in its own room with a peer speaking at real-time pace and echoing it
(see :mod:`fishjam_fast.fleet`), first on fishjam_fast, then on the plain SDK when it
is installed. A live line shows progress; the summary says for each whether it kept
real time (chunks delivered of those due, round trip p50/p99), the client CPU per
agent-second and the agents one core carries. ``--chart PATH`` draws the comparison.

With ``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set (or ``--fishjam-id`` and
``--management-token``), the agents join one new room on that Fishjam instead (created
with :class:`~fishjam_fast.AsyncFishjamClient`) and echo whoever speaks there.

Imports nothing optional at load: the local server (aiohttp), the plain SDK and
matplotlib are imported when used.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from . import _codec
from .fleet import REAL_TIME_P99_MS, FleetResult, Progress, run_window
from .runner import has_uvloop, run

CHART_EXTRA = "pip install 'fishjam-fast[demo]'"
"""What installs matplotlib for ``--chart``."""


def progress_printer(name: str, live: bool) -> Callable[[Progress], None]:
    """The live progress line: ``\\r``-rewritten on a terminal, one line a second else."""
    last_second = [-1]

    def show(p: Progress) -> None:
        line = (
            f"  {name:<12} {p.elapsed:5.1f}/{p.seconds:.0f} s  chunks in {p.chunks_received:7d}"
            f"  echoed {p.chunks_echoed:7d}  CPU {100 * p.cpu_seconds / max(p.elapsed, 1e-9):5.1f}%"
        )
        if live:
            print("\r" + line, end="\n" if p.done else "", file=sys.stderr, flush=True)
        elif p.done or int(p.elapsed) != last_second[0]:
            last_second[0] = int(p.elapsed)
            print(line, file=sys.stderr, flush=True)

    return show


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def summary_table(results: list[FleetResult]) -> str:
    """The closing table: one column per implementation, a ratio column for two."""
    rows: list[tuple[str, list[str]]] = [
        ("agents connected", [f"{r.connected} of {r.agents}" for r in results]),
        ("measured window (s)", [f"{r.seconds:.1f}" for r in results]),
        (
            "chunks delivered of due",
            [
                f"{r.chunks_received:,} of {r.chunks_due:,} ({100 * r.delivered_fraction:.0f}%)"
                for r in results
            ],
        ),
        ("round trip p50 (ms)", [_ms(r.round_trip_p50_ms) for r in results]),
        ("round trip p99 (ms)", [_ms(r.round_trip_p99_ms) for r in results]),
        ("kept real time", ["yes" if r.kept_real_time else "NO" for r in results]),
        ("client CPU (% of a core)", [f"{100 * r.cpu_seconds / r.seconds:.1f}" for r in results]),
        (
            "CPU per agent-second (ms)",
            [f"{1e3 * r.cpu_per_agent_second:.2f}" for r in results],
        ),
        ("agents per core at 50% CPU", [f"{r.agents_per_core_at_half:,.0f}" for r in results]),
        ("errors", [str(r.errors) for r in results]),
    ]
    header = ["", *[r.implementation for r in results]]
    if len(results) == 2 and results[0].cpu_per_agent_second > 0:
        ratio = results[1].cpu_per_agent_second / results[0].cpu_per_agent_second
        header.append("ratio")
        rows = [
            (label, [*values, f"{ratio:.1f}x less" if label.startswith("CPU per") else ""])
            for label, values in rows
        ]
    widths = [max(len(header[0]), *(len(label) for label, _ in rows))]
    for i in range(1, len(header)):
        widths.append(max(len(header[i]), *(len(values[i - 1]) for _, values in rows)))

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line([label, *values]) for label, values in rows]
    out.append(
        f"(kept real time: every agent connected, >= 95% of the chunks due arrived, and the "
        f"round trip p99 <= {REAL_TIME_P99_MS:.0f} ms)"
    )
    return "\n".join(out)


def write_chart(results: list[FleetResult], path: Path) -> None:
    """A PNG comparing the implementations: CPU per agent-second, round-trip p50/p99.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.implementation for r in results]
    colors = ["tab:green", "tab:gray"][: len(results)]
    fig, (cpu_ax, rtt_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    cpu = [1e3 * r.cpu_per_agent_second for r in results]
    bars = cpu_ax.bar(names, cpu, color=colors)
    cpu_ax.bar_label(bars, [f"{c:.2f} ms" for c in cpu])
    cpu_ax.set_title("client CPU per agent-second (lower is better)")
    cpu_ax.set_ylabel("ms of CPU per second of one agent")
    width = 0.38
    for i, r in enumerate(results):
        values = [r.round_trip_p50_ms, r.round_trip_p99_ms]
        xs = [0 + (i - (len(results) - 1) / 2) * width, 1 + (i - (len(results) - 1) / 2) * width]
        drawn = rtt_ax.bar(xs, [0 if math.isnan(v) else v for v in values], width,
                           label=r.implementation, color=colors[i])  # fmt: skip
        rtt_ax.bar_label(drawn, [_ms(v) for v in values])
    rtt_ax.set_xticks([0, 1], ["p50", "p99"])
    rtt_ax.set_yscale("log")
    highest = max((v for r in results for v in (r.round_trip_p50_ms, r.round_trip_p99_ms)
                   if not math.isnan(v)), default=REAL_TIME_P99_MS)  # fmt: skip
    rtt_ax.set_ylim(0.1, 50 * max(highest, REAL_TIME_P99_MS))  # room for labels and legend
    rtt_ax.axhline(
        REAL_TIME_P99_MS,
        color="tab:red",
        linestyle="--",
        linewidth=1,
        label=f"real-time bound ({REAL_TIME_P99_MS:.0f} ms)",
    )
    rtt_ax.set_title("round trip, chunk out -> echo in (ms, log)")
    rtt_ax.legend(loc="upper left", fontsize="small")
    agents = results[0].agents
    fig.suptitle(f"{agents} echo agents in one process, {results[0].loop}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def implementations(compare: bool) -> list[tuple[str, ModuleType]]:
    """fishjam_fast, and the plain SDK beside it when installed and wanted."""
    import fishjam_fast

    found: list[tuple[str, ModuleType]] = [("fishjam_fast", fishjam_fast)]
    if compare:
        try:
            import fishjam.agent as plain
        except ImportError:
            print(f"(the plain SDK is not installed: {CHART_EXTRA} to compare)", file=sys.stderr)
        else:
            found.append(("plain SDK", plain))
    return found


def run_local(args: argparse.Namespace) -> int:
    """The fleet against the local Fishjam in a child process."""
    from .fleet import CONNECT_SECONDS, measure_local
    from .local.process import LocalFishjamProcess

    impls = implementations(not args.no_compare)
    budget = 60 + len(impls) * (args.seconds + CONNECT_SECONDS + 20) + args.agents
    live = sys.stderr.isatty()
    use_uvloop = not args.asyncio
    loop_name = "uvloop" if use_uvloop and has_uvloop() else "asyncio"
    codec = "native" if _codec.NATIVE else "pure-Python fallback"
    results = []
    with LocalFishjamProcess(budget) as server:
        print(
            f"local Fishjam at {server.url}: {args.agents} echo agents, a room each, "
            f"{args.seconds:g} s measured per implementation, on {loop_name}",
            file=sys.stderr,
        )
        for name, module in impls:
            print(f"  {name}: connecting {args.agents} agents ...", file=sys.stderr, flush=True)
            result = measure_local(
                server,
                module,
                name,
                args.agents,
                args.seconds,
                use_uvloop=use_uvloop,
                progress=progress_printer(name, live),
            )
            results.append(result)
            for error in result.error_samples:
                print(f"  {name} agent error: {error}", file=sys.stderr)
    print(f"\n{args.agents} echo agents on {loop_name}; fishjam_fast codec: {codec}\n")
    print(summary_table(results))
    if args.chart is not None:
        write_chart(results, args.chart)
        print(f"\nchart: {args.chart}")
    failed = any(r.chunks_received == 0 or r.errors for r in results[:1])
    return 1 if failed else 0


def run_remote(args: argparse.Namespace) -> int:
    """The fleet against a real Fishjam: the agents echo whoever speaks in a new room."""
    import fishjam_fast

    from .rest import AsyncFishjamClient

    async def fleet() -> tuple[str, float, float, int, int]:
        async with AsyncFishjamClient(args.fishjam_id, args.management_token) as client:
            room = await client.create_room()
            print(
                f"room {room.id}: join it and speak; {args.agents} agents echo you",
                file=sys.stderr,
            )
            try:
                agents = [await client.create_agent(room.id) for _ in range(args.agents)]
                window = await run_window(
                    fishjam_fast,
                    agents,
                    args.seconds,
                    progress_printer("fishjam_fast", sys.stderr.isatty()),
                    warmup=0.0,
                )
            finally:
                await client.delete_room(room.id)
        return room.id, window.seconds, window.cpu_seconds, window.received, len(window.errors)

    if args.chart is not None:
        print("(--chart compares the two implementations on the local Fishjam only)")
    room_id, seconds, cpu, received, errors = run(fleet(), use_uvloop=not args.asyncio)
    print(
        f"\nroom {room_id}: {args.agents} agents, {received:,} chunks echoed in {seconds:.1f} s, "
        f"client CPU {1e3 * cpu / (args.agents * seconds):.2f} ms per agent-second, "
        f"{errors} errors"
    )
    return 1 if errors else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's command-line options."""
    parser.add_argument(
        "--seconds",
        type=float,
        default=3.0,
        help="measured window per implementation (a client that falls behind runs longer)",
    )
    parser.add_argument("--agents", type=int, default=100, help="echo agents at once (a room each)")
    parser.add_argument("--no-compare", action="store_true", help="skip the plain SDK run")
    parser.add_argument(
        "--server",
        action="store_true",
        help="the agent server instead: simulated people join, speak and leave --agents "
        "rooms for --seconds while the server dispatches an echo agent to each room with "
        "someone in it (needs pip install 'fishjam-fast[server]')",
    )
    parser.add_argument("--asyncio", action="store_true", help="run on asyncio, not uvloop")
    parser.add_argument(
        "--chart", type=Path, default=None, metavar="PATH", help="write a PNG comparison"
    )
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
    if args.chart is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"error: --chart needs matplotlib: {CHART_EXTRA}", file=sys.stderr)
            return 2
    if args.server:
        from .runner import run
        from .server.demo import run_demo

        return run(run_demo(args.agents, args.seconds, "auto", sys.stdout))
    if args.fishjam_id:
        if not args.management_token:
            print("error: a real Fishjam needs FISHJAM_MANAGEMENT_TOKEN too", file=sys.stderr)
            return 2
        return run_remote(args)
    return run_local(args)
