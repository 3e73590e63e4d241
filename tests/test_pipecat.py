"""FishjamTransport in real pipecat pipelines against the local Fishjam.

A simulated person speaks; the frames reach the pipeline at its rate with the person's
peer id; the pipeline's audio reaches the server's recording bit-exact at the track's
rate; an interruption drops what was queued (the recording shows the cut); the
participant events fire. Skipped where pipecat is not installed (its own CI stage runs
them: .ci/run, the pipecat environment).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pipecat", reason="pipecat is not installed (the pipecat extra)")

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    UserAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from fishjam_fast import Agent, FishjamNotifier
from fishjam_fast.local import AudioSource
from fishjam_fast.pcm import Resampler, to_pcm16
from fishjam_fast.pipecat import (
    FishjamParams,
    FishjamTransport,
    FrameAssembler,
    FrameMixer,
)

pytestmark = pytest.mark.slow  # real-time audio, a second or a few each
EVENT_LOOPS = ("asyncio", "uvloop")


class Collector(FrameProcessor):  # type: ignore[misc,unused-ignore]
    """Keeps the user audio it sees (with arrival times) and passes everything on."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[InputAudioRawFrame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.frames.append(frame)
        await self.push_frame(frame, direction)


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.01)


@asynccontextmanager
async def _running(
    transport: FishjamTransport, *middle: Any, in_rate: int = 16000, out_rate: int = 16000
) -> AsyncIterator[PipelineWorker]:
    """Runs input -> middle -> output until the block ends (then EndFrame, bounded)."""
    worker = PipelineWorker(
        Pipeline([transport.input(), *middle, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=in_rate, audio_out_sample_rate=out_rate),
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    try:
        output = transport.output()
        await _until(lambda: output.track is not None and transport.session is not None)
        await asyncio.sleep(0.2)  # pipecat's StartFrame reached every processor
        yield worker
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(asyncio.shield(running), 15)
    finally:
        if not running.done():
            await runner.cancel()
            await asyncio.wait_for(running, 10)


def _pcm(seconds: float, rate: int, seed: int) -> bytes:
    """Noise that no resampler or off-by-one would reproduce by chance."""
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, int(seconds * rate), dtype=np.int16).tobytes()


def _resampled(samples: np.ndarray[Any, Any], rate: int, to: int, piece: int) -> bytes:
    """The streaming soxr filter piece by piece, in float (soxr dithers int16 output at
    random), rounded back to int16 as the package does."""
    resampler = Resampler(rate, to)
    floats = samples.astype(np.float32) / 32768
    out = np.concatenate(
        [resampler.push(floats[i : i + piece]) for i in range(0, len(floats), piece)]
    )
    return to_pcm16(out)


async def _agent(fj: Any, sample_rate: int = 16000) -> tuple[str, Agent]:
    room = await fj.create_room()
    peer = await fj.add_agent(room, sample_rate=sample_rate)
    return room, Agent(peer.id, room, peer.token, fj.url)


@pytest.mark.parametrize("in_rate", [16000, 24000])
async def test_a_person_s_audio_reaches_the_pipeline_at_its_rate_with_their_id(
    local_fishjam: Any, in_rate: int
) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj, 16000)
    speech = np.frombuffer(_pcm(1.0, 16000, seed=1), np.int16)  # 50 chunks of 20 ms
    transport = FishjamTransport(agent, FishjamParams(audio_out_end_silence_secs=0))
    first: list[tuple[str, ...]] = []
    transport.add_event_handler("on_first_participant_joined", _recorder(first, "first"))
    collector = Collector()
    async with _running(transport, collector, in_rate=in_rate):
        person = await fj.join_person(room, audio=AudioSource.from_array(speech, 16000))
        await person.wait_done(timeout=10)
        frame_bytes = in_rate // 50 * 2
        expected = speech.tobytes()
        if in_rate != 16000:  # the same streaming soxr filter, chunk by chunk
            resampled = _resampled(speech, 16000, 24000, 320)
            expected = resampled[: len(resampled) // frame_bytes * frame_bytes]
        await _until(lambda: sum(len(f.audio) for f in collector.frames) >= len(expected))
        windows = transport.input().audio_windows
        assert windows is not None  # the native build: in 40 ms windows, not per chunk
        assert windows.windows >= 25  # 1 s of speech
        assert windows.overflow_frames == 0
    assert transport.input().audio_windows is None  # stopped with the pipeline
    frames = collector.frames
    assert {f.user_id for f in frames} == {person.peer_id}
    assert {(f.sample_rate, f.num_channels, len(f.audio)) for f in frames} == {
        (in_rate, 1, frame_bytes)
    }
    assert b"".join(f.audio for f in frames) == expected
    assert first == [("first", person.peer_id)]  # no notifier: known from the first audio


@pytest.mark.parametrize("out_rate", [24000, 16000, 22050])
async def test_the_pipeline_s_audio_reaches_the_recording_bit_exact(
    local_fishjam: Any, out_rate: int
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    audio = _pcm(1.0, out_rate, seed=2)  # 25 chunks of 40 ms
    transport = FishjamTransport(agent, FishjamParams(audio_out_end_silence_secs=0))
    async with _running(transport, out_rate=out_rate) as worker:
        await worker.queue_frame(OutputAudioRawFrame(audio, out_rate, 1))
    recording = fj.agent(agent.id).track(0)
    track_rate = out_rate if out_rate in (16000, 24000) else 24000
    assert recording.sample_rate == track_rate
    expected = audio
    if out_rate != track_rate:  # resampled on the way, 40 ms piece by piece
        samples = np.frombuffer(audio, np.int16)
        expected = _resampled(samples, out_rate, track_rate, out_rate // 25)
    # the EndFrame waited for the playout: everything sent was played, in order
    assert bytes(recording.played_audio) == expected
    assert recording.bytes_dropped == 0 and recording.interrupt_count == 0
    # paced by the playout clock: never more than max_queued (0.5 s) held, plus a chunk
    assert recording.max_held_seconds <= 0.5 + 0.04 + 1e-6


async def test_an_interruption_drops_what_was_queued(local_fishjam: Any) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    answer = _pcm(3.0, 16000, seed=3)
    after = _pcm(0.2, 16000, seed=4)
    transport = FishjamTransport(agent, FishjamParams(audio_out_end_silence_secs=0))
    async with _running(transport) as worker:
        await worker.queue_frame(OutputAudioRawFrame(answer, 16000, 1))
        recording = fj.agent(agent.id).track(0)
        await _until(lambda: recording.played_seconds >= 1.0)
        await worker.queue_frame(InterruptionFrame())
        await _until(lambda: recording.interrupt_count == 1)
        await asyncio.sleep(0.3)
        await worker.queue_frame(OutputAudioRawFrame(after, 16000, 1))
    played = bytes(recording.played_audio)
    cut = len(played) - len(after)
    # the answer up to the cut, then the next audio, and nothing of the answer after it
    assert played[:cut] == answer[:cut] and played[cut:] == after
    assert 1.0 <= cut / 32000 < 1.0 + 0.5 + 0.2
    assert recording.bytes_dropped > 0  # Fishjam held some: the interrupt dropped it
    # the rest of the answer was never sent
    assert recording.total_bytes < len(answer) // 2 + len(after)
    assert transport.output().interruptions == 1


async def test_participant_events_from_notifications(local_fishjam: Any) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    seen: list[tuple[str, ...]] = []
    async with FishjamNotifier(fj.url, fj.management_token) as notifier:
        transport = FishjamTransport(agent, notifier=notifier)
        for event in (
            "on_connected",
            "on_disconnected",
            "on_first_participant_joined",
            "on_participant_joined",
            "on_client_connected",
            "on_participant_left",
            "on_client_disconnected",
        ):
            transport.add_event_handler(event, _recorder(seen, event))
        async with _running(transport):
            ann = await fj.join_person(room)  # silent: known from PeerConnected alone
            await _until(lambda: ("on_client_connected", ann.peer_id) in seen)
            bob = await fj.join_person(room)
            await _until(lambda: ("on_client_connected", bob.peer_id) in seen)
            assert transport.participants == sorted([ann.peer_id, bob.peer_id])
            await fj.leave_person(ann.peer_id)
            await _until(lambda: ("on_client_disconnected", ann.peer_id) in seen)
            assert transport.participants == [bob.peer_id]
    assert seen == [
        ("on_connected",),
        ("on_first_participant_joined", ann.peer_id),
        ("on_participant_joined", ann.peer_id),
        ("on_client_connected", ann.peer_id),
        ("on_participant_joined", bob.peer_id),
        ("on_client_connected", bob.peer_id),
        ("on_participant_left", ann.peer_id),
        ("on_client_disconnected", ann.peer_id),
        ("on_disconnected",),
    ]


async def test_on_disconnected_when_fishjam_removes_the_agent(local_fishjam: Any) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    transport = FishjamTransport(agent, FishjamParams(audio_out_end_silence_secs=0))
    seen: list[tuple[str, ...]] = []
    transport.add_event_handler("on_disconnected", _recorder(seen, "on_disconnected"))
    async with _running(transport) as worker:
        await fj.remove_peer(room, agent.id)  # what the agent server does when a room empties
        await _until(lambda: seen == [("on_disconnected",)])
        # audio after the end goes nowhere, without an error per chunk
        await worker.queue_frame(OutputAudioRawFrame(_pcm(0.2, 16000, seed=7), 16000, 1))
        await asyncio.sleep(0.3)
        assert transport.session is not None and transport.session.closed
    assert seen == [("on_disconnected",)]  # once: not again when the pipeline ended


async def test_a_blocked_loop_drops_the_oldest_input_beyond_the_bound() -> None:
    """audio_in_max_queued_secs bounds what waits for pipecat: after the event loop was
    blocked for 2 s, the burst of audio beyond 0.2 s is dropped, counted, and the rest
    goes on in order. The Fishjam is in another process: it keeps speaking meanwhile."""
    from fishjam_fast.local.process import LocalFishjamProcess

    params = FishjamParams(audio_in_max_queued_secs=0.2, audio_out_end_silence_secs=0)
    with LocalFishjamProcess(seconds=60) as server:
        spec = server.create_agent()
        transport = FishjamTransport(
            Agent(spec.peer_id, spec.room_id, spec.token, spec.url), params
        )
        collector = Collector()
        async with _running(transport, collector):
            await asyncio.to_thread(
                server.join_person, spec.room_id, audio={"source": "tone", "seconds": 4.0}
            )
            await _until(lambda: len(collector.frames) >= 10)
            time.sleep(2.0)  # the loop is blocked: 100 chunks pile up in the socket
            await asyncio.sleep(1.0)
        dropped = transport.input().frames_dropped
    assert dropped >= 50, dropped  # most of the 2 s burst, beyond 0.2 s (10 frames)
    heard = len(collector.frames)
    assert heard + dropped <= 200 and heard >= 40, (heard, dropped)  # and it went on


def _recorder(seen: list[tuple[str, ...]], event: str) -> Callable[..., Any]:
    async def handler(transport: FishjamTransport, *args: Any) -> None:
        seen.append((event, *args[:1]))

    return handler


async def test_a_given_session_stays_open_and_gets_its_track_back(local_fishjam: Any) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        transport = FishjamTransport(session, FishjamParams(audio_out_end_silence_secs=0))
        async with _running(transport) as worker:
            await worker.queue_frame(OutputAudioRawFrame(_pcm(0.2, 16000, seed=5), 16000, 1))
        assert not session.closed
        # the transport stopped the windows it started: the session's owner may start its own
        assert session.on_audio(lambda window: None, 20) is not None
        session.on_audio(None)
        recording = fj.agent(agent.id).track(0)
        await _until(lambda: recording.removed)  # the transport removed what it added
        assert recording.total_bytes == 6400


def test_bad_arguments_say_what_is_allowed() -> None:
    with pytest.raises(TypeError, match="Agent or AgentSession"):
        FishjamTransport("agent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="16000 or 24000 Hz, not 8000"):
        FishjamParams(agent_sample_rate=8000)
    with pytest.raises(ValueError, match="mono"):
        FishjamParams(audio_in_channels=2)
    with pytest.raises(ValueError, match="whole number of input frames"):
        FishjamParams(audio_in_frame_ms=20, audio_in_window_ms=50)
    assert FishjamParams().in_window_ms == 40  # two 20 ms frames
    assert FishjamParams(audio_in_frame_ms=60).in_window_ms == 60  # at least one frame
    with pytest.raises(ValueError, match="whole number of samples"):
        FrameAssembler(16000, 22050, frame_ms=15)


def test_the_assembler_cuts_any_pieces_into_whole_frames() -> None:
    assembler = FrameAssembler(16000, 16000, frame_ms=30)  # 960-byte frames
    audio = _pcm(0.5, 16000, seed=6)
    frames: list[bytes] = []
    for start, stop in [(0, 640), (640, 700), (700, 3000), (3000, len(audio))]:
        frames += assembler.push("ann", audio[start:stop])
    assert [len(f) for f in frames] == [960] * (len(audio) // 960)
    assert b"".join(frames) == audio[: len(frames) * 960]
    assert assembler.push("bob", audio[:640]) == []  # peers have their own partial frame
    assert assembler.peers == ["ann", "bob"]
    assembler.forget("ann")
    assert assembler.peers == ["bob"]


async def test_people_mixed_into_one_stream(local_fishjam: Any) -> None:
    """audio_in_user_tracks=False: one stream of InputAudioRawFrame, the people summed."""
    fj = local_fishjam
    room, agent = await _agent(fj)
    params = FishjamParams(audio_in_user_tracks=False, audio_out_end_silence_secs=0)
    transport = FishjamTransport(agent, params)
    collector = Collector()
    async with _running(transport, collector):
        ann = await fj.join_person(room, audio=np.full(16000, 1000, np.int16))  # 1 s each
        bob = await fj.join_person(room, audio=np.full(16000, 2000, np.int16))
        await ann.wait_done(timeout=10)
        await bob.wait_done(timeout=10)
        await _until(lambda: len(collector.frames) >= 50)
    frames = collector.frames
    assert not any(isinstance(f, UserAudioRawFrame) for f in frames)
    assert {(f.sample_rate, len(f.audio)) for f in frames} == {(16000, 640)}
    levels = [set(np.frombuffer(f.audio, np.int16).tolist()) for f in frames]
    assert all(len(level) == 1 for level in levels)  # whole frames of one person or both
    both = sum(1 for level in levels if level == {3000})
    assert both >= 40, levels  # the people overlapped for most of their second


def test_the_mixer_waits_for_everyone_then_leaves_the_silent_out() -> None:
    a, b = bytes(np.full(4, 100, "<i2")), bytes(np.full(4, 30000, "<i2"))
    mixer = FrameMixer(max_wait_frames=2)
    assert mixer.add("ann", [a]) == [a]  # alone: as it came
    assert mixer.add("ann", [a]) == [a]
    assert mixer.add("bob", [b]) == []  # ann has nothing waiting: bob waits for her
    mixed = mixer.add("ann", [a])
    assert mixed == [bytes(np.full(4, 30100, "<i2"))]
    assert mixer.add("bob", [b, b]) == [bytes(np.full(4, 30000, "<i2"))] * 2  # ann left out
    assert mixer.add("bob", [b]) == [b]
    loud = bytes(np.full(4, 20000, "<i2"))
    assert mixer.add("ann", [loud]) == []  # back: mixed in again, and waits for bob
    assert mixer.add("bob", [b]) == [bytes(np.full(4, 32767, "<i2"))]  # summed, saturated
    mixer.forget("bob")
    assert mixer.add("ann", [a]) == [a]  # bob left: ann alone
    with pytest.raises(ValueError, match="at least 1"):
        FrameMixer(max_wait_frames=0)
