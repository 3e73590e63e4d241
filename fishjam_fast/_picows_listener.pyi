"""Stub of the picows connection (src_ext/picows_listener.pyx), compiled: no Python
twin (the pure-Python build uses the websockets transport).

The hooks a subclass may override (each calling this class's first) are ``on_ended``
and ``resume_writing``; every other method is the connection's own."""

import asyncio
from typing import Any

from picows import WSFrame, WSListener, WSTransport
from typing_extensions import Buffer

from fishjam_fast.transport._queue import BoundedQueue
from fishjam_fast.transport.base import TrackEncoder, TransportClosed, TransportOptions

class FrameListener(WSListener):
    def __init__(self, options: TransportOptions) -> None:
        """One connection's listener, bounded by ``options``."""
    @property
    def options(self) -> TransportOptions:
        """The options the connection was opened with."""
    @property
    def disconnected(self) -> asyncio.Future[None]:
        """Resolved once the socket is gone."""
    @property
    def _queue(self) -> BoundedQueue: ...
    @property
    def _closed(self) -> TransportClosed | None:
        """Why the connection ended; None while it is open."""
    @property
    def _ws(self) -> WSTransport | None: ...
    @property
    def _socket(self) -> Any: ...
    @property
    def _loop(self) -> asyncio.AbstractEventLoop: ...
    _dispatcher: Any
    def on_ws_connected(self, transport: WSTransport) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def on_ws_disconnected(self, transport: WSTransport) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None:
        """Hook (picows'): writing may go on; sends the pong held meanwhile."""
    def on_ended(self) -> None:
        """Hook: the connection ended (``_closed`` is set): the waiting reader raises."""
    def deliver(self, message: Any, size: int = 0) -> None:
        """Hands a whole message (a frame of ``size`` bytes) to the waiting reader, else
        queues it (pausing reading above max_queue messages or max_queue_bytes)."""
    def recv_nowait(self) -> Any:
        """The next queued message; None if none is queued and the connection is open."""
    def recv(self) -> asyncio.Future[Any]:
        """The next message: a future that ``deliver`` resolves with it."""
    @property
    def reading_paused(self) -> bool:
        """True while reading from the socket is paused (``max_queue`` unread messages)."""
    @property
    def queued_messages(self) -> int:
        """Messages received and not yet read."""
    @property
    def writing_paused(self) -> bool:
        """True while the write buffer is above its high-water mark."""
    def write(self, frame: Buffer) -> None:
        """Frames, masks and writes one binary message (picows copies it)."""
    def write_client_frames(self, frames: Buffer) -> bool:
        """Writes frames the caller framed and masked straight to the socket."""
    def write_track_data(self, encoder: TrackEncoder, data: Buffer) -> int:
        """Writes one ``track_data`` message now, copying ``data`` once (the native
        TrackDataEncoder's: framed in a reused buffer); returns the message's size."""
    def fail(self, code: int, reason: str, abort: bool = False) -> None:
        """Fails the connection: sends ``code`` and ``reason``, tells every waiter now."""
    def begin_close(self) -> None:
        """Starts the closing handshake (1000), once."""
    def abort(self) -> None:
        """Drops the socket at once (no closing handshake)."""
    def get_extra_info(self, name: str) -> Any:
        """The socket transport's ``get_extra_info(name)``."""
