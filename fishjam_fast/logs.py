"""What fishjam_fast logs, and the one line per interval that sums up a fleet's outages.

Everything goes to the logger ``fishjam_fast`` (children: ``fishjam_fast.local``), which
has a :class:`logging.NullHandler`, as a library's should: an application that
configured no logging sees nothing (no "last resort" lines on stderr); one that did sees
what its configuration lets through.

Per session, every drop, attempt, recovery and give-up is logged at DEBUG (``agent
<id>: ...``). At WARNING and INFO a process logs at most one line per
:data:`REPORT_INTERVAL` seconds for all its sessions together, and only for an interval
in which something happened::

    fishjam_fast: in the last 1 s 200 sessions lost their connection (code 1006: 200);
    200 reconnecting now

WARNING when sessions dropped, gave up or had a first connection attempt fail in the
interval, INFO when they only recovered. A fleet-wide outage of 200 agents is then a
handful of lines, not 400. The report keeps counters, never lists: its memory does not
grow with the number of sessions or events.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections import Counter

__all__ = ["REPORT_INTERVAL", "logger"]

logger = logging.getLogger("fishjam_fast")
logger.addHandler(logging.NullHandler())

REPORT_INTERVAL: float = 1.0
"""Seconds between two aggregated outage lines of a process (at most one per interval,
none for a quiet one). Set it before the outages it should apply to, e.g.
``fishjam_fast.logs.REPORT_INTERVAL = 10.0``."""

MAX_CAUSES = 8
"""Distinct causes counted per interval; further ones are counted as ``other``."""


class OutageReport:
    """Counts session transitions and logs them as one line per :data:`REPORT_INTERVAL`.

    Thread-safe (sessions may run on several event loops). A line is due
    ``REPORT_INTERVAL`` seconds after the first event of a quiet period, on the event
    loop that saw that event; if that loop stopped first, the next event (or the
    interpreter's exit) writes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reconnecting = 0  # sessions in "reconnecting" now
        self._lost = 0  # connections lost (outages begun) in this interval
        self._causes: Counter[str] = Counter()  # ... by cause, at most MAX_CAUSES keys
        self._recovered = 0
        self._gave_up = 0
        self._give_up_causes: Counter[str] = Counter()
        self._connect_failures = 0  # failed first-connection attempts, to be retried
        self._since = time.monotonic()  # the first event of this interval
        self._due: float | None = None  # monotonic time of the scheduled line

    @staticmethod
    def _count(counter: Counter[str], cause: str) -> None:
        if cause in counter or len(counter) < MAX_CAUSES:
            counter[cause] += 1
        else:
            counter["other"] += 1

    def lost(self, cause: str) -> None:
        """A session's connection was lost and it starts reconnecting."""
        with self._lock:
            self._reconnecting += 1
            self._lost += 1
            self._count(self._causes, cause)
        self._schedule()

    def recovered(self) -> None:
        """A reconnecting session is connected again."""
        with self._lock:
            self._reconnecting -= 1
            self._recovered += 1
        self._schedule()

    def gave_up(self, cause: str) -> None:
        """A reconnecting session ended without reconnecting (``cause``: why)."""
        with self._lock:
            self._reconnecting -= 1
            self._gave_up += 1
            self._count(self._give_up_causes, cause)
        self._schedule()

    def left(self) -> None:
        """A reconnecting session was closed by the application (not counted)."""
        with self._lock:
            self._reconnecting -= 1

    def connect_failed(self) -> None:
        """A first connection attempt failed and will be retried."""
        with self._lock:
            self._connect_failures += 1
        self._schedule()

    def _schedule(self) -> None:
        now = time.monotonic()
        interval = REPORT_INTERVAL
        with self._lock:
            # a line already due, on a loop that is still running (else it is stale)
            if self._due is not None and now <= self._due + interval:
                return
            if self._due is None:
                self._since = now  # the first event after a quiet period
            self._due = now + interval
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - sessions run on a loop
            self.flush()
            return
        loop.call_later(interval, self.flush)

    def flush(self) -> None:
        """Logs the line for the events counted so far, if any, and starts a new interval."""
        with self._lock:
            self._due = None
            now = time.monotonic()
            elapsed = now - self._since
            lost, recovered, gave_up = self._lost, self._recovered, self._gave_up
            failures = self._connect_failures
            if not (lost or recovered or gave_up or failures):
                return
            causes, give_up_causes = self._causes, self._give_up_causes
            reconnecting = self._reconnecting
            self._lost = self._recovered = self._gave_up = self._connect_failures = 0
            self._causes, self._give_up_causes = Counter(), Counter()
        parts = []  # what happened, the kinds that did only
        if lost:
            parts.append(f"{_sessions(lost)} lost their connection{_listed(causes)}")
        if recovered:
            parts.append(f"{_sessions(recovered)} recovered")
        if gave_up:
            parts.append(f"{_sessions(gave_up)} gave up reconnecting{_listed(give_up_causes)}")
        if failures:
            parts.append(f"{failures} first connection attempts failed (retrying)")
        level = logging.WARNING if lost or gave_up or failures else logging.INFO
        logger.log(
            level,
            "fishjam_fast: in the last %.3g s %s; %s reconnecting now",
            elapsed,
            ", ".join(parts),
            reconnecting,
        )


def _sessions(n: int) -> str:
    return f"{n} session" if n == 1 else f"{n} sessions"


def _listed(counter: Counter[str]) -> str:
    if not counter:
        return ""
    return " (" + ", ".join(f"{cause}: {n}" for cause, n in counter.most_common()) + ")"


report = OutageReport()
"""The process's report (the sessions' lifecycle feeds it)."""

atexit.register(report.flush)  # the last interval's line, if its loop is gone
