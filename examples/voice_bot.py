"""A voice bot: it waits for the end of a turn, answers, and stops when interrupted.

Shows a voice agent's loop on fishjam_fast with stand-ins for the models:

- an energy voice-activity detector (VAD) on the incoming 20 ms chunks: a turn starts
  after 100 ms of speech and ends after 300 ms of silence;
- a stand-in for speech-to-text (it "transcribes" a turn as its length) and one for
  text-to-speech (a beep a word, synthesized at 22.05 kHz in 100 ms pieces, as a
  streaming TTS hands them out); put your models in their place;
- ``send_pcm(..., sample_rate=22050, final=False)`` resamples the pieces to the
  track's 16 kHz and cuts them into whole chunks; ``max_queued=0.5`` paces the answer
  (sending waits while more than 0.5 s would be queued at Fishjam), so that
- barge-in is quick: when the person speaks over the answer, the bot cancels it and
  ``await track.interrupt()`` drops what Fishjam still holds (at most 0.5 s);
- ``await track.wait_for_playout()`` says when an answer has been heard in full.

Run it (from a clone: ``.venv/bin/python`` after ``bash scripts/test.sh``)::

    python examples/voice_bot.py --seconds 8

It uses the local Fishjam with a simulated person who talks in turns and interrupts
the bot's first answer, or your Fishjam with ``FISHJAM_ID`` and
``FISHJAM_MANAGEMENT_TOKEN`` set (then join the room it prints, speak, pause, and speak
over its beeps). It ends after ``--seconds`` and prints the conversation.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from typing import Final

import numpy as np
import numpy.typing as npt

import fishjam_fast
from fishjam_fast import (
    AsyncFishjamClient,
    IncomingTrackData,
    OutgoingAudioTrackOptions,
    OutgoingTrack,
)

from _fishjam import arguments, fishjam

RATE: Final = 16000  # what the agent hears (its output rate) and what its track sends
TTS_RATE = 22050  # the stand-in TTS's rate: send_pcm resamples it to RATE
CHUNK = 0.02  # seconds of audio in an incoming chunk


class EnergyVad:
    """Speech where a chunk's RMS level is above ``threshold`` (of full scale)."""

    def __init__(self, threshold: float = 0.02, start: float = 0.1, end: float = 0.3) -> None:
        self.threshold = threshold
        self.start = start  # seconds of speech that start a turn
        self.end = end  # seconds of silence that end it
        self.in_turn = False
        self.speech = 0.0  # seconds of speech in this turn
        self.last_turn = 0.0  # seconds of speech in the turn that ended last
        self.silence = 0.0  # seconds of silence since the last speech

    def push(self, samples: npt.NDArray[np.float32]) -> str | None:
        """Feeds one chunk; returns "started", "ended" (the turn) or None."""
        seconds = len(samples) / RATE
        if float(np.sqrt(np.mean(samples * samples))) > self.threshold:
            self.speech += seconds
            self.silence = 0.0
            if not self.in_turn and self.speech >= self.start:
                self.in_turn = True
                return "started"
            return None
        if not self.in_turn:
            self.speech = 0.0  # a click, not a turn
            return None
        self.silence += seconds
        if self.silence >= self.end:
            self.in_turn = False
            self.last_turn, self.speech = self.speech, 0.0
            return "ended"
        return None


def transcribe(speech_seconds: float) -> str:
    """Stand-in for speech-to-text."""
    return f"<{speech_seconds:.1f} s of speech>"


def synthesize(text: str) -> Iterator[npt.NDArray[np.float32]]:
    """Stand-in for a streaming text-to-speech: a 660 Hz beep a word (0.15 s beep, 0.05 s
    gap), float32 in [-1, 1] at TTS_RATE, in 100 ms pieces."""
    t = np.arange(int(0.2 * TTS_RATE)) / TTS_RATE
    beep = np.where(t < 0.15, 0.3 * np.sin(2 * np.pi * 660 * t), 0.0).astype(np.float32)
    audio = np.tile(beep, len(text.split()))
    piece = int(0.1 * TTS_RATE)
    for start in range(0, len(audio), piece):
        yield audio[start : start + piece]


