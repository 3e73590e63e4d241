"""Audio out: resampling + framing, and the CPU cost of pacing.

Resampling (group ``RESAMPLE_GROUP``, minimum times): 10 s of 44.1 kHz float32 turned
into 20 ms track_data frames at 24 kHz the way ``send_pcm(samples, sample_rate=44100)``
does it (``PcmStream.blocks`` + the framing kernel), beside soxr's resampling alone (a
stream, as ours, same quality) in the same run: the guard (benchmarks/floors.toml) wants
ours within 1.3x of soxr alone. ``numpy_interp_linear`` is what users wrote before (it
aliases): for scale only.

Pacing (group ``PACING_GROUP``): 200 PCM16 tracks in one process (20 agents x 10
tracks, the local Fishjam in a child process), each speaking 2 s utterances back to
back at real-time rate; paced with ``max_queued=0.5`` (send_pcm waits for room), beside
the same tracks unpaced: one burst per utterance, then the sender sleeps the
utterance's length (``burst``), or a loop that sends one 20 ms chunk and sleeps 20 ms
(``chunk_loop``, what one writes without pacing to stay near real time). Client CPU
(``process_time``) over a steady window gives CPU per track-second (``extra_info``);
the same audio goes out every way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

import numpy as np
import pytest
import soxr

import fishjam_fast
from fishjam_fast import _pcm
from fishjam_fast._core.pcm_stream import PcmStream
from fishjam_fast.local import LocalFishjamProcess

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
RESAMPLE_GROUP = "resample: float32 10 s 44.1 kHz -> 24 kHz 20 ms track_data frames"
PACING_GROUP = "pacing: 200 tracks, 2 s utterances in real time"
TRACK_ID = "6f1c2a9e0b7d4c3f8e5a1b2c3d4e5f60"

AGENTS, TRACKS_PER_AGENT = 20, 10
UTTERANCE = 2.0
MAX_QUEUED = 0.5
WARMUP = 2.0 if QUICK else 3.0
SECONDS = 3.0 if QUICK else 8.0


@pytest.fixture(scope="module")
def audio_44k() -> np.ndarray[Any, np.dtype[np.float32]]:
    rng = np.random.default_rng(0)
    t = np.arange(10 * 44100) / 44100
    x = 0.6 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def resample_and_frame(x: np.ndarray[Any, Any]) -> list[tuple[Any, Any]]:
    """What send_pcm(x, sample_rate=44100) does on a 24 kHz track, before sending."""
    stream = PcmStream(24000, 1)
    return [_pcm.frame_pcm16(TRACK_ID, b, 1, 480) for b in stream.blocks(x, 480, 44100, True)]


def soxr_alone(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return soxr.ResampleStream(44100, 24000, 1, dtype="float32", quality="HQ").resample_chunk(
        x, last=True
    )


def test_resample_and_frame_give_soxrs_samples(audio_44k: np.ndarray[Any, Any]) -> None:
    (buffer, offsets), *rest = resample_and_frame(audio_44k)
    expected, _ = _pcm.frame_pcm16(TRACK_ID, soxr.resample(audio_44k, 44100, 24000), 1, 480)
    assert not rest and len(offsets) == 10 * 50 + 1
    assert buffer.tobytes() == expected.tobytes()


@pytest.mark.benchmark(group=RESAMPLE_GROUP)
def test_send_pcm_resample_and_frame(benchmark: Any, audio_44k: np.ndarray[Any, Any]) -> None:
    benchmark(resample_and_frame, audio_44k)


@pytest.mark.benchmark(group=RESAMPLE_GROUP)
def test_soxr_resample_alone(benchmark: Any, audio_44k: np.ndarray[Any, Any]) -> None:
    benchmark(soxr_alone, audio_44k)


@pytest.mark.benchmark(group=RESAMPLE_GROUP)
def test_numpy_interp_linear(benchmark: Any, audio_44k: np.ndarray[Any, Any]) -> None:
    grid = np.arange(10 * 24000) * (44100 / 24000)
    benchmark(np.interp, grid, np.arange(audio_44k.size), audio_44k)


# ---------------------------------------------------------------- pacing


async def _speak(specs: list[Any], mode: str) -> tuple[float, int]:
    """Every track speaks utterances back to back; client CPU and frames sent in the window."""
    rate = 16000
    utterance = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(UTTERANCE * rate)) / rate)).astype(
        np.float32
    )
    stop = asyncio.Event()
    sessions: list[Any] = []

    async def track_loop(track: Any) -> None:
        chunks = np.split(utterance, int(UTTERANCE * 50))
        while not stop.is_set():
            if mode == "chunk_loop":
                for chunk in chunks:
                    await track.send_chunk(chunk)
                    await asyncio.sleep(0.02)
                continue
            await track.send_pcm(utterance)
            if mode == "burst":
                await asyncio.sleep(UTTERANCE)  # the caller's own crude pacing

    async def agent_loop(spec: Any) -> None:
        agent = fishjam_fast.Agent(spec.peer_id, spec.room_id, spec.token, spec.url)
        async with agent.connect() as session:
            sessions.append(session)
            options = fishjam_fast.OutgoingAudioTrackOptions(sample_rate=rate)
            tracks = [
                await session.add_track(options, max_queued=MAX_QUEUED if mode == "paced" else None)
                for _ in range(TRACKS_PER_AGENT)
            ]
            loops = [asyncio.create_task(track_loop(t)) for t in tracks]
            try:
                await asyncio.gather(*loops)
            finally:
                for task in loops:
                    task.cancel()

    tasks = [asyncio.create_task(agent_loop(spec)) for spec in specs]
    await asyncio.sleep(WARMUP)
    sent0 = sum(s.stats.messages_sent for s in sessions)
    cpu0 = time.process_time()
    await asyncio.sleep(SECONDS)
    cpu = time.process_time() - cpu0
    chunks = sum(s.stats.messages_sent for s in sessions) - sent0
    stop.set()
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors[:3]
    return cpu, chunks


@pytest.mark.benchmark(timer=time.process_time, group=PACING_GROUP)
@pytest.mark.parametrize("mode", ["paced", "burst", "chunk_loop"])
def test_pacing_cpu(benchmark: Any, mode: str) -> None:
    benchmark.name = f"pacing[{'max_queued=0.5' if mode == 'paced' else 'unpaced ' + mode}]"
    results: list[tuple[float, int]] = []

    def run_once() -> None:
        with LocalFishjamProcess(seconds=120 + WARMUP + SECONDS) as server:
            specs = [server.create_agent() for _ in range(AGENTS)]
            with contextlib.suppress(asyncio.CancelledError):
                results.append(fishjam_fast.run(_speak(specs, mode)))

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    cpu, chunks = results[0]
    tracks = AGENTS * TRACKS_PER_AGENT
    benchmark.extra_info.update(
        tracks=tracks,
        seconds=SECONDS,
        cpu_seconds=cpu,
        cpu_per_track_second=cpu / (tracks * SECONDS),
        chunks_sent=chunks,
    )
    assert chunks > 0
