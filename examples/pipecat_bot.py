"""A pipecat voice bot on Fishjam: Silero VAD, stand-ins for STT and TTS, barge-in.

Shows ``fishjam_fast.pipecat.FishjamTransport`` in a pipecat pipeline::

    transport.input() -> VADProcessor(SileroVADAnalyzer()) -> Turns -> BeepTTS -> transport.output()

- the transport pushes each person's audio as ``UserAudioRawFrame(user_id=peer_id)``;
- pipecat's own Silero VAD (its model ships in pipecat's wheel) marks speech;
- ``Turns`` stands in for speech-to-text (it "transcribes" a turn as its length) and
  interrupts the bot when the person speaks over it (``broadcast_interruption()``: the
  transport drops what pipecat queued and what Fishjam holds, ``track.interrupt()``);
- ``BeepTTS`` stands in for text-to-speech: a beep a word at 22.05 kHz, which pipecat
  resamples to the pipeline's 24 kHz and the transport paces onto a 24 kHz track
  (``audio_out_max_queued_secs``: at most 0.5 s queued at Fishjam).

Run it (from a clone: ``.venv/bin/python`` after ``bash scripts/test.sh``, with
``pip install 'fishjam-fast[pipecat]' 'pipecat-ai[silero]'``)::

    python examples/pipecat_bot.py --seconds 12

On the local Fishjam a simulated person talks in turns (espeak-ng speech: install
``espeak-ng`` so that Silero hears a voice) and speaks over the bot's first answer; with
``FISHJAM_ID`` and ``FISHJAM_MANAGEMENT_TOKEN`` set, join the room it prints and talk.

The same pipeline as the agent server's job, one per room with people in it::

    python examples/pipecat_bot.py --seconds 8 --rooms 2     # a server and people, locally
    python -m fishjam_fast serve pipecat_bot:entry --fishjam-url URL
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

import fishjam_fast
from fishjam_fast import AsyncFishjamClient
from fishjam_fast.pipecat import FishjamParams, FishjamTransport

from _fishjam import arguments, fishjam

IN_RATE = 16000  # what the agent hears (Silero takes 16 kHz)
OUT_RATE = 24000  # the pipeline's output and the track's rate
TTS_RATE = 22050  # the stand-in TTS's rate: pipecat resamples it to OUT_RATE


class Turns(FrameProcessor):
    """Stand-in speech-to-text with barge-in: a turn is what the VAD heard between
    its start and stop; speech while the bot talks interrupts the bot."""

    def __init__(self, transport: FishjamTransport) -> None:
        super().__init__()
        self.transport = transport
        self.speech = 0.0  # seconds of the person's audio in this turn
        self.in_turn = False
        self.bot_speaking = False
        self.turns = self.barge_ins = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame) and self.in_turn:
            self.speech += frame.num_frames / frame.sample_rate
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self.in_turn, self.speech = True, 0.0
            if self.bot_audible():  # barge-in: drop the answer here and at Fishjam
                self.barge_ins += 1
                print(f"  barge-in: the person spoke over answer {self.turns}", flush=True)
                await self.broadcast_interruption()
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self.in_turn:
            self.in_turn = False
            self.turns += 1
            text = f"<{self.speech:.1f} s of speech>"
            print(f"turn {self.turns}: heard {text}", flush=True)
            await self.push_frame(TranscriptionFrame(text, "person", time.strftime("%X")))
        elif isinstance(frame, BotStartedSpeakingFrame):
            self.bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.bot_speaking = False
        await self.push_frame(frame, direction)

    def bot_audible(self) -> bool:
        """Whether the bot is being heard: pipecat's speaking state ends when the last
        chunk is written, the track's playout clock when Fishjam has played it."""
        track = self.transport.output().track
        return self.bot_speaking or (track is not None and track.queued_duration > 0)


class BeepTTS(FrameProcessor):
    """Stand-in text-to-speech: a 660 Hz beep a word of the answer, in 100 ms pieces."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, TranscriptionFrame):
            await self.push_frame(frame, direction)
            return
        words = f"got it: {frame.text}".split()  # 6 words: a 1.2 s answer
        t = np.arange(int(0.2 * TTS_RATE)) / TTS_RATE
        beep = np.where(t < 0.15, 0.3 * np.sin(2 * np.pi * 660 * t), 0.0)
        audio = (np.tile(beep, len(words)) * 32767).astype(np.int16).tobytes()
        piece = int(0.1 * TTS_RATE) * 2
        await self.push_frame(TTSStartedFrame())
        for start in range(0, len(audio), piece):
            await self.push_frame(TTSAudioRawFrame(audio[start : start + piece], TTS_RATE, 1))
        await self.push_frame(TTSStoppedFrame())


def pipeline(transport: FishjamTransport, turns: Turns) -> PipelineWorker:
    """The bot's pipeline on ``transport``."""
    return PipelineWorker(
        Pipeline(
            [
                transport.input(),
                VADProcessor(vad_analyzer=SileroVADAnalyzer()),
                turns,
                BeepTTS(),
                transport.output(),
            ]
        ),
        params=PipelineParams(audio_in_sample_rate=IN_RATE, audio_out_sample_rate=OUT_RATE),
        enable_rtvi=False,
    )


