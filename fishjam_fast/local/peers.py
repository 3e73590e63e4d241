"""Simulated peers: a speaking peer's audio track and a video peer's camera track.

A speaking peer sends its audio to every connected agent in its room as
``AgentResponse{track_data{peer_id, track{id, AUDIO, metadata}, data}}``, PCM16 mono at
each agent's output rate, in 20 ms chunks (640 bytes at 16 kHz). Chunk ``i`` of the
stream is the same instant for every agent; an agent that connects mid-stream joins at
the current chunk. Paced mode sends chunk ``i`` at ``start + i * 20 ms``; fast mode sends
as fast as the sockets drain. An agent in ``manual`` subscribe mode gets the stream
only once subscribed to the speaker or its track. While it plays, the speaker's voice
activity is notified (SPEECH / SILENCE, :mod:`fishjam_fast.local.vad`). A video peer
sends nothing by itself; it answers ``capture_image`` with a PNG.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fishjam_fast._proto import agent_pb2, notifications_pb2

from .images import make_png
from .signals import CHUNK_SECONDS, AudioSource, Samples
from .state import Peer, Room
from .vad import VoiceActivity, loud_chunks

if TYPE_CHECKING:
    from .notifications import NotificationHub


@dataclass
class SimulatedTrack:
    """A track of a simulated peer."""

    #: Track id.
    id: str
    #: ``"audio"`` or ``"video"``.
    type: str
    #: Track metadata (a JSON object or None).
    metadata: Any = None
    #: The image a video track answers capture_image with.
    image: bytes = b""
    #: Its content type.
    content_type: str = "image/png"

    def to_json(self) -> dict[str, Any]:
        """The ``Track`` object of the REST API."""
        return {"id": self.id, "type": self.type, "metadata": self.metadata}

    def proto(self) -> notifications_pb2.Track:
        """The track as it travels in ``AgentResponse.TrackData``."""
        kind = notifications_pb2.TRACK_TYPE_AUDIO
        if self.type == "video":
            kind = notifications_pb2.TRACK_TYPE_VIDEO
        return notifications_pb2.Track(id=self.id, type=kind, metadata=json.dumps(self.metadata))


@dataclass
class SpeakingPeer:
    """Handle of a simulated peer that speaks; returned by ``LocalFishjam.add_speaking_peer``.

    The counters are live: ``chunks_sent`` counts stream positions (chunk indices)
    played, ``frames_delivered`` counts messages actually sent to agents.
    """

    #: The peer (a simulated WebRTC peer).
    peer: Peer
    #: Its audio track.
    track: SimulatedTrack
    #: What it says.
    source: AudioSource
    #: Pace in real time (20 ms per chunk) or as fast as possible.
    realtime: bool = True
    #: Start again at the end of the source.
    loop: bool = False
    #: Stop after this many chunks (None: at the end of the source, or never if looping).
    chunks: int | None = None
    #: Stream positions played so far.
    chunks_sent: int = 0
    #: track_data messages sent to agents so far.
    frames_delivered: int = 0
    #: Set when the stream ended (source exhausted, count reached, stopped).
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: The speaking loop (None before it started); the server owns and cancels it.
    task: asyncio.Task[None] | None = None

    @property
    def peer_id(self) -> str:
        """The peer's id."""
        return self.peer.id

    @property
    def track_id(self) -> str:
        """The audio track's id."""
        return self.track.id

    def stop(self) -> None:
        """Stop speaking (the peer stays in the room)."""
        if self.task is not None:
            self.task.cancel()
        self.done.set()

    async def wait_done(self, timeout: float) -> None:
        """Wait until the stream ended.

        Args:
            timeout: Seconds.

        Raises:
            TimeoutError: If it did not end in time.
        """
        await asyncio.wait_for(self.done.wait(), timeout)