def person_talking_in_turns() -> npt.NDArray[np.int16]:
    """The simulated person (local Fishjam only): a voice-like signal in turns, at RATE.
    0.8 s of speech, 0.6 s pause (the bot starts answering), 0.8 s over the answer (a
    barge-in), then 2.4 s of silence (the bot's next answer is heard in full); repeated."""

    def voice(seconds: float) -> npt.NDArray[np.float64]:
        t = np.arange(int(seconds * RATE)) / RATE
        harmonics = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
        return 0.15 * (0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 3 * t))) * harmonics

    def pause(seconds: float) -> npt.NDArray[np.float64]:
        return np.zeros(int(seconds * RATE))

    turns = np.concatenate([voice(0.8), pause(0.6), voice(0.8), pause(2.4)])
    return (turns * 32767).astype(np.int16)


class Bot:
    """The conversation: one answer at a time, cancelled by a barge-in."""

    def __init__(self, track: OutgoingTrack) -> None:
        self.track = track
        self.answering: asyncio.Task[None] | None = None
        self.turns = self.answers_heard = self.barge_ins = 0

    async def answer(self, text: str) -> None:
        for piece in synthesize(text):  # paced by max_queued: goes out as it plays
            await self.track.send_pcm(piece, sample_rate=TTS_RATE, final=False)
        await self.track.send_pcm(np.zeros(0, np.float32), sample_rate=TTS_RATE)  # flush
        await self.track.wait_for_playout()
        self.answers_heard += 1
        print(f"  answer {self.turns} heard in full")

    async def on_vad(self, event: str, vad: EnergyVad) -> None:
        if event == "started" and self.answering is not None and not self.answering.done():
            self.answering.cancel()  # stop sending ...
            dropped = await self.track.interrupt()  # ... and drop what Fishjam holds
            self.barge_ins += 1
            print(f"  barge-in: the person spoke over answer {self.turns}; dropped {dropped:.2f} s")
        elif event == "ended":
            self.turns += 1
            heard = transcribe(vad.last_turn)
            print(f"turn {self.turns}: heard {heard}")
            text = f"got it: {heard}"  # 6 words: a 1.2 s answer
            self.answering = asyncio.create_task(self.answer(text))


async def main(seconds: float) -> None:
    async with fishjam() as where:
        async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
            room = await client.create_room()
            agent = await client.create_agent(room.id)
        async with agent.connect() as session:
            options = OutgoingAudioTrackOptions(sample_rate=RATE)
            bot = Bot(await session.add_track(options, max_queued=0.5))
            if where.local is not None:
                from fishjam_fast.local import AudioSource

                source = AudioSource.from_array(person_talking_in_turns(), RATE)
                await where.person_speaks(room.id, source)
            else:
                await where.person_speaks(room.id)
            # one VAD per person; it counts silence in the chunks it hears (a room that
            # sends nothing while people are silent needs a timer to end turns as well)
            vads: defaultdict[str, EnergyVad] = defaultdict(EnergyVad)
            try:
                async with asyncio.timeout(seconds):
                    async for message in session.receive():
                        if isinstance(message, IncomingTrackData):
                            vad = vads[message.peer_id]
                            event = vad.push(message.samples())
                            if event is not None:
                                await bot.on_vad(event, vad)
            except TimeoutError:
                pass
            if bot.answering is not None:
                bot.answering.cancel()
        print(
            f"turns: {bot.turns}; answers heard in full: {bot.answers_heard}; "
            f"barge-ins: {bot.barge_ins}"
        )
        interrupts = where.interrupts_recorded(agent.id)
        if interrupts is not None:
            print(f"the local Fishjam recorded {interrupts} interrupts")
        if where.local is None:
            async with AsyncFishjamClient(where.fishjam_id, where.management_token) as client:
                await client.delete_room(room.id)


if __name__ == "__main__":
    fishjam_fast.run(main(arguments(__doc__, seconds=8.0).seconds))