def params() -> FishjamParams:
    """The transport's parameters: Fishjam's rates, pacing, no end silence."""
    return FishjamParams(
        agent_sample_rate=IN_RATE,
        audio_out_max_queued_secs=0.5,
        audio_out_end_silence_secs=0,
    )


async def entry(job: fishjam_fast.Job) -> None:
    """The agent server's job: the bot's pipeline in the job's room, until it ends."""
    transport = FishjamTransport(job.agent, params())
    worker = pipeline(transport, Turns(transport))

    @transport.event_handler("on_disconnected")
    async def ended(transport: FishjamTransport) -> None:  # the room emptied: the job ends
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def person_talking_in_turns() -> Any:
    """The simulated person: a question, a pause (the bot answers), words over the
    answer (a barge-in), then a long pause (the next answer plays in full)."""
    from fishjam_fast.local import AudioSource

    def say(text: str) -> Any:
        return AudioSource.speech(text).render(IN_RATE)

    def pause(seconds: float) -> Any:
        return np.zeros(int(seconds * IN_RATE), np.int16)

    turns = [say("Hello, can you hear me?"), pause(0.5), say("Wait, wait, stop."), pause(3.5)]
    return AudioSource.from_array(np.concatenate(turns), IN_RATE)


async def main(seconds: float) -> None:
    async with fishjam() as where:
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            room = await client.create_room()
            agent = await client.create_agent(room.id)
        transport = FishjamTransport(agent, params())
        turns = Turns(transport)
        worker = pipeline(transport, turns)

        @transport.event_handler("on_first_participant_joined")
        async def joined(transport: FishjamTransport, peer_id: str) -> None:
            print(f"{peer_id} joined", flush=True)

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        while transport.output().track is None and not running.done():
            await asyncio.sleep(0.05)  # the agent connected and added its track
        source = person_talking_in_turns() if where.local is not None else None
        await where.person_speaks(room.id, source)
        await asyncio.sleep(seconds)
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(running, 10)
        print(f"turns: {turns.turns}; barge-ins: {turns.barge_ins}")
        if where.local is not None:
            tracks = where.local.agent(agent.id).tracks.values()
            interrupts = sum(len(t.interrupts) for t in tracks)
            dropped = sum(t.bytes_dropped / t.bytes_per_second for t in tracks)
            played = sum(t.played_seconds for t in tracks)
            print(
                f"the local Fishjam played {played:.1f} s of answers, recorded {interrupts} "
                f"interrupts and dropped {dropped:.2f} s"
            )
        if where.local is None:
            async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
                await client.delete_room(room.id)


async def serve(seconds: float, rooms: int) -> None:
    """The agent server runs ``entry`` in each room where a person talks."""
    async with fishjam() as where:
        server = fishjam_fast.AgentServer(
            entry,
            fishjam_url=where.fishjam_id,
            management_token=where.management_token,
            metrics_port=None,
            drain_timeout=2.0,
        )
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            async with server:
                room_ids = [(await client.create_room()).id for _ in range(rooms)]
                people = []
                for room_id in room_ids:
                    if where.local is None:
                        print(f"room {room_id}: join it and speak", flush=True)
                        continue
                    person = await where.local.join_person(room_id, audio=person_talking_in_turns())
                    people.append(person.peer_id)
                await asyncio.sleep(seconds)
                jobs = server.supervisor.jobs()
                print(f"{len(jobs)} pipelines in {rooms} rooms")
                agents = [j.agent_peer_id for j in jobs if j.agent_peer_id is not None]
                for peer_id in people:  # the people leave: the server ends the jobs
                    assert where.local is not None
                    await where.local.leave_person(peer_id)
                deadline = time.monotonic() + 10
                while people and server.supervisor.jobs() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                if people:
                    print(f"after the people left: {len(server.supervisor.jobs())} jobs running")
            for room_id in room_ids:
                await client.delete_room(room_id)
        recorded = [where.chunks_recorded(peer_id) for peer_id in agents]
        if where.local is not None:
            print(
                f"the local Fishjam recorded {sum(r or 0 for r in recorded)} chunks "
                f"answered by {sum(1 for r in recorded if r)} agents"
            )


if __name__ == "__main__":  # needed: the agent server's workers import this module
    args = arguments(__doc__, seconds=12.0, rooms=0)
    if args.rooms:
        asyncio.run(serve(args.seconds, args.rooms))
    else:
        asyncio.run(main(args.seconds))
