"""Real-time fan-out against the pacer: N echo agents in one process, the server in another.

The pacer (``pacer.py``, a child process) sends every agent one prebuilt 640-byte chunk
every 20 ms, the agents spread evenly over the period; each agent echoes every chunk
onto its own track. After a warm-up, over a steady window:

- client CPU per agent-second, user and kernel apart (``getrusage(RUSAGE_SELF)``); an
  agent-second is 50 chunks echoed (the pacer counts them), so the cost is per chunk
  actually handled, whatever the pacer skipped or the client left unread;
- agents per core at 50% CPU, ``0.5 / cpu_per_agent_second`` (a linear reading of the
  cost measured at that N, stated as such);
- CPU per message, user and kernel apart: a message is one WebSocket message either way
  (a chunk received and its echo are two), so one agent-second is 100 messages;
- lateness p50/p99: a chunk's arrival minus the agent's best-fitting 20 ms schedule;
- memory per agent: the RSS grown from before the agents connect to the window's start.

A run counts only when the pacer delivered at least 95% of the chunks due to every
connection (``kept_pace``); the report marks the others, and also says whether the
client kept up (echoed at least 95% of the chunks due, with a median lateness under
20 ms: a client behind reads in batches, which flatters its CPU figures).

    python benchmarks/bench_realtime.py --client fishjam_fast --agents 400 --seconds 10

runs one measurement in this process and prints it; ``pytest benchmarks/bench_realtime.py
--benchmark-only`` runs the table, each run in a fresh child process
(``FISHJAM_FAST_BENCH_QUICK=1``: the CI-sized table). The benchmark's timed figure is
the client CPU of the window; the figures that matter are in its ``extra_info``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import gc
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import pytest

from fishjam_fast.fleet import percentile, rss_kib  # the fleet measurement's, shared

if __package__:  # collected by pytest, as benchmarks.bench_realtime
    from benchmarks.pacer import PERIOD, Pacer
else:  # run as a script (each client's process): benchmarks/ is sys.path[0]
    from pacer import PERIOD, Pacer

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
GUARD = os.environ.get("FISHJAM_FAST_BENCH_GUARD") == "1"
SECONDS = 2.0 if QUICK else 10.0
WARMUP = 1.0 if QUICK else 3.0
GUARDED_ATTEMPTS = 3
"""Runs tried, in guard mode, until the pacer keeps pace for the guarded N=30 pair."""
CONNECT_CONCURRENCY = 50
"""Agents connecting at once (the rest wait): a burst of 1000 handshakes is not the test."""


def client_module(client: str) -> ModuleType:
    """``fishjam_fast``, the plain SDK's ``fishjam.agent``, or ``bare_picows`` (the floor:
    picows and fishjam_fast's codec, no library; see bare_picows.py)."""
    if client == "bare_picows":
        if __package__:
            from benchmarks import bare_picows
        else:
            import bare_picows  # type: ignore[no-redef]
        return bare_picows
    if client == "fishjam_fast":
        import fishjam_fast

        return fishjam_fast
    if client == "plain_sdk":
        import fishjam.agent

        plain: ModuleType = fishjam.agent
        return plain
    raise ValueError(f"unknown client {client!r}: use fishjam_fast, plain_sdk or bare_picows")


def fishjam_fast_transports() -> tuple[str, list[str]]:
    """fishjam_fast's default transport and every transport its ``Agent`` accepts.

    Before ``Agent(..., transport=...)`` exists the only transport is websockets.
    """
    import fishjam_fast

    parameter = inspect.signature(fishjam_fast.Agent).parameters.get("transport")
    if parameter is None:
        return "websockets", ["websockets"]
    default = parameter.default
    if not isinstance(default, str):  # None: "the best available", resolved when connecting
        from fishjam_fast.transport.choose import default_transport

        default = default_transport()
    return default, [default] + [t for t in ("picows", "websockets") if t != default]


