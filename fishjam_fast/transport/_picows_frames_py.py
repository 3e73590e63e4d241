"""The per-frame path of the picows transport in Python: the fallback of
``fishjam_fast._picows_listener`` (``src_ext/picows_listener.pyx``), the same class line
for line. A whole, unfragmented binary frame goes to the session's dispatcher, decoded
from a view of picows' receive buffer, and what it returns for ``receive()`` is handed
to the waiting reader (or queued); anything rarer goes to the subclass's
``_on_other_frame``.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any

from picows import WSListener, WSMsgType, WSTransport

NATIVE = False

PY_SSIZE_T_MAX = sys.maxsize

_BINARY = WSMsgType.BINARY


class FrameListener(WSListener):
    def __init__(self, max_queue: int, max_size: int, max_bytes: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._messages: deque[bytes] = deque()
        self._reader: asyncio.Future[bytes] | None = None
        self._closed: Any = None
        self._fragments: bytearray | None = None
        self._reading_paused = False
        self._max_queue = max_queue
        self._max_size = max_size
        self._resume_at = max(1, max_queue // 4)
        # max_queue_bytes (0: no byte bound): reading pauses above it, resumes at a
        # quarter, as for the count; _sizes holds each queued message's frame size
        self._max_bytes = max_bytes if max_bytes > 0 else PY_SSIZE_T_MAX
        self._resume_bytes = max(1, self._max_bytes // 4)
        self._queued_bytes = 0
        self._sizes: deque[int] = deque()
        self._write_paused = False
        self._ws: WSTransport | None = None
        self._dispatcher: Any = None

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if (
            frame.msg_type == _BINARY
            and frame.fin
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and self._fragments is None
            # nothing is delivered once the connection ended: after the server's close
            # frame, after we failed it, after picows did (it sends its close, 1009 for
            # a frame over max_frame_size, yet goes on parsing what follows)
            and self._closed is None
            and not transport.is_close_frame_sent
            and frame.payload_size <= self._max_size
        ):
            dispatcher = self._dispatcher
            if dispatcher is None:  # authenticating: the agent reads the answer itself
                self.deliver(frame.get_payload_as_bytes(), frame.payload_size)
                return
            message = dispatcher.dispatch(frame.get_payload_as_memoryview())
            if message is not None:
                self.deliver(message, frame.payload_size)
        else:
            self._on_other_frame(frame)

    def deliver(self, message: Any, size: int = 0) -> None:
        """Hands a whole message (a frame of ``size`` bytes) to the waiting reader, else
        queues it (pausing reading above max_queue messages or max_queue_bytes)."""
        reader = self._reader
        if reader is not None:
            # a reader waits only while the queue is empty: no message jumps the queue
            self._reader = None
            if not reader.done():  # else its task was cancelled: queue the message
                reader.set_result(message)
                return
        self._messages.append(message)
        self._sizes.append(size)
        self._queued_bytes += size
        if (
            len(self._messages) > self._max_queue or self._queued_bytes > self._max_bytes
        ) and not self._reading_paused:
            self._pause_for_queue()

    def recv_nowait(self) -> bytes | None:
        """The next queued message; None if none is queued and the connection is open.

        Messages that arrived before the connection ended are still returned (at most
        max_queue of them), then the cause is raised (TransportClosed).
        """
        messages = self._messages
        if not messages:
            if self._closed is not None:
                self._raise_closed()
            return None
        message = messages.popleft()
        self._queued_bytes -= self._sizes.popleft()
        if (
            self._reading_paused
            and len(messages) <= self._resume_at
            and self._queued_bytes <= self._resume_bytes
        ):
            self._resume_for_queue()
        return message

    def recv(self) -> asyncio.Future[bytes]:
        """The next message: a future that ``deliver`` resolves with it (no coroutine
        per message), or with the cause of the end of the connection."""
        reader = self._loop.create_future()
        message = self.recv_nowait()
        if message is not None:
            reader.set_result(message)
        elif self._reader is not None and not self._reader.done():
            raise RuntimeError("another coroutine is already receiving")
        else:
            self._reader = reader
        return reader

    @property
    def writing_paused(self) -> bool:
        """True while the write buffer is above its high-water mark."""
        return self._write_paused

    def write(self, frame: Any) -> None:
        """Frames, masks and writes one binary message (picows copies it)."""
        if self._closed is not None:
            self._raise_closed()
        ws = self._ws
        assert ws is not None
        ws.send(_BINARY, frame)

    # supplied by the transport (PicowsTransport)
    def _on_other_frame(self, frame: Any) -> None:
        raise NotImplementedError

    def _pause_for_queue(self) -> None:
        raise NotImplementedError

    def _resume_for_queue(self) -> None:
        raise NotImplementedError

    def _raise_closed(self) -> None:
        raise NotImplementedError