def chunks_of(samples: Samples, sample_rate: int, wrap: bool) -> list[bytes]:
    """One pass of ``samples`` cut into 20 ms chunks of little-endian PCM16 bytes.

    Args:
        samples: Mono int16 samples at ``sample_rate``.
        sample_rate: Samples per second.
        wrap: Fill the last chunk from the start of ``samples`` (looping streams);
            otherwise pad it with silence. Every chunk is exactly 20 ms either way.

    Returns:
        Owned byte strings, ``ceil(len(samples) / samples_per_chunk)`` of them.
    """
    n = round(sample_rate * CHUNK_SECONDS)
    count = -(-len(samples) // n)
    padded = np.zeros(count * n, dtype="<i2")
    padded[: len(samples)] = samples
    if wrap and len(samples) < count * n:
        padded[len(samples) :] = np.resize(samples, count * n - len(samples))
    raw = padded.tobytes()
    return [raw[i * 2 * n : (i + 1) * 2 * n] for i in range(count)]


async def speak(
    speaker: SpeakingPeer,
    room: Room,
    is_running: Callable[[], bool],
    hub: NotificationHub | None = None,
) -> None:
    """The speaking loop: deliver the stream to the room's connected agents.

    Args:
        speaker: The speaking peer.
        room: Its room (agents are looked up on every chunk).
        is_running: Returns False once the server stops (ends the loop).
        hub: Where the track's voice activity is notified (None: not notified).
    """
    loop = asyncio.get_running_loop()
    passes: dict[int, list[bytes]] = {}

    def pass_at(rate: int) -> list[bytes]:
        chunks = passes.get(rate)
        if chunks is None:
            chunks = passes[rate] = chunks_of(speaker.source.render(rate), rate, speaker.loop)
        return chunks

    # one pass at 16 kHz fixes the stream length for every rate (the same duration)
    one_pass = len(pass_at(16000))
    limit = speaker.chunks
    if limit is None and not speaker.loop:
        limit = one_pass
    track_proto = speaker.track.proto()
    vad = VoiceActivity()
    loudness = loud_chunks(pass_at(16000), vad.threshold_dbfs) if hub is not None else []
    peer_id, track_id = speaker.peer.id, speaker.track.id
    start = loop.time()
    index = 0
    try:
        while is_running() and (limit is None or index < limit):
            if speaker.realtime:
                delay = start + index * CHUNK_SECONDS - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if hub is not None and loudness:
                change = vad.update_loud(loudness[index % len(loudness)])
                if change is not None:
                    hub.vad(speaker.peer, room, track_id, change)
            agents = [
                p.connection
                for p in room.peers.values()
                if p.connection is not None and p.hears(peer_id, track_id)
            ]
            frames: dict[int, tuple[bytes, bytes]] = {}
            for conn in agents:
                rate = conn.peer.output_sample_rate
                framed = frames.get(rate)
                if framed is None:
                    chunks = pass_at(rate)
                    chunk = chunks[index % len(chunks)]
                    msg = agent_pb2.AgentResponse(
                        track_data=agent_pb2.AgentResponse.TrackData(
                            peer_id=speaker.peer.id,
                            track=track_proto,
                            data=chunk,
                        )
                    )
                    framed = frames[rate] = (chunk, msg.SerializeToString())
                chunk, frame = framed
                conn.note_sent_chunk(chunk, time.monotonic())
                if await conn.send(frame):
                    conn.record.track_data_sent += 1
                    speaker.frames_delivered += 1
            index += 1
            speaker.chunks_sent = index
            if not speaker.realtime and not agents:
                await asyncio.sleep(0)  # fast mode with nobody listening: stay fair
    finally:
        if speaker.task in (None, asyncio.current_task()):  # not a stream replaced since
            if hub is not None and vad.end() is not None:
                hub.vad(speaker.peer, room, track_id, False)
            speaker.done.set()


def video_track(
    track_id: str,
    width: int,
    height: int,
    seed: int,
    image: bytes | None,
    content_type: str,
    metadata: Any,
) -> SimulatedTrack:
    """A simulated camera track answering capture_image with ``image`` or a generated PNG.

    Args:
        track_id: Track id.
        width: Generated PNG width.
        height: Generated PNG height.
        seed: Varies the generated PNG.
        image: Image bytes to use instead (JPEG or PNG).
        content_type: Content type of ``image``.
        metadata: Track metadata.

    Returns:
        The track.
    """
    return SimulatedTrack(
        id=track_id,
        type="video",
        metadata=metadata,
        image=image if image is not None else make_png(width, height, seed),
        content_type=content_type if image is not None else "image/png",
    )


@dataclass
class Person:
    """A simulated WebRTC person in a room; returned by ``LocalFishjam.join_person``.

    It is connected from the start and publishes one audio track; when it was given
    audio it speaks it (:attr:`speaker`), else its track stays silent.
    """

    #: The peer (a simulated WebRTC peer).
    peer: Peer
    #: Its audio track.
    track: SimulatedTrack
    #: Its speaking stream, when it was given audio.
    speaker: SpeakingPeer | None = None

    @property
    def peer_id(self) -> str:
        """The peer's id."""
        return self.peer.id

    @property
    def track_id(self) -> str:
        """The audio track's id."""
        return self.track.id

    async def wait_done(self, timeout: float) -> None:
        """Wait until the person finished speaking (at once for a silent person).

        Args:
            timeout: Seconds.

        Raises:
            TimeoutError: If it is still speaking after ``timeout``.
        """
        if self.speaker is not None:
            await self.speaker.wait_done(timeout)
