# cython: annotation_typing=False
"""The receive queue of a connection: whole messages read and not yet taken by
``receive()``, bounded by their count and their bytes; one class for both transports.

A message is handed straight to a reader waiting for it (``recv()``'s future) or
queued with its frame size. The transport asks whether the queue is at or past its
bound (then it stops reading) and whether it has drained to a quarter of both bounds
(then it reads again); what reading means, and what ending means, stay the transport's.

One source for both builds (Cython's pure-Python mode, like ``fishjam_fast._core.playout``):
setup.py compiles this file with the augmenting ``_queue.pxd`` beside it into the
extension module ``fishjam_fast.transport._queue``, which the picows transport's
compiled per-frame listener cimports (a C call per message); the websockets transport
imports the same class, compiled where the extension is built, this file where not.
Keep it to what Cython compiles (no decorators on the methods, only the declared
attributes).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any

__all__ = ["BoundedQueue"]


class BoundedQueue:
    """Whole messages a connection read that ``receive()`` has not taken yet.

    Attributes:
        max_queue: Messages at which the transport stops reading (``max_queue``).
        max_bytes: Frame bytes of queued messages at which it stops reading
            (``max_queue_bytes``; 0 when made: no byte bound).
        queued_bytes: Frame bytes of the queued messages.
    """

    __slots__ = (
        "_loop",
        "_messages",
        "_reader",
        "_resume_at",
        "_resume_bytes",
        "_sizes",
        "max_bytes",
        "max_queue",
        "queued_bytes",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, max_queue: int, max_bytes: int) -> None:
        self._loop = loop
        self._messages: deque[Any] = deque()
        self._sizes: deque[int] = deque()
        self._reader: asyncio.Future[Any] | None = None  # recv()'s, while the queue is empty
        self.queued_bytes = 0
        self.max_queue = max_queue
        self.max_bytes = max_bytes if max_bytes > 0 else sys.maxsize
        # reading resumes once a quarter of both bounds is left
        self._resume_at = max(1, max_queue // 4)
        self._resume_bytes = max(1, self.max_bytes // 4)

    def __len__(self) -> int:
        return len(self._messages)

    def put(self, message: Any, size: int) -> None:
        """Hands ``message`` (a frame of ``size`` bytes) to the waiting reader, else
        queues it."""
        reader = self._reader
        if reader is not None:
            # a reader waits only while the queue is empty: no message jumps the queue
            self._reader = None
            if not reader.done():  # else its task was cancelled: queue the message
                reader.set_result(message)
                return
        self._messages.append(message)
        self._sizes.append(size)
        self.queued_bytes += size

    def take(self) -> Any:
        """The oldest queued message, or None when none is queued."""
        if not self._messages:
            return None
        self.queued_bytes -= self._sizes.popleft()
        return self._messages.popleft()

    def at_bound(self) -> bool:
        """True when ``max_queue`` messages or ``max_bytes`` bytes are queued."""
        return len(self._messages) >= self.max_queue or self.queued_bytes >= self.max_bytes

    def past_bound(self) -> bool:
        """True when more than ``max_queue`` messages or ``max_bytes`` bytes are queued."""
        return len(self._messages) > self.max_queue or self.queued_bytes > self.max_bytes

    def drained(self) -> bool:
        """True once at most a quarter of both bounds is queued (reading may resume)."""
        return len(self._messages) <= self._resume_at and self.queued_bytes <= self._resume_bytes

    def wait(self) -> asyncio.Future[Any]:
        """A future that :meth:`put` resolves with the next message (the queue is empty).

        Raises:
            RuntimeError: another reader is waiting.
        """
        if self._reader is not None and not self._reader.done():
            raise RuntimeError("another coroutine is already receiving")
        reader: asyncio.Future[Any] = self._loop.create_future()
        self._reader = reader
        return reader

    def fail_reader(self, exc: BaseException) -> None:
        """A reader waiting for a message gets ``exc`` instead (the connection ended)."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.set_exception(exc)
