"""Stub of the picows transport's per-frame listener (src_ext/picows_listener.pyx),
compiled: no Python twin (the pure-Python build uses the websockets transport)."""

import asyncio
from typing import Any

from picows import WSFrame, WSListener, WSTransport
from typing_extensions import Buffer

class FrameListener(WSListener):
    def __init__(self, max_queue: int, max_size: int, max_bytes: int = 0) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def deliver(self, message: Any, size: int = 0) -> None:
        """Hands a whole message (a frame of ``size`` bytes) to the waiting reader, else
        queues it (pausing reading above max_queue messages or max_queue_bytes)."""
    def recv_nowait(self) -> Any:
        """The next queued message; None if none is queued and the connection is open."""
    def recv(self) -> asyncio.Future[Any]:
        """The next message: a future that ``deliver`` resolves with it."""
    @property
    def writing_paused(self) -> bool:
        """True while the write buffer is above its high-water mark."""
    def write(self, frame: Buffer) -> None:
        """Frames, masks and writes one binary message (picows copies it)."""
