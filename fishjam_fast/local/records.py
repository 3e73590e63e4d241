"""What the local server records about agents: per-track recordings and per-connection logs.

Tests read these objects directly (they are the server's live state, mutated on the
server's event loop), so read them from that loop or after the server stopped.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fishjam_fast._proto import agent_pb2

#: ``AddTrack.CodecParameters.encoding`` values (``TrackEncoding`` in the proto).
ENCODING_UNSPECIFIED = 0
ENCODING_PCM16 = 1
ENCODING_OPUS = 2

#: The rate a PCM16 track plays at when its add_track leaves ``sample_rate`` at 0 (the
#: plain SDK's default rate).
DEFAULT_SAMPLE_RATE = 16000
#: Arrivals remembered per track (:attr:`TrackRecording.arrivals`, only while chunks
#: are recorded): 5 minutes of 20 ms chunks. Older ones are forgotten;
#: :attr:`TrackRecording.max_held_seconds` still covers them.
ARRIVAL_WINDOW = 15_000
#: Round trips kept per connection as a uniform sample (:class:`LatencySample`).
LATENCY_SAMPLE_SIZE = 1024


class Arrival(NamedTuple):
    """One track_data chunk as the server's playout queue received it."""

    #: ``time.monotonic()`` on arrival (CLOCK_MONOTONIC on Linux: the same clock in
    #: every process of the machine, so a client in another process can compare).
    at: float
    #: Payload bytes.
    nbytes: int
    #: Seconds of audio held (queued, not yet played) just after this chunk was
    #: queued: how far ahead of real time the sender was at that moment.
    held: float


class AuthAttempt(NamedTuple):
    """One ``auth_request`` the agent socket answered."""

    #: ``time.monotonic()`` when the request arrived.
    at: float
    #: The token it carried.
    token: str
    #: Whether the server answered ``authenticated``.
    accepted: bool
    #: The close reason when refused (``"invalid token"``...), ``""`` when accepted.
    reason: str
    #: The peer the token belongs to (``None`` for a token the server never issued).
    peer_id: str | None


class TrackEvent(NamedTuple):
    """A track's add, removal or first data on one connection (see
    :attr:`ConnectionRecord.track_log`)."""

    #: Position of the request on its connection (0 is the auth_request).
    position: int
    #: ``"add_track"``, ``"track_data"`` (the first one for this track on this
    #: connection) or ``"remove_track"``.
    kind: str
    #: The track id.
    track_id: str


class LatencySample:
    """Bounded statistics of a stream of latencies: exact count, mean, min and max,
    and a uniform random sample of at most ``capacity`` values (reservoir sampling,
    Vitter's algorithm R) for percentiles. Memory stays fixed however long it runs.
    """

    def __init__(self, capacity: int = LATENCY_SAMPLE_SIZE, seed: int = 0) -> None:
        """Args: capacity: Values kept in :attr:`samples`. seed: Seeds the sampling."""
        self.capacity = capacity
        #: How many values were added.
        self.count = 0
        #: Their sum.
        self.total = 0.0
        #: The smallest (``inf`` while empty).
        self.min = float("inf")
        #: The largest (``-inf`` while empty).
        self.max = float("-inf")
        #: The sample: every value while ``count <= capacity``, then a uniform subset.
        self.samples: list[float] = []
        self._random = random.Random(seed)

    def add(self, value: float) -> None:
        """Count ``value``, keeping it in the sample with probability ``capacity/count``."""
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if len(self.samples) < self.capacity:
            self.samples.append(value)
            return
        slot = self._random.randrange(self.count)
        if slot < self.capacity:
            self.samples[slot] = value

    @property
    def mean(self) -> float:
        """The mean of every value added (``nan`` while empty)."""
        return self.total / self.count if self.count else float("nan")


