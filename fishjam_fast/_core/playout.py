"""The client's model of how Fishjam plays an agent track: a playout clock.

Fishjam plays a PCM16 agent track in real time: a chunk that arrives while the track is
idle starts playing at once, one that arrives while audio is queued plays after it, and
an interrupt drops whatever is queued (wire-protocol.md; ``fishjam_fast.local`` models
the same). So one number describes the whole queue: the moment the last audio sent ends
playing. Sending moves it forward by the chunk's duration (from now, when idle); an
interrupt brings it back to now. Everything here is O(1) arithmetic on that number:
no task, timer or per-chunk record.

Pure logic: every method takes ``now`` (seconds of ``time.monotonic()``), so tests can
drive the clock with made-up times.

One source for both builds (Cython's pure-Python mode, as aiohttp compiles ``reader_c``
from ``reader_py.py``): setup.py compiles this file, with the augmenting
``playout.pxd`` beside it, into the extension module ``fishjam_fast._core.playout``, which
Python imports in place of this file; there the class is a cdef class with C fields that
the session's send path and audio windows move directly. Without a compiler this file
runs as it is. Keep it to what Cython compiles (no decorators on the methods, no
attributes beyond the declared three).
"""

from __future__ import annotations

__all__ = ["PlayoutClock"]

# A nanosecond: sums of chunk durations (0.02 * 25) are not exactly the limit (0.5) in
# floating point; a queue this close to the limit counts as within it.
_EPSILON = 1e-9


class PlayoutClock:
    """When the audio sent on one track finishes playing, as Fishjam plays it.

    Attributes:
        ends_at: ``time.monotonic()`` at which everything sent so far has played; at or
            before now when the track is idle.
        sent_seconds: Seconds of audio recorded by :meth:`add` since creation.
        dropped_seconds: Seconds of queued audio dropped by :meth:`clear`.
    """

    __slots__ = ("dropped_seconds", "ends_at", "sent_seconds")

    def __init__(self) -> None:
        self.ends_at = 0.0
        self.sent_seconds = 0.0
        self.dropped_seconds = 0.0

    def __repr__(self) -> str:
        return (
            f"PlayoutClock(ends_at={self.ends_at!r}, sent_seconds={self.sent_seconds!r}, "
            f"dropped_seconds={self.dropped_seconds!r})"
        )

    def queued(self, now: float) -> float:
        """Seconds of audio sent and not yet played at ``now`` (0.0 when idle)."""
        left = self.ends_at - now
        return left if left > 0.0 else 0.0

    def add(self, seconds: float, now: float) -> None:
        """Records ``seconds`` of audio sent at ``now``: it plays after what is queued."""
        ends_at = self.ends_at
        self.ends_at = (ends_at if ends_at > now else now) + seconds
        self.sent_seconds += seconds

    def clear(self, now: float) -> float:
        """Drops what is queued (an interrupt); returns the seconds dropped."""
        dropped = self.queued(now)
        if self.ends_at > now:
            self.ends_at = now
        self.dropped_seconds += dropped
        return dropped

    def wait_before(self, seconds: float, limit: float, now: float) -> float:
        """How long to wait before ``seconds`` more audio may be sent under ``limit``.

        Sending may go ahead (0.0) when the queue plus ``seconds`` stays within
        ``limit``. A piece longer than ``limit`` on its own may go ahead once the queue
        is empty, else it could never be sent.

        Args:
            seconds: Duration of the audio about to be sent.
            limit: The most audio the queue may hold (``max_queued``).
            now: The current time.

        Returns:
            Seconds until there is room; 0.0 when there is room now.
        """
        queued = self.queued(now)
        over = queued + seconds - limit
        if over <= _EPSILON or queued == 0.0:
            return 0.0
        return min(over, queued)

    def refill_wait(self, seconds: float, limit: float, now: float) -> float:
        """How long a blocked sender sleeps: until a quarter of ``limit`` is free too.

        A sender that found the queue full wakes once for several chunks rather than
        once per chunk (a timer per chunk is what pacing must not cost): it sleeps until
        the queue has room for ``seconds`` plus ``limit / 4`` more (or is empty), so a
        queue kept full swings between about three quarters of ``limit`` and ``limit``.

        Returns:
            Seconds to sleep; 0.0 when there is room now.
        """
        if self.wait_before(seconds, limit, now) == 0.0:
            return 0.0
        return self.wait_before(seconds + 0.25 * limit, limit, now)
