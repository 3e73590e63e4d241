"""pipecat echo pipelines: FishjamTransport beside pipecat's own WebSocket transport.

N sessions (50) in this process, each a pipecat pipeline ``input -> Echo -> output``
with no models: every 20 ms of a person's audio comes in and goes back out. The people
are in another process either way, so only the bot's side is measured:

- FishjamTransport: N agents against the real-time benchmark's pacer (``pacer.py``, a
  child process speaking the agent protocol: a 20 ms chunk to every agent every 20 ms;
  the local Fishjam, all Python, cannot feed 50 rooms in real time on this machine);
  the pipeline pushes the chunks as 20 ms ``UserAudioRawFrame``s and writes the echo
  (pipecat's 40 ms chunks) onto the agent's track, paced by its playout clock;
- pipecat's ``WebsocketServerTransport`` (one server per session, on loopback, with
  pipecat's protobuf serializer): a child process of N WebSocket clients sends each a
  20 ms ``AudioRawFrame`` every 20 ms and reads the echoes; the transport paces its
  output with its simulated clock.

Both run in the same invocation, one after the other, with the same warm-up and window.
Reported: CPU of this process per session-second (user + system, ``getrusage``), the
frames each session echoed per second (50 are due on both sides) and the CPU per frame
echoed, and the ratios WebSocket / Fishjam. A side that falls behind (fewer than 95% of
the frames due) is marked: it reads in batches, which flatters its CPU per
session-second, so compare it per frame.

    .venv-pipecat/bin/python benchmarks/bench_pipecat.py --sessions 50 --seconds 10

``pytest benchmarks/bench_pipecat.py --benchmark-only`` runs it in a child process
(skipped without pipecat; not part of the guard's floors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

import pytest

if __package__:  # collected by pytest, as benchmarks.bench_pipecat
    from benchmarks.pacer import Pacer
else:  # run as a script: benchmarks/ is sys.path[0]
    from pacer import Pacer

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
RATE = 16000
CHUNK = 0.02  # seconds of audio a person sends per message
WARMUP = 5.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _measure(
    workers: list[Any], echoes: list[Any], seconds: float, ready: Any
) -> dict[str, float]:
    """Runs ``workers`` until ``ready()``, warms up, then measures over ``seconds``."""
    from pipecat.workers.runner import WorkerRunner

    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(*workers)
    running = asyncio.create_task(runner.run())
    try:
        deadline = time.monotonic() + 30
        while not ready():
            if time.monotonic() > deadline or running.done():
                raise RuntimeError("the sessions did not start")
            await asyncio.sleep(0.05)
        await asyncio.sleep(WARMUP)
        frames0 = sum(e.frames for e in echoes)
        cpu0, wall0 = _cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, wall1 = _cpu(), time.monotonic()
        frames1 = sum(e.frames for e in echoes)
    finally:
        await runner.cancel()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(running, 15)
    session_seconds = len(echoes) * (wall1 - wall0)
    frames = max(1, frames1 - frames0)
    return {
        "cpu_per_session_second": (cpu1 - cpu0) / session_seconds,
        "cpu_per_frame": (cpu1 - cpu0) / frames,
        "frames_per_session_second": (frames1 - frames0) / session_seconds,
        # 50 frames in a session-second are due; a side that falls behind reads in
        # batches, which flatters its CPU per session-second: compare per frame then
        "kept_up": (frames1 - frames0) / session_seconds >= 0.95 / CHUNK,
        "window_seconds": wall1 - wall0,
    }


def _echo_class() -> Any:
    from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame
    from pipecat.processors.frame_processor import FrameProcessor

    class Echo(FrameProcessor):  # type: ignore[misc]
        """Sends back every frame of user audio it gets (and counts them)."""

        def __init__(self) -> None:
            super().__init__()
            self.frames = 0

        async def process_frame(self, frame: Any, direction: Any) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                self.frames += 1
                await self.push_frame(
                    OutputAudioRawFrame(frame.audio, frame.sample_rate, frame.num_channels)
                )
            else:
                await self.push_frame(frame, direction)

    return Echo


def _worker(transport: Any, echo: Any) -> Any:
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker

    return PipelineWorker(
        Pipeline([transport.input(), echo, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        enable_rtvi=False,
        idle_timeout_secs=None,
        check_dangling_tasks=False,
    )


async def run_fishjam(sessions: int, seconds: float) -> dict[str, float]:
    """N echo pipelines on FishjamTransport against the pacer in a child."""
    from fishjam_fast import Agent
    from fishjam_fast.pipecat import FishjamParams, FishjamTransport

    Echo = _echo_class()
    with Pacer(lifetime=seconds + 120) as pacer:
        transports = [
            FishjamTransport(
                Agent(f"agent-{i}", "room", "token", pacer.url),
                FishjamParams(audio_out_end_silence_secs=0),
            )
            for i in range(sessions)
        ]
        echoes = [Echo() for _ in transports]
        workers = [_worker(t, e) for t, e in zip(transports, echoes, strict=True)]
        return await _measure(workers, echoes, seconds, lambda: all(e.frames for e in echoes))


async def run_websocket(sessions: int, seconds: float) -> dict[str, float]:
    """N echo pipelines on pipecat's WebSocket server transport, clients in a child."""
    from pipecat.serializers.protobuf import ProtobufFrameSerializer
    from pipecat.transports.websocket.server import (
        WebsocketServerParams,
        WebsocketServerTransport,
    )

    Echo = _echo_class()
    ports = [_free_port() for _ in range(sessions)]
    transports = [
        WebsocketServerTransport(
            WebsocketServerParams(
                serializer=ProtobufFrameSerializer(),
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_out_end_silence_secs=0,
                allowed_origins=[],  # the clients send no Origin header
            ),
            host="127.0.0.1",
            port=port,
        )
        for port in ports
    ]
    echoes = [Echo() for _ in ports]
    workers = [_worker(t, e) for t, e in zip(transports, echoes, strict=True)]
    clients = subprocess.Popen(
        [sys.executable, __file__, "--clients", ",".join(map(str, ports))],
        stdin=subprocess.DEVNULL,
    )
    try:
        return await _measure(workers, echoes, seconds, lambda: all(e.frames for e in echoes))
    finally:
        clients.terminate()
        clients.wait(10)


