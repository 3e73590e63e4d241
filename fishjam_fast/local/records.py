"""What the local server records about agents: per-track recordings and per-connection logs.

Tests read these objects directly (they are the server's live state, mutated on the
server's event loop), so read them from that loop or after the server stopped.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fishjam_fast._proto import agent_pb2

#: ``AddTrack.CodecParameters.encoding`` values (``TrackEncoding`` in the proto).
ENCODING_UNSPECIFIED = 0
ENCODING_PCM16 = 1
ENCODING_OPUS = 2


@dataclass
class TrackRecording:
    """Everything an agent sent on one of its tracks, plus the server's playout of it.

    Playout model: PCM16 audio (encoding UNSPECIFIED or PCM16) is queued and played in
    real time at ``sample_rate * channels * 2`` bytes per second from the moment it is
    queued behind what was already queued; an interrupt drops what is queued and not
    yet played; ``remove_track`` (or the agent's disconnect) drops it too. OPUS chunks
    are not paced: they count as played on arrival. The playhead is a clock, evaluated
    lazily on every access, so no task runs per track.
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
        """Playout speed: ``sample_rate * channels * 2``."""
        return max(1, self.sample_rate) * max(1, self.channels) * 2

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
        self._advance()
        return self._queued / self.bytes_per_second if self.paced else 0.0

    def _advance(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._queued == 0 or self.ended:
            self._clock = now
            return
        frame = 2 * max(1, self.channels)
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
            return
        if self._queued == 0:
            self._clock = now
        self._queued += len(data)
        if self.keep_chunks:
            self._pending.append(memoryview(data))

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
    #: Round trips, in seconds: a speaking peer's chunk sent to this agent until the
    #: same bytes came back on one of its tracks (an echoing agent's latency).
    echo_latencies: list[float] = field(default_factory=list)

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
    #: Tracks by id, over all connections.
    tracks: dict[str, TrackRecording] = field(default_factory=dict)

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
