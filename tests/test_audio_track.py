"""The playout clock, pacing and resampling of OutgoingTrack, against the local Fishjam.

The local server (in this process, on this loop) plays each agent track in real time
and exposes what it played and still holds (``fj.track_playout``) and when each chunk
arrived with how much it then held (``TrackRecording.arrivals``): the client's clock is
compared with the server's, on both event loops (tests/conftest.py).

The tolerances (40 ms between the clocks, 60 ms for ``wait_for_playout``) are the
issue's: both clocks read the same ``time.monotonic()``; they differ by the delivery
delay of a chunk over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from fishjam_fast import Agent, AgentError, OutgoingAudioTrackOptions, TrackEncoding
from fishjam_fast.local import LocalFishjam
from fishjam_fast.local.records import TrackRecording
from fishjam_fast.pcm import Resampler, to_pcm16
from fishjam_fast.session import AgentSession
from fishjam_fast.track import OutgoingTrack

# every test on both transports (picows, websockets), as the agent tests
pytestmark = pytest.mark.usefixtures("transport")

TIMEOUT = 10.0
CLOCK_TOLERANCE = 0.040
PLAYOUT_TOLERANCE = 0.060


async def _agent(fj: LocalFishjam, rate: int = 24000) -> Agent:
    room = await fj.create_room()
    peer = await fj.add_agent(room, sample_rate=rate)
    return Agent(peer.id, room, peer.token, fj.url)


def _sine(freq: float, rate: int, seconds: float, level: float = 0.5) -> np.ndarray[Any, Any]:
    t = np.arange(round(rate * seconds)) / rate
    return (level * np.sin(2 * math.pi * freq * t)).astype(np.float32)


@contextlib.asynccontextmanager
async def _track(
    fj: LocalFishjam, rate: int, max_queued: float | None = None
) -> AsyncIterator[tuple[str, AgentSession, OutgoingTrack, TrackRecording]]:
    """A connected agent with one PCM16 track, and the server's recording of it."""
    agent = await _agent(fj, rate)
    async with agent.connect() as session:
        options = OutgoingAudioTrackOptions(sample_rate=rate)  # type: ignore[arg-type]
        track = await session.add_track(options, max_queued=max_queued)
        yield agent.id, session, track, await fj.wait_track(agent.id, 0, TIMEOUT)


def _held(fj: LocalFishjam, peer_id: str, track_id: str) -> float:
    return fj.track_playout(peer_id, track_id)[1]


# ---------------------------------------------------------------- the playout clock


