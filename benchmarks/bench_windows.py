"""Audio windows against the pacer: windowed echo agents beside per-chunk ones (issue 21).

The method is bench_realtime.py's (read its docstring): the pacer (``pacer.py``, a child
process) sends every agent a 640-byte chunk every 20 ms; N agents in one client process
on uvloop; client CPU (``getrusage``) per agent-second, user and kernel apart; every run
in a fresh child process; every figure beside its baselines measured in the same run:

- ``windows-<ms>``: ``session.on_audio(callback, window_ms)`` echoing each window with
  ``track.send_pcm_nowait(window[0].pcm)`` (20 ms frames, the bytes send_chunk makes);
- ``callback``: the per-chunk ``on_track_data`` echo with ``send_chunk_nowait``
  (bench_realtime's, run from here);
- ``bare_picows``: the floor of a per-chunk design (bench_realtime's);
- ``stt-windows`` / ``stt-chunks``: a speech-to-text-shaped agent, windowed and written
  per chunk: it computes the RMS of every 100 ms with NumPy and replies with a burst of
  1 s of audio every 5 s (CPU per agent-second of the whole application: agents x
  seconds of the window, not echoes).

Lateness of a window: its delivery minus the best-fitting schedule of its last chunk
(the agent's windows ``window_ms`` apart, anchored on its earliest one), as
bench_realtime measures a chunk's; windows padded because the peer stopped are not
counted (none in steady state). It is the lateness added beyond the earliest window: a
constant delay common to every window would not show (see docs/windows.md).

    python benchmarks/bench_windows.py --mode windows --window-ms 100 --agents 400

runs one measurement here and prints it (JSON); ``pytest benchmarks/bench_windows.py
--benchmark-only`` runs the table (``FISHJAM_FAST_BENCH_QUICK=1``: 2 s windows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fishjam_fast.fleet import percentile, rss_kib

if __package__:
    from benchmarks import bench_realtime
    from benchmarks.pacer import PERIOD, Pacer
else:
    import bench_realtime  # type: ignore[no-redef]
    from pacer import PERIOD, Pacer  # type: ignore[no-redef]

RealtimeResult = bench_realtime.RealtimeResult
QUICK = bench_realtime.QUICK
SECONDS = bench_realtime.SECONDS
WARMUP = bench_realtime.WARMUP
GUARD = os.environ.get("FISHJAM_FAST_BENCH_GUARD") == "1"
GUARDED_ATTEMPTS = 3
"""Runs tried, in guard mode, until the pacer kept pace and the client kept up, for the
guarded N=400 pair (windows-100 and callback): a client that fell behind reads in batches,
which flatters the per-chunk one most, and the floor would guard noise."""
CONNECT_CONCURRENCY = bench_realtime.CONNECT_CONCURRENCY
STT_BURST_EVERY = 5.0
"""Seconds between two replies of the speech-to-text-shaped agent."""
STT_BURST_SECONDS = 1.0
CLIENT_PRIORITY = -5
"""The measured client's nice value where it may be raised (root), under the pacer's
(pacer.PRIORITY): on a machine shared with busy jobs a client waiting for the CPU falls
behind, and reads its backlog in batches that flatter its CPU figures. The CPU it takes
per agent-second is the same at any priority."""


@contextlib.contextmanager
def raised_priority(value: int = CLIENT_PRIORITY) -> Iterator[None]:
    """This process's nice value at most ``value`` for the block (the children it starts
    inherit it), where permitted; back to what it was after."""
    try:
        before = os.getpriority(os.PRIO_PROCESS, 0)
        if before > value:
            os.setpriority(os.PRIO_PROCESS, 0, value)
    except OSError:  # not permitted: the default priority
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


_Arrivals = list[list[tuple[int, float]]]
"""Per agent: (window index, delivery time) of its whole windows."""


def window_lateness(arrivals: list[list[tuple[int, float]]], period: float) -> list[float]:
    """Each window's delivery minus its agent's best-fitting schedule (``period`` apart,
    by the index of the window's last chunk), anchored on the earliest."""
    late: list[float] = []
    for times in arrivals:
        if len(times) < 2:
            continue
        offset = min(t - i * period for i, t in times)
        late += [t - i * period - offset for i, t in times]
    return late


async def _run_window_agents(
    pacer: Pacer, agents: int, warmup: float, seconds: float, mode: str, window_ms: int,
    coalesce: bool,
) -> tuple[Any, Any, dict[str, Any], dict[str, Any], _Arrivals, int, float]:  # fmt: skip
    import fishjam_fast

    opened = [False]
    ready = [0]
    errors = [0]
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(agents)]
    all_ready = asyncio.Event()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    burst = (np.sin(np.arange(16000) / 8.0) * 8000).astype(np.int16)  # 1 s at 16 kHz
    burst_chunks = [burst[i : i + 320].tobytes() for i in range(0, len(burst), 320)]

    def settled() -> None:
        if ready[0] + errors[0] == agents:
            all_ready.set()

    async def agent_main(index: int) -> None:
        agent = fishjam_fast.Agent(f"agent-{index}", "room", "token", pacer.url)
        mine = arrivals[index]
        clock = time.perf_counter
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with gate:
                    session = await stack.enter_async_context(agent.connect())
                    track = await session.add_track(fishjam_fast.OutgoingAudioTrackOptions())
                ready[0] += 1
                settled()
                count = [0]
                if mode == "windows":

                    def echo(window: list[fishjam_fast.TrackAudio]) -> None:
                        item = window[0]
                        if opened[0] and not item.missing:
                            mine.append((count[0], clock()))
                        count[0] += 1
                        track.send_pcm_nowait(item.pcm)

                    session.on_audio(echo, window_ms, coalesce=coalesce)
                elif mode == "stt-windows":
                    next_reply = [time.monotonic() + STT_BURST_EVERY * (index % 50) / 50]
                    levels: list[float] = []

                    def stt(window: list[fishjam_fast.TrackAudio]) -> None:
                        pcm = window[0].pcm.astype(np.float32)
                        levels.append(float(np.sqrt(np.mean(pcm * pcm))))
                        now = time.monotonic()
                        if now >= next_reply[0]:
                            next_reply[0] = now + STT_BURST_EVERY
                            track.send_pcm_nowait(burst)

                    session.on_audio(stt, 100, coalesce=coalesce)
                elif mode == "stt-chunks":
                    next_reply = [time.monotonic() + STT_BURST_EVERY * (index % 50) / 50]
                    levels = []
                    pending: list[bytes] = []

                    def stt_chunk(message: Any) -> None:
                        pending.append(message.data)
                        if len(pending) == 5:  # 100 ms gathered
                            pcm = np.frombuffer(b"".join(pending), np.int16).astype(np.float32)
                            pending.clear()
                            levels.append(float(np.sqrt(np.mean(pcm * pcm))))
                            now = time.monotonic()
                            if now >= next_reply[0]:
                                next_reply[0] = now + STT_BURST_EVERY
                                for chunk in burst_chunks:
                                    track.send_chunk_nowait(chunk)

                    session.on_track_data(stt_chunk)
                else:
                    raise ValueError(f"unknown mode {mode!r}")
                async for _ in session.receive():  # images only; ends with the session
                    pass
        except asyncio.CancelledError:
            pass
        except Exception:
            errors[0] += 1
            settled()

    rss_before = rss_kib()
    tasks = [asyncio.create_task(agent_main(i)) for i in range(agents)]
    try:
        await asyncio.wait_for(all_ready.wait(), 60 + agents / 10)
        pacer.start()
        await asyncio.sleep(warmup)
        gc.collect()
        rss_grown = rss_kib() - rss_before

        def measure() -> tuple[Any, ...]:
            opened[0] = True
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            snap0 = pacer.snapshot()
            time.sleep(seconds)
            snap1 = pacer.snapshot()
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            opened[0] = False
            failed = errors[0]
            pacer.close()
            return usage0, usage1, snap0, snap1, failed

        usage0, usage1, snap0, snap1, failed = await asyncio.to_thread(measure)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    return usage0, usage1, snap0, snap1, arrivals, failed, rss_grown