@dataclass
class RealtimeResult:
    """One real-time run."""

    client: str
    transport: str
    loop: str
    agents: int
    api: str  # "iterator": async for + await send_chunk; "callback": on_track_data + nowait
    seconds: float  # the window's length, as measured (a loaded loop oversleeps)
    user_seconds: float
    system_seconds: float
    wakeups: int  # the client's voluntary context switches in the window (loop wake-ups)
    chunks_due: int
    chunks_delivered: int
    echoes: int
    worst_delivery: float  # the least share of its due chunks the pacer sent on time, any conn
    chunks_blocked: int  # due, not sent: the client's socket was full (it fell behind)
    errors: int
    lateness_p50_ms: float
    lateness_p99_ms: float
    rss_per_agent_kib: float
    pacer_late_max_ms: float
    pacer_cpu_share: float  # the pacer's CPU seconds per second of the window
    measured_at: str
    load_average: float  # the machine's 1-minute load when the window closed

    @property
    def agent_seconds(self) -> float:
        return self.echoes * PERIOD

    @property
    def cpu_per_agent_second(self) -> float:
        return (self.user_seconds + self.system_seconds) / max(self.agent_seconds, 1e-9)

    @property
    def user_per_agent_second(self) -> float:
        return self.user_seconds / max(self.agent_seconds, 1e-9)

    @property
    def system_per_agent_second(self) -> float:
        return self.system_seconds / max(self.agent_seconds, 1e-9)

    @property
    def agents_per_core_at_half(self) -> float:
        cost = self.cpu_per_agent_second
        return 0.5 / cost if cost else float("inf")

    @property
    def messages(self) -> int:
        return 2 * self.echoes

    @property
    def client_kept_up(self) -> bool:
        """The agents echoed at least 95% of the chunks due, the median within its period.

        A client that falls behind reads its backlog in batches, which costs less per
        message than real time does: its CPU figures flatter it.
        """
        return self.echoes >= 0.95 * self.chunks_due > 0 and self.lateness_p50_ms < 1e3 * PERIOD

    @property
    def user_us_per_message(self) -> float:
        return 1e6 * self.user_seconds / max(self.messages, 1)

    @property
    def system_us_per_message(self) -> float:
        return 1e6 * self.system_seconds / max(self.messages, 1)

    @property
    def kept_pace(self) -> bool:
        """The pacer sent every connection at least 95% of its chunks due, on time.

        Chunks ``blocked`` by a client that does not read do not count against the pacer;
        they show in ``client_kept_up``.
        """
        return self.chunks_due > 0 and self.worst_delivery >= 0.95

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in (
            "cpu_per_agent_second",
            "user_per_agent_second",
            "system_per_agent_second",
            "agents_per_core_at_half",
            "messages",
            "user_us_per_message",
            "system_us_per_message",
            "kept_pace",
            "client_kept_up",
        ):
            out[name] = getattr(self, name)
        return out


def lateness(arrivals: list[list[float]]) -> list[float]:
    """Each arrival minus its agent's 20 ms schedule, anchored on the earliest arrival."""
    late: list[float] = []
    for times in arrivals:
        if len(times) < 2:
            continue
        offset = min(t - i * PERIOD for i, t in enumerate(times))
        late += [t - i * PERIOD - offset for i, t in enumerate(times)]
    return late


@dataclass
class _Window:
    """What the agents record while the measurement window is open."""

    open: bool = False
    ready: int = 0
    errors: int = 0


async def _run_agents(
    module: ModuleType, options: dict[str, Any], pacer: Pacer, agents: int, warmup: float,
    seconds: float, api: str = "iterator",
) -> tuple[resource.struct_rusage, resource.struct_rusage, dict[str, Any], dict[str, Any],
           list[list[float]], int, int]:  # fmt: skip
    window = _Window()
    arrivals: list[list[float]] = [[] for _ in range(agents)]
    all_ready = asyncio.Event()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    def settled() -> None:
        if window.ready + window.errors == agents:
            all_ready.set()

    async def echo_agent(index: int) -> None:
        agent = module.Agent(f"agent-{index}", "room", "token", pacer.url, **options)
        mine = arrivals[index]
        clock = time.perf_counter
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with gate:
                    session = await stack.enter_async_context(agent.connect())
                    track = await session.add_track(module.OutgoingAudioTrackOptions())
                window.ready += 1
                settled()
                if api == "callback":
                    # fishjam_fast's synchronous path: called where the frame is read
                    def echo(message: Any) -> None:
                        if window.open:
                            mine.append(clock())
                        track.send_chunk_nowait(message.data)

                    session.on_track_data(echo)
                    async for _ in session.receive():  # images only; ends with the session
                        pass
                    return
                async for message in session.receive():
                    if window.open:
                        mine.append(clock())
                    await track.send_chunk(message.data)
        except asyncio.CancelledError:
            pass
        except Exception:
            window.errors += 1
            settled()

    rss_before = rss_kib()
    tasks = [asyncio.create_task(echo_agent(i)) for i in range(agents)]
    try:
        await asyncio.wait_for(all_ready.wait(), 60 + agents / 10)
        pacer.start()
        await asyncio.sleep(warmup)
        gc.collect()
        rss_grown = rss_kib() - rss_before

        def measure() -> tuple[Any, ...]:
            # a thread keeps the window's length even when the loop is saturated and
            # its timers run late (an overloaded client would otherwise stretch it)
            window.open = True
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            snap0 = pacer.snapshot()
            time.sleep(seconds)
            snap1 = pacer.snapshot()
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            window.open = False
            errors = window.errors  # failures while measuring, not the teardown's
            # abort every connection: a client that fell behind would otherwise read its
            # whole backlog before it sees the closing handshake
            pacer.close()
            return usage0, usage1, snap0, snap1, errors

        usage0, usage1, snap0, snap1, errors = await asyncio.to_thread(measure)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    return usage0, usage1, snap0, snap1, arrivals, errors, rss_grown