async def clients(ports: list[int], limit: float = 300.0) -> None:
    """The people of the WebSocket side: one client per port, a 20 ms frame each every
    20 ms (spread over the period), echoes read and dropped; ends after ``limit`` s."""
    import pipecat.frames.protobufs.frames_pb2 as frames_pb2
    import websockets

    tone = bytes(int(RATE * CHUNK) * 2)
    message = frames_pb2.Frame(
        audio=frames_pb2.AudioRawFrame(audio=tone, sample_rate=RATE, num_channels=1)
    ).SerializeToString()

    async def one(port: int, offset: float) -> None:
        for _ in range(200):  # the server starts with its pipeline
            try:
                socket_ = await websockets.connect(f"ws://127.0.0.1:{port}", max_size=None)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            return

        async def drain() -> None:
            async for _ in socket_:
                pass

        reading = asyncio.create_task(drain())
        start = time.monotonic() + offset
        sent = 0
        with contextlib.suppress(websockets.ConnectionClosed):
            while time.monotonic() - start < limit:
                delay = start + sent * CHUNK - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await socket_.send(message)
                sent += 1
        reading.cancel()

    await asyncio.gather(*(one(port, CHUNK * i / len(ports)) for i, port in enumerate(ports)))


def measure(sessions: int, seconds: float) -> dict[str, Any]:
    """Both transports, one after the other, in this process; the ratio."""
    fishjam = asyncio.run(run_fishjam(sessions, seconds))
    websocket = asyncio.run(run_websocket(sessions, seconds))
    ratio = websocket["cpu_per_session_second"] / fishjam["cpu_per_session_second"]
    ratio_per_frame = websocket["cpu_per_frame"] / fishjam["cpu_per_frame"]
    return {
        "sessions": sessions,
        "seconds": seconds,
        "fishjam": fishjam,
        "websocket": websocket,
        "ratio_websocket_over_fishjam": ratio,
        "ratio_per_frame": ratio_per_frame,
        "versions": {n: metadata.version(n) for n in ("pipecat-ai", "fishjam-fast", "websockets")},
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def _report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['sessions']} echo pipelines in one process, {result['seconds']:.0f} s window"
    ]
    for name in ("fishjam", "websocket"):
        r = result[name]
        lines.append(
            f"  {name:9}: {r['cpu_per_session_second'] * 1000:6.2f} ms CPU per session-second, "
            f"{r['frames_per_session_second']:5.1f} frames echoed per session-second (of 50), "
            f"{r['cpu_per_frame'] * 1e6:5.0f} us CPU per frame"
            + ("" if r["kept_up"] else "  [fell behind]")
        )
    lines.append(
        f"  ratio (websocket / fishjam): {result['ratio_websocket_over_fishjam']:.2f}x per "
        f"session-second, {result['ratio_per_frame']:.2f}x per frame"
    )
    return "\n".join(lines)


def test_pipecat_echo(benchmark: Any) -> None:
    pytest.importorskip("pipecat", reason="pipecat is not installed (the pipecat extra)")
    seconds = 3.0 if QUICK else 10.0
    result = benchmark.pedantic(
        lambda: json.loads(
            subprocess.run(
                [sys.executable, __file__, "--seconds", str(seconds), "--json"],
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            ).stdout.splitlines()[-1]
        ),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(result)
    print(_report(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--clients", help=argparse.SUPPRESS)  # the WebSocket side's people
    args = parser.parse_args()
    if args.clients:
        asyncio.run(clients([int(p) for p in args.clients.split(",")]))
        return
    from loguru import logger

    logger.remove()  # pipecat's DEBUG lines per frame would be the cost measured
    logger.add(sys.stderr, level="WARNING")
    result = measure(args.sessions, args.seconds)
    print(json.dumps(result) if args.json else _report(result))


if __name__ == "__main__":
    main()