def run_windows(
    mode: str, agents: int, seconds: float, *, warmup: float, window_ms: int = 100,
    coalesce: bool = True, use_uvloop: bool = True,
) -> RealtimeResult:  # fmt: skip
    """One measurement of ``mode`` (``windows``, ``stt-windows``, ``stt-chunks``)."""
    import fishjam_fast

    with Pacer(lifetime=300 + 2 * seconds + agents / 5, hold=True) as pacer:
        usage0, usage1, snap0, snap1, arrivals, errors, rss = fishjam_fast.run(
            _run_window_agents(pacer, agents, warmup, seconds, mode, window_ms, coalesce),
            use_uvloop=use_uvloop,
        )
    before = snap0["conns"]
    rows = [
        [b - a for a, b in zip(before[i][:5] if i < len(before) else [0] * 5, row[:5], strict=True)]
        for i, row in enumerate(snap1["conns"])
    ]
    due, delivered, echoes, _, blocked = (sum(column) for column in zip(*rows, strict=True))
    worst = min(((d - late) / d for d, _, _, late, _ in rows if d), default=0.0)
    window_s = window_ms / 1000 if mode == "windows" else 0.1
    late = window_lateness(arrivals, window_s) if mode == "windows" else []
    elapsed = snap1["time"] - snap0["time"]
    if mode != "windows":
        # the application's agent-seconds: every agent heard the whole window; shown as
        # `echoes` 50 per agent-second, so that cpu_per_agent_second reads the same
        echoes = round(agents * elapsed / PERIOD)
    api = f"windows-{window_ms}" if mode == "windows" else mode
    if not coalesce:
        api += "-per-chunk-reads"
    return RealtimeResult(
        client="fishjam_fast",
        transport="picows",
        loop="uvloop" if use_uvloop else "asyncio",
        agents=agents,
        api=api,
        seconds=elapsed,
        user_seconds=usage1.ru_utime - usage0.ru_utime,
        system_seconds=usage1.ru_stime - usage0.ru_stime,
        wakeups=usage1.ru_nvcsw - usage0.ru_nvcsw,
        chunks_due=due,
        chunks_delivered=delivered,
        echoes=echoes,
        worst_delivery=worst,
        chunks_blocked=blocked,
        errors=errors,
        lateness_p50_ms=1e3 * percentile(late, 0.50) if late else 0.0,
        lateness_p99_ms=1e3 * percentile(late, 0.99) if late else 0.0,
        rss_per_agent_kib=rss / agents,
        pacer_late_max_ms=float(snap1["late_max_ms"]),
        pacer_cpu_share=(snap1["cpu"] - snap0["cpu"]) / elapsed,
        measured_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_average=os.getloadavg()[0],
    )