def run_realtime(
    client: str,
    agents: int,
    seconds: float,
    *,
    warmup: float = 2.0,
    transport: str | None = None,
    use_uvloop: bool = True,
    api: str = "iterator",
) -> RealtimeResult:
    """Measures ``agents`` echo agents of ``client`` against a fresh pacer process.

    Args:
        client: ``fishjam_fast`` or ``plain_sdk``.
        agents: How many agents, all in this process.
        seconds: Length of the measurement window.
        warmup: Seconds between the last agent connecting and the window.
        transport: fishjam_fast's transport (``Agent(transport=...)``); None: its default.
        use_uvloop: Run the agents on uvloop (else asyncio's loop).
        api: ``"iterator"`` (``async for`` over ``receive()``, ``await send_chunk``: the
            plain SDK's way, and the only one it has) or ``"callback"`` (fishjam_fast's
            ``on_track_data`` with ``send_chunk_nowait``).

    Returns:
        The window's figures.
    """
    import fishjam_fast

    module = client_module(client)
    if api not in ("iterator", "callback") or (api == "callback" and client == "plain_sdk"):
        raise ValueError(f"api {api!r}: 'iterator', or 'callback' (not for the plain SDK)")
    options: dict[str, Any] = {}
    shown = "websockets"  # the plain SDK's, and fishjam_fast's before it had a choice
    if client == "bare_picows":
        shown = "picows"
    elif client == "fishjam_fast":
        default, accepted = fishjam_fast_transports()
        shown = transport or default
        if shown not in accepted:
            raise ValueError(f"fishjam_fast.Agent has no transport {shown!r}: {accepted}")
        if transport is not None and len(accepted) > 1:  # only an Agent that has the option
            options["transport"] = transport
    with Pacer(lifetime=300 + 2 * seconds + agents / 5, hold=True) as pacer:
        usage0, usage1, snap0, snap1, arrivals, errors, rss = fishjam_fast.run(
            _run_agents(module, options, pacer, agents, warmup, seconds, api),
            use_uvloop=use_uvloop,
        )
    # per connection, the window's [due, sent, echoes, late, blocked] (pacer.py)
    before = snap0["conns"]
    windows = [
        [b - a for a, b in zip(before[i][:5] if i < len(before) else [0] * 5, row[:5], strict=True)]
        for i, row in enumerate(snap1["conns"])
    ]
    due, delivered, echoes, _, blocked = (sum(column) for column in zip(*windows, strict=True))
    # the pacer's own share: a chunk `blocked` by a client that does not read is not its fault
    worst = min(((d - late) / d for d, _, _, late, _ in windows if d), default=0.0)
    late = lateness(arrivals)
    return RealtimeResult(
        client=client,
        transport=shown,
        loop="uvloop" if use_uvloop else "asyncio",
        agents=agents,
        api=api,
        seconds=snap1["time"] - snap0["time"],
        user_seconds=usage1.ru_utime - usage0.ru_utime,
        system_seconds=usage1.ru_stime - usage0.ru_stime,
        wakeups=usage1.ru_nvcsw - usage0.ru_nvcsw,
        chunks_due=due,
        chunks_delivered=delivered,
        echoes=echoes,
        worst_delivery=worst,
        chunks_blocked=blocked,
        errors=errors,
        lateness_p50_ms=1e3 * percentile(late, 0.50),
        lateness_p99_ms=1e3 * percentile(late, 0.99),
        rss_per_agent_kib=rss / agents,
        pacer_late_max_ms=float(snap1["late_max_ms"]),
        pacer_cpu_share=(snap1["cpu"] - snap0["cpu"]) / (snap1["time"] - snap0["time"]),
        measured_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_average=os.getloadavg()[0],
    )