@dataclass
class TrackRecording:
    """Everything an agent sent on one of its tracks, plus the server's playout of it.

    Playout model (Fishjam plays an agent track's audio in real time from its arrival):

    - PCM16 (encoding UNSPECIFIED or PCM16): a chunk of ``n`` bytes is
      ``n / (2 * channels * sample_rate)`` seconds of audio (a rate or channel count
      left at 0 counts as 16000 Hz or 1 channel). It is queued behind what is
      already queued and played in real time: while the queue is not empty, the
      playhead advances by ``2 * channels * sample_rate`` bytes per second (whole
      frames); when the queue runs dry, playout pauses and the next chunk starts
      playing on arrival (silence is not made up for later).
    - ``interrupt_track`` drops what is queued and not yet played; ``remove_track`` and
      the end of the connection (a drop, a close, a server restart) drop it too.
    - OPUS: the local server does not decode Opus, so it cannot know a packet's
      duration: chunks count as played on arrival (``bytes_played``), nothing is ever
      held (``held_seconds`` is 0) and ``played_seconds`` stays 0.

    The playhead is a clock evaluated lazily on every access, so no task runs per track:
    :meth:`playout` and the ``*_seconds`` properties are exact at the instant they are
    called.
    """

    #: Track id chosen by the agent.
    track_id: str
    #: Id of the agent peer that added it.
    peer_id: str
    #: Index of the connection (in :attr:`AgentRecord.connections`) that added it.
    connection_index: int
    #: ``TrackType`` number from add_track (2 = AUDIO).
    type: int
    #: Metadata JSON text exactly as sent.
    metadata: str
    #: ``TrackEncoding`` number (0 UNSPECIFIED means PCM16).
    encoding: int
    #: Sample rate from the codec parameters.
    sample_rate: int
    #: Channel count from the codec parameters.
    channels: int
    #: Whether chunk bodies are kept (else only counts and sizes).
    keep_chunks: bool = True
    #: The connection that added it.
    connection: ConnectionRecord | None = field(default=None, repr=False, compare=False)
    #: The chunk bodies in arrival order (empty when ``keep_chunks`` is off).
    chunks: list[bytes] = field(default_factory=list)
    #: Number of track_data messages received.
    chunk_count: int = 0
    #: Total payload bytes received.
    total_bytes: int = 0
    #: ``time.monotonic()`` of each interrupt_track.
    interrupts: list[float] = field(default_factory=list)
    #: Set once remove_track arrived.
    removed: bool = False
    #: Set once the track ended (removed, or its connection closed).
    ended: bool = False
    #: Audio actually played, in order (kept only with ``keep_chunks``).
    played_audio: bytearray = field(default_factory=bytearray)
    #: The latest arrivals, oldest first (at most :data:`ARRIVAL_WINDOW`; empty when
    #: ``keep_chunks`` is off).
    arrivals: deque[Arrival] = field(default_factory=lambda: deque(maxlen=ARRIVAL_WINDOW))
    #: The most audio held at once, in seconds, over the track's whole life (the
    #: largest :attr:`Arrival.held`): how far ahead of real time the sender ever got.
    max_held_seconds: float = 0.0
    _played: int = 0
    _dropped: int = 0
    _queued: int = 0
    _clock: float = 0.0
    _pending: deque[memoryview] = field(default_factory=deque)

    @property
    def metadata_json(self) -> Any:
        """The metadata parsed as JSON (``None`` for the text ``null``)."""
        import json

        return json.loads(self.metadata) if self.metadata else None

    @property
    def paced(self) -> bool:
        """Whether playout is paced in real time (PCM16 tracks)."""
        return self.encoding in (ENCODING_UNSPECIFIED, ENCODING_PCM16)

    @property
    def bytes_per_second(self) -> int:
        """Playout speed: ``sample_rate * channels * 2`` (codec parameters left at 0
        count as the defaults, 16000 Hz and 1 channel)."""
        return (self.sample_rate or DEFAULT_SAMPLE_RATE) * (self.channels or 1) * 2

    @property
    def interrupt_count(self) -> int:
        """How many interrupt_track messages arrived."""
        return len(self.interrupts)

    @property
    def bytes_played(self) -> int:
        """Bytes played so far."""
        self._advance()
        return self._played

    @property
    def bytes_dropped(self) -> int:
        """Bytes dropped by interrupts, removal or disconnect."""
        self._advance()
        return self._dropped

    @property
    def bytes_queued(self) -> int:
        """Bytes received and neither played nor dropped yet."""
        self._advance()
        return self._queued

    def seconds_until_played(self) -> float:
        """How long until the queue is played out (0 when it is empty)."""
        return self.held_seconds

    @property
    def played_seconds(self) -> float:
        """Seconds of audio played so far (0 for OPUS, whose durations are unknown here)."""
        return self.playout()[0]

    @property
    def held_seconds(self) -> float:
        """Seconds of audio queued and not yet played (always 0 for OPUS)."""
        return self.playout()[1]

    def playout(self) -> tuple[float, float]:
        """What the server has played and still holds, at this instant, in seconds.

        Returns:
            ``(played_s, held_s)``, both from the same reading of the clock.
        """
        self._advance()
        if not self.paced:
            return 0.0, 0.0
        return self._played / self.bytes_per_second, self._queued / self.bytes_per_second

    def _advance(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._queued == 0 or self.ended:
            self._clock = now
            return
        frame = 2 * (self.channels or 1)
        can = int((now - self._clock) * self.bytes_per_second) // frame * frame
        n = min(self._queued, can)
        if n <= 0:
            return
        self._played += n
        self._queued -= n
        # move the clock by exactly the audio played, so no time is lost to rounding
        self._clock = now if self._queued == 0 else self._clock + n / self.bytes_per_second
        if self.keep_chunks:
            self._take_pending(n, keep=True)

    def _take_pending(self, n: int, keep: bool) -> None:
        while n > 0 and self._pending:
            head = self._pending[0]
            part = head[:n]
            if keep:
                self.played_audio += part
            n -= len(part)
            if len(part) == len(head):
                self._pending.popleft()
            else:
                self._pending[0] = head[len(part) :]

    def _on_data(self, data: bytes) -> None:
        now = time.monotonic()
        self._advance(now)
        self.chunk_count += 1
        self.total_bytes += len(data)
        if self.keep_chunks:
            self.chunks.append(data)
        if self.ended:
            self._dropped += len(data)
            return
        if not self.paced:
            self._played += len(data)
            if self.keep_chunks:
                self.played_audio += data
            if self.keep_chunks:
                self.arrivals.append(Arrival(now, len(data), 0.0))
            return
        if self._queued == 0:
            self._clock = now
        self._queued += len(data)
        if self.keep_chunks:
            self._pending.append(memoryview(data))
        held = self._queued / self.bytes_per_second
        if self.keep_chunks:
            self.arrivals.append(Arrival(now, len(data), held))
        self.max_held_seconds = max(self.max_held_seconds, held)

    def _drop_queued(self) -> None:
        self._advance()
        self._dropped += self._queued
        if self.keep_chunks:
            self._take_pending(self._queued, keep=False)
        self._queued = 0

    def _on_interrupt(self) -> None:
        self.interrupts.append(time.monotonic())
        self._drop_queued()

    def _end(self, removed: bool) -> None:
        self._drop_queued()
        self.removed = self.removed or removed
        self.ended = True


@dataclass
class ConnectionRecord:
    """One agent WebSocket connection, authenticated or not."""

    #: Peer id the connection authenticated as (``None`` if it never did).
    peer_id: str | None
    #: ``time.monotonic()`` when the socket opened.
    opened_at: float
    #: Every decoded AgentRequest in arrival order (with the auth_request).
    requests: list[agent_pb2.AgentRequest] = field(default_factory=list)
    #: Whether every decoded request is kept in :attr:`requests` (else only counted).
    keep_requests: bool = True
    #: Number of decoded requests.
    request_count: int = 0
    #: Whether authentication succeeded.
    authenticated: bool = False
    #: Close code the server sent (``None`` if the client closed first or it was aborted).
    close_code: int | None = None
    #: Close reason the server sent.
    close_reason: str | None = None
    #: ``time.monotonic()`` when the handler ended (``None`` while open).
    closed_at: float | None = None
    #: Number of capture_image requests answered with an image.
    images_sent: int = 0
    #: Number of track_data messages the server sent to this connection.
    track_data_sent: int = 0
    #: The token of its auth_request (``None`` before one arrived).
    token: str | None = None
    #: Each track's add_track, remove_track and first track_data on this connection,
    #: in arrival order (kept whatever ``keep_requests`` says): a reconnecting agent
    #: must re-add a track before sending data on it.
    track_log: list[TrackEvent] = field(default_factory=list)
    #: track_data messages for a track not added (or already removed) on this
    #: connection; the server ignores them (or counts them as dropped).
    data_without_track: int = 0
    #: Round trips, in seconds: a speaking peer's chunk sent to this agent until the
    #: same bytes came back on one of its tracks (an echoing agent's latency). Bounded:
    #: exact count/mean/min/max and a uniform sample for percentiles.
    echo: LatencySample = field(default_factory=LatencySample)

    @property
    def echo_latencies(self) -> list[float]:
        """The sample of round trips (every one while there are at most
        :data:`LATENCY_SAMPLE_SIZE`; see :attr:`echo` for exact aggregates)."""
        return list(self.echo.samples)

    def kinds(self) -> list[str]:
        """The oneof member names of :attr:`requests`, in order (e.g. ``"track_data"``)."""
        return [r.WhichOneof("content") or "" for r in self.requests]


@dataclass
class AgentRecord:
    """An agent peer as the server sees it: its connections and its tracks."""

    #: The agent's peer id.
    peer_id: str
    #: Room it belongs to.
    room_id: str
    #: All connections that authenticated as this agent, oldest first.
    connections: list[ConnectionRecord] = field(default_factory=list)
    #: Tracks by id, over all connections, in order of their first add_track. A track
    #: re-added with the same id after a reconnect (or after its removal) replaces the
    #: ended recording here: this is always the latest one.
    tracks: dict[str, TrackRecording] = field(default_factory=dict)
    #: Every track recording, replaced ones included, in order of add_track.
    track_history: list[TrackRecording] = field(default_factory=list)
    #: Every auth_request carrying one of this agent's tokens, accepted or refused,
    #: oldest first (count reconnection attempts, check which token each one used).
    auth_attempts: list[AuthAttempt] = field(default_factory=list)

    @property
    def requests(self) -> list[agent_pb2.AgentRequest]:
        """Decoded requests of all connections, in order."""
        return [r for c in self.connections for r in c.requests]

    def track(self, index: int = 0) -> TrackRecording:
        """The ``index``-th track the agent added (in order of add_track).

        Args:
            index: Position; negative counts from the end.

        Returns:
            The track recording.

        Raises:
            IndexError: If the agent has not added that many tracks.
        """
        return list(self.tracks.values())[index]

    def recordings(self, track_id: str) -> list[TrackRecording]:
        """Every recording of the track ``track_id`` (one per add_track), oldest first."""
        return [t for t in self.track_history if t.track_id == track_id]