@pytest.mark.slow  # ten seconds of real-time audio
async def test_clock_agrees_with_the_server_over_a_ten_second_run(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    rng = np.random.default_rng(10)
    checks = 0
    async with _track(fj, 24000) as (peer_id, _, track, recording):
        start = time.monotonic()
        step = 0
        while time.monotonic() - start < 10.0:
            action = step % 6
            step += 1
            if action in (0, 2):  # a burst of speech, bigger than real time
                await track.send_pcm(_sine(300, 24000, float(rng.uniform(0.2, 1.2))))
            elif action == 1:  # single chunks
                for _ in range(int(rng.integers(1, 10))):
                    await track.send_chunk(_sine(500, 24000, 0.02))
            elif action == 3:  # barge-in
                dropped = await track.interrupt()
                assert track.queued_duration == 0.0
                assert dropped >= 0.0
            # (4, 5): a pause: the queue drains, or runs dry
            for _ in range(int(rng.integers(2, 8))):
                await asyncio.sleep(float(rng.uniform(0.01, 0.12)))
                client = track.queued_duration
                server = _held(fj, peer_id, track.id)
                assert abs(client - server) <= CLOCK_TOLERANCE, (step, client, server)
                checks += 1
        assert recording.interrupt_count >= 2
    assert checks > 50


@pytest.mark.slow  # real-time playout (1 s a case)
async def test_wait_for_playout_returns_when_the_server_has_played_it(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    async with _track(fj, 16000) as (peer_id, _session, track, recording):
        for seconds in (0.3, 0.05, 0.7):
            await track.send_pcm(_sine(440, 16000, seconds))
            assert track.queued_duration > 0.0
            await asyncio.wait_for(track.wait_for_playout(), TIMEOUT)
            returned = time.monotonic()
            last = recording.arrivals[-1]
            finished = last.at + last.held  # when the server's queue ran out
            assert abs(returned - finished) <= PLAYOUT_TOLERANCE, returned - finished
            assert track.queued_duration == 0.0
            assert _held(fj, peer_id, track.id) <= PLAYOUT_TOLERANCE
        # nothing queued: at once, without a timer
        await asyncio.wait_for(track.wait_for_playout(), 0.5)


async def test_interrupt_returns_what_the_server_dropped(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with _track(fj, 24000) as (_peer_id, _session, track, recording):
        await track.send_pcm(_sine(440, 24000, 2.0))
        await asyncio.sleep(0.3)
        waiter = asyncio.create_task(track.wait_for_playout())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        dropped = await track.interrupt()
        await asyncio.wait_for(waiter, 1.0)  # woken by the interrupt, not after 2 s
        await fj.wait_for(lambda: recording.interrupt_count, TIMEOUT)
        server_dropped = recording.bytes_dropped / (2 * 24000)
        assert dropped == pytest.approx(server_dropped, abs=CLOCK_TOLERANCE)
        assert 1.4 < dropped < 1.75  # 2 s sent, about 0.35 s played
        assert track.queued_duration == 0.0
        assert await track.interrupt() == 0.0  # nothing left to drop


async def test_wait_for_playout_cancelled_has_no_side_effects(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with _track(fj, 24000) as (_peer_id, _session, track, _recording):
        await track.send_pcm(_sine(440, 24000, 1.0))
        queued = track.queued_duration
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await track.wait_for_playout()
        assert not track._sleepers  # no waiter or timer left behind
        assert track.queued_duration == pytest.approx(queued - 0.1, abs=CLOCK_TOLERANCE)
        assert await track.interrupt() > 0.5  # the audio is still queued


async def test_opus_track_clock_stays_empty(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    opus = OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_OPUS, sample_rate=48000)
    async with agent.connect() as session:
        track = await session.add_track(opus)
        for _ in range(50):
            await track.send_chunk(b"\xfc" + bytes(100))
        assert track.queued_duration == 0.0
        await asyncio.wait_for(track.wait_for_playout(), 0.5)
        assert await track.interrupt() == 0.0
        with pytest.raises(ValueError, match="PCM16 tracks only"):
            await session.add_track(opus, max_queued=0.5)


async def test_remove_ends_waits(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with _track(fj, 24000, max_queued=0.1) as (_peer_id, _session, track, _recording):
        await track.send_pcm(_sine(440, 24000, 0.1))
        waiter = asyncio.create_task(track.wait_for_playout())
        sender = asyncio.create_task(track.send_pcm(_sine(440, 24000, 1.0)))
        await asyncio.sleep(0.02)
        await track.remove()
        await asyncio.wait_for(waiter, 1.0)
        with pytest.raises(AgentError, match="removed"):
            await asyncio.wait_for(sender, 1.0)
        assert track.queued_duration == 0.0


# ---------------------------------------------------------------- pacing


@pytest.mark.slow  # real-time playout (1 s a case)
async def test_paced_send_pcm_stays_within_max_queued(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    max_queued, chunk = 0.3, 0.02
    ticks = 0

    async def ticker() -> None:  # the loop keeps running while send_pcm paces
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with _track(fj, 24000, max_queued) as (_, session, track, recording):
        assert track.max_queued == max_queued
        samples = _sine(440, 24000, 1.5)
        ticking = asyncio.create_task(ticker())
        start = time.monotonic()
        assert await track.send_pcm(samples) == 75
        elapsed = time.monotonic() - start
        ticking.cancel()
        await fj.wait_bytes(recording, 2 * samples.size, TIMEOUT)
        assert max(a.held for a in recording.arrivals) <= max_queued + chunk
        assert recording.max_held_seconds <= max_queued + chunk
        assert elapsed >= 1.5 - max_queued - chunk  # it waited for room: it was paced
        assert track.queued_duration <= max_queued
        assert ticks > 20  # sanity: the loop was not blocked
        assert b"".join(recording.chunks) == to_pcm16(samples)
        assert session.stats.messages_sent == 2 + 75


@pytest.mark.slow  # real-time playout
async def test_paced_send_chunk_stays_within_max_queued(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with _track(fj, 16000, max_queued=0.1) as (_peer_id, _session, track, recording):
        chunk = bytes(640)  # 20 ms
        start = time.monotonic()
        for _ in range(40):
            await track.send_chunk(chunk)
        assert time.monotonic() - start >= 0.8 - 0.1 - 0.02
        await fj.wait_bytes(recording, 40 * 640, TIMEOUT)
        assert recording.max_held_seconds <= 0.1 + 0.02


@pytest.mark.slow  # real-time playout (1 s a case)
async def test_cancelled_paced_send_pcm_leaves_valid_frames_and_exact_stats(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    async with _track(fj, 24000, max_queued=0.2) as (peer_id, session, track, recording):
        first = _sine(440, 24000, 3.0)
        sending = asyncio.create_task(track.send_pcm(first))
        await asyncio.sleep(0.5)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        sent = session.stats.messages_sent - 2
        assert 10 < sent < 150  # midway
        second = _sine(660, 24000, 0.5)
        assert await track.send_pcm(second) == 25
        total = sent + 25
        assert session.stats.messages_sent == 2 + total
        await fj.wait_for(lambda: recording.chunk_count == total, TIMEOUT)
        assert [len(c) for c in recording.chunks] == [960] * total  # whole chunks only
        expected = to_pcm16(first)[: sent * 960] + to_pcm16(second)
        assert b"".join(recording.chunks) == expected
        assert abs(track.queued_duration - _held(fj, peer_id, track.id)) <= CLOCK_TOLERANCE
        assert recording.max_held_seconds <= 0.2 + 0.02


# ---------------------------------------------------------------- resampling


async def test_send_pcm_resamples_like_soxr(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    samples = _sine(440, 44100, 1.0)
    resampler = Resampler(44100, 24000)
    expected = to_pcm16(np.concatenate((resampler.push(samples), resampler.flush())))
    async with _track(fj, 24000) as (_, _, track, recording):
        sent = await track.send_pcm(samples, sample_rate=44100)
        await fj.wait_bytes(recording, len(expected), TIMEOUT)
    assert sent == recording.chunk_count == 50
    assert b"".join(recording.chunks) == expected


async def test_send_pcm_stream_pieces_equal_one_call(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    samples = _sine(440, 48000, 1.0) + _sine(1234, 48000, 1.0, 0.2)
    pieces = np.split(samples, np.sort(np.random.default_rng(4).integers(0, samples.size, 40)))
    recordings = []
    for split in (False, True):
        agent = await _agent(fj, 16000)
        async with agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
            recording = await fj.wait_track(agent.id, 0, TIMEOUT)
            if split:
                sent = 0
                for piece in pieces:
                    sent += await track.send_pcm(piece, sample_rate=48000, final=False)
                sent += await track.send_pcm(samples[:0], sample_rate=48000)
            else:
                sent = await track.send_pcm(samples, sample_rate=48000)
            await fj.wait_for(lambda r=recording, n=sent: r.chunk_count == n, TIMEOUT)
            recordings.append(recording.chunks)
    assert recordings[0] == recordings[1]
    assert all(len(c) == 640 for c in recordings[1])


async def test_interrupt_resets_the_stream(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with _track(fj, 24000) as (_peer_id, _session, track, recording):
        await track.send_pcm(_sine(440, 44100, 0.0101), sample_rate=44100, final=False)
        await track.interrupt()
        # a new stream at another rate is allowed; the old carry is gone
        fresh = _sine(440, 48000, 0.1)
        resampler = Resampler(48000, 24000)
        expected = to_pcm16(np.concatenate((resampler.push(fresh), resampler.flush())))
        before = recording.total_bytes
        await track.send_pcm(fresh, sample_rate=48000)
        await fj.wait_bytes(recording, before + len(expected), TIMEOUT)
        assert b"".join(recording.chunks)[before:] == expected


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("rate", [0, -44100, 999, 10**9])
async def test_bad_sample_rates_send_nothing(local_fishjam: LocalFishjam, rate: int) -> None:
    fj = local_fishjam
    async with _track(fj, 24000) as (_peer_id, session, track, _recording):
        with pytest.raises(ValueError, match="sample_rate must be between 1000 and 768000 Hz"):
            await track.send_pcm(_sine(440, 24000, 0.1), sample_rate=rate)
        with pytest.raises(TypeError, match="sample_rate must be an int"):
            await track.send_pcm(_sine(440, 24000, 0.1), sample_rate=44100.0)  # type: ignore[arg-type]
        assert session.stats.messages_sent == 2


async def test_bad_samples_send_nothing(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with _track(fj, 24000) as (_peer_id, session, track, _recording):
        stereo = np.zeros((4410, 2), np.float32)
        with pytest.raises(ValueError, match="channels"):
            await track.send_pcm(stereo, sample_rate=44100)
        with pytest.raises(ValueError, match="channels"):
            await track.send_pcm(stereo)
        loud = _sine(440, 44100, 0.1, level=20000.0)  # int16 scale, as float
        for call in (
            track.send_pcm(loud, sample_rate=44100),
            track.send_pcm(loud, sample_rate=44100, final=False),
            track.send_pcm(loud),
            track.send_chunk(loud),
        ):
            with pytest.raises(ValueError, match=r"must be in \[-1, 1\].*samples / 32768"):
                await call
        assert track.queued_duration == 0.0
        assert session.stats.messages_sent == 2
        # the stream is usable afterwards
        assert await track.send_pcm(loud / 32768, sample_rate=44100) == 5


@pytest.mark.parametrize(
    ("max_queued", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (True, TypeError),
        ("0.5", TypeError),
    ],
)
async def test_bad_max_queued_adds_no_track(
    local_fishjam: LocalFishjam, max_queued: Any, error: type[Exception]
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        with pytest.raises(error, match="max_queued"):
            await session.add_track(OutgoingAudioTrackOptions(), max_queued=max_queued)
        assert session.stats.messages_sent == 1  # auth only