def run_in_child(
    mode: str, agents: int, seconds: float, *, warmup: float, window_ms: int = 100,
    coalesce: bool = True,
) -> RealtimeResult:  # fmt: skip
    """A measurement in a fresh interpreter: this file's ``main``, or bench_realtime's
    for the per-chunk baselines (``callback``, ``bare_picows``), at CLIENT_PRIORITY."""
    with raised_priority():
        return _run_in_child(mode, agents, seconds, warmup=warmup, window_ms=window_ms,
                             coalesce=coalesce)  # fmt: skip


def _run_in_child(
    mode: str, agents: int, seconds: float, *, warmup: float, window_ms: int, coalesce: bool
) -> RealtimeResult:
    if mode == "callback":
        return bench_realtime.run_in_child(
            "fishjam_fast", agents, seconds, warmup=warmup, api="callback"
        )
    if mode == "bare_picows":
        return bench_realtime.run_in_child(
            "bare_picows", agents, seconds, warmup=warmup, api="callback"
        )
    command = [sys.executable, __file__, "--mode", mode, "--agents", str(agents),
               "--seconds", str(seconds), "--warmup", str(warmup),
               "--window-ms", str(window_ms)]  # fmt: skip
    if not coalesce:
        command.append("--per-chunk-reads")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180 + 3 * seconds + agents / 5
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    fields = json.loads(done.stdout)
    return RealtimeResult(**{f.name: fields[f.name] for f in dataclasses.fields(RealtimeResult)})


def _cases() -> list[tuple[str, int, int, bool]]:
    """(mode, agents, window_ms, coalesce), the baselines beside their subjects."""
    cases: list[tuple[str, int, int, bool]] = []
    for agents in (400,) if QUICK else (400, 1000):
        cases += [
            ("windows", agents, 100, True),
            ("callback", agents, 20, True),
            ("bare_picows", agents, 20, True),
        ]
    if not QUICK:
        cases += [("windows", 400, ms, True) for ms in (20, 50, 200)]
        cases += [("windows", 400, 100, False)]  # the same windows, the socket read per chunk
        cases += [("stt-windows", 400, 100, True), ("stt-chunks", 400, 100, True)]
    return cases


def _label(mode: str, window_ms: int, coalesce: bool) -> str:
    label = f"windows-{window_ms}" if mode == "windows" else mode
    return label if coalesce else f"{label}-per-chunk-reads"


_WINDOW_CPU: list[float] = []


def window_cpu() -> float:
    """pytest-benchmark's timer here: the client CPU of the windows measured so far."""
    return sum(_WINDOW_CPU)