def _cases() -> list[tuple[str, str | None, int, str]]:
    """(client, transport, agents, api); transport None is fishjam_fast's default."""
    try:
        default, transports = fishjam_fast_transports()
    except ImportError:
        default, transports = "websockets", ["websockets"]
    callback = _has_callback_api()
    small: list[tuple[str, str | None, int, str]] = [
        ("plain_sdk", None, 30, "iterator"),
        ("fishjam_fast", None, 30, "iterator"),
    ]
    if callback:
        small.append(("fishjam_fast", None, 30, "callback"))
    small += [("fishjam_fast", t, 30, "iterator") for t in transports if t != default]
    large = [200] if QUICK else [200, 400, 1000]
    cases = small + [("fishjam_fast", None, n, "iterator") for n in large]
    if callback:
        cases += [("fishjam_fast", None, n, "callback") for n in large]
    if not QUICK and _has_picows():
        # the floor, beside them (not guarded: it is not fishjam_fast)
        cases += [("bare_picows", None, n, a) for n in (30, 400) for a in ("iterator", "callback")]
    return cases


def _has_picows() -> bool:
    try:
        import picows  # noqa: F401
    except ImportError:
        return False
    return True


def _has_callback_api() -> bool:
    """Whether fishjam_fast has on_track_data and send_chunk_nowait."""
    try:
        import fishjam_fast
    except ImportError:
        return False
    return hasattr(fishjam_fast.AgentSession, "on_track_data")


def _label(client: str, transport: str | None, api: str = "iterator") -> str:
    # the default transport and API keep the bare name, so floors.toml names one subject
    # for good; the others say which
    label = client if transport is None else f"{client}-{transport}"
    return label if api == "iterator" else f"{label}-{api}"


def run_in_child(
    client: str,
    agents: int,
    seconds: float,
    *,
    warmup: float,
    transport: str | None = None,
    api: str = "iterator",
) -> RealtimeResult:
    """:func:`run_realtime` in a fresh interpreter (this file's ``main``).

    A fresh process per run, so that no run pays for another's heap (a larger heap makes
    every garbage collection dearer) and the RSS grown is the agents' own.
    """
    command = [sys.executable, __file__, "--client", client, "--agents", str(agents),
               "--seconds", str(seconds), "--warmup", str(warmup)]  # fmt: skip
    if transport is not None:
        command += ["--transport", transport]
    command += ["--api", api]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180 + 3 * seconds + agents / 5
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    fields = json.loads(done.stdout)
    return RealtimeResult(**{f.name: fields[f.name] for f in dataclasses.fields(RealtimeResult)})


_WINDOW_CPU: list[float] = []


def window_cpu() -> float:
    """pytest-benchmark's timer here: the client CPU of the windows measured so far."""
    return sum(_WINDOW_CPU)


@pytest.mark.benchmark(timer=window_cpu)
@pytest.mark.parametrize(
    ("client", "transport", "agents", "api"),
    _cases(),
    ids=[f"{_label(c, t, a)}-{n}" for c, t, n, a in _cases()],
)
def test_realtime(
    benchmark: Any, client: str, transport: str | None, agents: int, api: str
) -> None:
    benchmark.group = f"realtime-{agents}"
    benchmark.name = f"realtime[{_label(client, transport, api)}]"
    results: list[RealtimeResult] = []
    # the guarded pair (floors.toml) needs runs that count: on a machine busy enough to
    # starve the pacer, measure again rather than guard a figure the pacer did not pace
    attempts = GUARDED_ATTEMPTS if GUARD and agents <= 30 else 1

    def run_once() -> None:
        for _ in range(attempts):
            result = run_in_child(
                client, agents, SECONDS, warmup=WARMUP, transport=transport, api=api
            )
            if result.kept_pace:
                break
        results.append(result)
        _WINDOW_CPU.append(result.user_seconds + result.system_seconds)

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    result = results[0]
    benchmark.extra_info.update(result.as_dict())
    assert result.errors == 0, f"{result.errors} of {agents} agents failed"
    assert result.echoes > 0, "no echo reached the pacer"
    if attempts > 1:
        assert result.kept_pace, (
            f"in {attempts} runs the pacer never kept pace (the last delivered "
            f"{result.worst_delivery:.0%} of the chunks due to one connection): machine too busy"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="One real-time measurement (see the docstring).")
    parser.add_argument(
        "--client", choices=["fishjam_fast", "plain_sdk", "bare_picows"], default="fishjam_fast"
    )
    parser.add_argument("--transport", default=None, help="fishjam_fast's; default: its default")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--asyncio", action="store_true", help="asyncio's loop, not uvloop")
    parser.add_argument(
        "--api", choices=["iterator", "callback"], default="iterator",
        help="fishjam_fast's receive()/send_chunk, or on_track_data/send_chunk_nowait",
    )  # fmt: skip
    args = parser.parse_args()
    result = run_realtime(
        args.client,
        args.agents,
        args.seconds,
        warmup=args.warmup,
        transport=args.transport,
        use_uvloop=not args.asyncio,
        api=args.api,
    )
    print(json.dumps(result.as_dict(), indent=1))  # run_in_child reads this


if __name__ == "__main__":
    main()
