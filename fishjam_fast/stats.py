"""Traffic counters of a session."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class SessionStats:
    """Traffic counters of one session.

    Attributes:
        messages_sent: Frames sent, authentication included.
        bytes_sent: Bytes of those frames (protobuf, before WebSocket framing).
        messages_received: Frames received, malformed ones included.
        bytes_received: Bytes of those frames.
        frames_skipped: Received frames that failed to decode and were skipped.
        connected_at: ``time.monotonic()`` when the session was authenticated (the
            latest authentication: a reconnection sets it again).
        closed_at: ``time.monotonic()`` when the session ended, or None.
        reconnects: Times the session reconnected after an abnormal end (successful
            reconnections, one per outage).
        reconnect_attempts: Connection attempts made while reconnecting, the
            successful ones included.
        connect_attempts: Attempts :meth:`Agent.connect` made, the successful one
            included: 1, unless ``ReconnectPolicy(retry_connect=True)`` retried.
        audio_lost_seconds: Seconds of audio the server held for this session's
            tracks (by their playout clocks) when a connection ended abnormally: the
            server drops it with the connection. Summed over all drops.
        bytes_unsent: Bytes counted in ``bytes_sent`` that the server never got:
            written to connections that ended abnormally before sending them (the
            write buffer and the kernel's send queue), or that ``disconnect()``
            could not send within ``close_timeout``.
    """

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    frames_skipped: int = 0
    connected_at: float = 0.0
    closed_at: float | None = None
    reconnects: int = 0
    reconnect_attempts: int = 0
    connect_attempts: int = 0
    audio_lost_seconds: float = 0.0
    bytes_unsent: int = 0

    @property
    def connected_seconds(self) -> float:
        """How long the session has been (or was) connected."""
        end = self.closed_at if self.closed_at is not None else time.monotonic()
        return end - self.connected_at
