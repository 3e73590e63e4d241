# cython: annotation_typing=False
"""The session's read lock: who reads the connection next.

One source for both builds (Cython's pure-Python mode, as ``playout``): setup.py
compiles this file with the augmenting ``locks.pxd`` into ``fishjam_fast._core.locks``,
whose cdef class the session's native receive loop takes and releases by C calls.
Keep it to what Cython compiles (only the declared attributes).
"""

from __future__ import annotations

import asyncio
from collections import deque


class ReadLock:
    """asyncio.Lock's semantics (FIFO, no barging past waiters), plus a synchronous
    :meth:`try_acquire`: ``receive()`` takes it for every message, and ``async with
    asyncio.Lock()`` costs two coroutines each time."""

    __slots__ = ("_locked", "_waiters")

    def __init__(self) -> None:
        self._locked = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        """Takes the lock if it is free and nobody waits for it; False otherwise."""
        if self._locked or self._waiters:
            return False
        self._locked = True
        return True

    async def acquire(self) -> bool:
        if self.try_acquire():
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        except asyncio.CancelledError:
            if not self._locked:
                self._wake_up_first()
            raise
        self._locked = True
        return True

    def release(self) -> None:
        if not self._locked:
            raise RuntimeError("the read lock is not held")
        self._locked = False
        self._wake_up_first()

    def _wake_up_first(self) -> None:
        if self._waiters:
            waiter = self._waiters[0]
            if not waiter.done():
                waiter.set_result(None)
