"""The per-frame path of the picows transport in Python: the fallback of
``fishjam_fast._picows_listener`` (``src_ext/picows_listener.pyx``), the same class line
for line. A whole, unfragmented binary frame is copied once out of picows' receive
buffer and queued; anything rarer goes to the subclass's ``_on_other_frame``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from picows import WSListener, WSMsgType, WSTransport

NATIVE = False

_BINARY = WSMsgType.BINARY


class FrameListener(WSListener):
    def __init__(self, max_queue: int) -> None:
        self._messages: deque[bytes] = deque()
        self._reader: asyncio.Future[None] | None = None
        self._closed: Any = None
        self._fragments: bytearray | None = None
        self._reading_paused = False
        self._max_queue = max_queue
        self._ws: WSTransport | None = None

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if (
            frame.msg_type == _BINARY
            and frame.fin
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and self._fragments is None
        ):
            self.deliver(frame.get_payload_as_bytes())
        else:
            self._on_other_frame(frame)

    def deliver(self, message: bytes) -> None:
        """Queues a whole message, wakes recv(), pauses reading above max_queue."""
        self._messages.append(message)
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)
        if len(self._messages) > self._max_queue and not self._reading_paused:
            self._pause_for_queue()

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

    def _raise_closed(self) -> None:
        raise NotImplementedError