@pytest.mark.benchmark(timer=window_cpu)
@pytest.mark.parametrize(
    ("mode", "agents", "window_ms", "coalesce"),
    _cases(),
    ids=[f"{_label(m, w, c)}-{n}" for m, n, w, c in _cases()],
)
def test_windows(benchmark: Any, mode: str, agents: int, window_ms: int, coalesce: bool) -> None:
    benchmark.group = f"windows-{agents}"
    benchmark.name = f"windows[{_label(mode, window_ms, coalesce)}]"
    results: list[RealtimeResult] = []
    guarded = (
        agents == 400 and coalesce and (mode, window_ms) in {("windows", 100), ("callback", 20)}
    )
    attempts = GUARDED_ATTEMPTS if GUARD and guarded else 1

    def run_once() -> None:
        for _ in range(attempts):
            result = run_in_child(
                mode, agents, SECONDS, warmup=WARMUP, window_ms=window_ms, coalesce=coalesce
            )
            if result.kept_pace and result.client_kept_up:
                break
        results.append(result)
        _WINDOW_CPU.append(result.user_seconds + result.system_seconds)

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    result = results[0]
    benchmark.extra_info.update(result.as_dict())
    assert result.errors == 0, f"{result.errors} of {agents} agents failed"
    assert result.echoes > 0, "no echo reached the pacer"
    # (never valid in the attempts: kept as measured, the floor judges it; the figures
    # say which run did not count: kept_pace, client_kept_up)
    benchmark.extra_info["attempts"] = attempts


async def _stopped_peer(window_ms: int, coalesce: bool, sessions: int, rounds: int) -> list[float]:
    """Each session hears a peer speak 2.4 windows in real time, then stop: the time
    from the last chunk's sending to the padded window's delivery, per round."""
    import fishjam_fast
    from fishjam_fast.local import LocalFishjam

    chunk = np.zeros(320, np.int16).tobytes()
    late: list[float] = []
    async with LocalFishjam() as fj, contextlib.AsyncExitStack() as stack:
        room = await fj.create_room()
        delivered: list[list[float]] = []
        ids = []
        for _ in range(sessions):
            peer = await fj.add_agent(room)
            agent = fishjam_fast.Agent(peer.id, room, peer.token, fj.url)
            session = await stack.enter_async_context(agent.connect())
            times: list[float] = []

            def on_window(window: list[Any], times: list[float] = times) -> None:
                if window[0].missing:
                    times.append(time.monotonic())

            session.on_audio(on_window, window_ms, coalesce=coalesce)
            delivered.append(times)
            ids.append(peer.id)
        chunks = round(2.4 * window_ms / 20)
        for _ in range(rounds):
            for _ in range(chunks):
                await asyncio.gather(*(fj.send_raw(i, track_data(chunk)) for i in ids))
                await asyncio.sleep(0.02)
            last = time.monotonic() - 0.02
            await asyncio.sleep(3 * window_ms / 1000 + 0.3)
            for times in delivered:
                late += [t - last for t in times]
                times.clear()
    return late


def track_data(data: bytes) -> bytes:
    """AgentResponse{track_data{peer_id "p", track{id "t"}, data}} (google.protobuf)."""
    from fishjam_fast._proto import agent_pb2, notifications_pb2

    message = agent_pb2.AgentResponse(
        track_data=agent_pb2.AgentResponse.TrackData(
            peer_id="p", track=notifications_pb2.Track(id="t"), data=data
        )
    )
    return message.SerializeToString()


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "per-chunk-reads"])
def test_stopped_peer_lateness(benchmark: Any, coalesce: bool) -> None:
    """A peer stops mid-window: how long after its last chunk the padded window comes
    (the ticker's bound), 20 sessions against the local Fishjam in this process."""
    import fishjam_fast

    benchmark.group = "windows-stopped-peer"
    benchmark.name = f"stopped-peer[{'coalesced' if coalesce else 'per-chunk-reads'}]"
    late: list[float] = []

    def run_once() -> None:
        late.extend(fishjam_fast.run(_stopped_peer(100, coalesce, 20, 2 if QUICK else 5)))

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    assert late, "no padded window was delivered"
    benchmark.extra_info.update(
        window_ms=100,
        windows=len(late),
        lateness_after_last_chunk_p50_ms=1e3 * percentile(late, 0.50),
        lateness_after_last_chunk_p99_ms=1e3 * percentile(late, 0.99),
        lateness_after_last_chunk_max_ms=1e3 * max(late),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="One windowed measurement (see the docstring).")
    parser.add_argument(
        "--mode", choices=["windows", "stt-windows", "stt-chunks"], default="windows"
    )
    parser.add_argument("--agents", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window-ms", type=int, default=100)
    parser.add_argument("--per-chunk-reads", action="store_true", help="no SO_RCVLOWAT")
    parser.add_argument("--asyncio", action="store_true", help="asyncio's loop, not uvloop")
    args = parser.parse_args()
    result = run_windows(
        args.mode, args.agents, args.seconds, warmup=args.warmup, window_ms=args.window_ms,
        coalesce=not args.per_chunk_reads, use_uvloop=not args.asyncio,
    )  # fmt: skip
    print(json.dumps(result.as_dict(), indent=1))


if __name__ == "__main__":
    main()
