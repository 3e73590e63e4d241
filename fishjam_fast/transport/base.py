"""The seam between an agent session and the socket it talks over.

A session needs a few things from a transport, all in the :class:`Transport` protocol
below: write one binary frame now (:meth:`Transport.write`) and wait while the write
buffer is full (:meth:`Transport.drain`), receive one message (:meth:`Transport.recv`,
or :meth:`Transport.recv_nowait` when one is queued),
close (:meth:`Transport.close`, bounded by ``close_timeout``, then the socket is
aborted) and say why the connection ended (:attr:`Transport.close_code`,
:attr:`Transport.close_reason`, :attr:`Transport.closed`).

Two implementations live behind it, each opened by a :data:`TransportFactory` taking the
socket URL and one :class:`TransportOptions`:

- ``picows`` (:mod:`.picows`, the default): one listener owns the byte stream
  picows parses; frames are taken from picows' receive buffer where it delivers them.
- ``websockets`` (:mod:`.websockets`): the portable alternative, on the public
  API of websockets 16 and 17 only.

Both give the same guarantees, which the session relies on:

- **The cause, at once.** When either side fails the connection, :attr:`closed` holds
  the code and reason that were sent or received (1009 with the sizes for an oversized
  message, 1011 for a keepalive timeout, ...) and every waiter (``recv``, ``drain``)
  raises :class:`TransportClosed` immediately, not after the closing handshake.
- **Deadlines.** ``open_timeout`` (TCP, TLS, handshake; the agent adds the answer to the
  auth request), ``close_timeout`` (closing handshake, then abort), ``ping_interval`` /
  ``ping_timeout`` (a dead peer is detected even while the write buffer is full, which
  also bounds :meth:`Transport.drain`). The keepalive is suspended while reading is
  paused because the application does not consume messages (see
  :class:`TransportOptions`).
- **Bounds.** Whole messages, fragments assembled into one buffer, up to
  ``max_message_size``; at most ``max_fragments`` frames per message; at most
  ``max_queue`` unread messages or ``max_queue_bytes`` of them, then reading pauses;
  pongs to a ping flood bounded while writing is paused (picows coalesces them,
  websockets fails the connection with 1008); text frames fail the connection with
  1003 (the agent protocol is binary only).
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import AgentConnectionError

if TYPE_CHECKING:
    from typing_extensions import Buffer

# Close codes of a connection that ended without an error (RFC 6455 section 7.4.1):
# receive() ends without raising; 1005 is what a close frame without a code reads as.
# 1001 (going away: a server shutting down) is also in _core.reconnect.RECONNECT_CLOSE_CODES,
# which a reconnecting session checks first: it comes back instead of ending.
NORMAL_CLOSE_CODES = frozenset({1000, 1001, 1005})

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
"""Largest message accepted from the server: captured images can be large."""

DEFAULT_MAX_FRAGMENTS = 1024
"""Frames one fragmented message may span: empty or tiny fragments are counted."""

DEFAULT_MAX_QUEUE = 64
"""Messages buffered before the transport stops reading from the socket."""

DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024
"""Bytes of unread messages buffered before the transport stops reading (each message's
frame size is counted; websockets holds at most three messages and one socket read
more, see :mod:`.websockets`)."""

DEFAULT_WRITE_LIMIT = 64 * 1024
"""Write-buffer high-water mark above which sending waits."""

DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_CLOSE_TIMEOUT = 5.0
DEFAULT_PING_INTERVAL = 20.0
DEFAULT_PING_TIMEOUT = 20.0

PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
"""Proxy URL schemes websockets connects through (SOCKS needs ``python-socks``)."""

PICOWS_PROXY_SCHEMES = ("http", "https", "socks4", "socks5")
"""Proxy URL schemes picows connects through (SOCKS needs ``python-socks``)."""

TransportName = Literal["picows", "websockets"]
TRANSPORT_NAMES: tuple[TransportName, ...] = ("picows", "websockets")


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Limits and deadlines of one connection (the :class:`~fishjam_fast.Agent` options).

    Attributes:
        ssl: An SSL context for ``wss://``; None verifies with the system's certificates.
        max_message_size: Largest message accepted, in bytes (a bigger frame or
            fragmented message fails the connection with 1009).
        max_fragments: Frames a fragmented message may span (more: 1009).
        max_queue: Unread messages buffered before reading from the socket pauses.
        write_limit: Write-buffer high-water mark in bytes; sending waits above it.
        open_timeout: Seconds for TCP, TLS and the WebSocket handshake; None: no limit.
        close_timeout: Seconds for the closing handshake before the socket is aborted.
        ping_interval: Seconds between keepalive pings; None disables the keepalive
            (then nothing bounds a send into a peer that stopped reading).
        ping_timeout: Seconds a pong may take before the connection fails with 1011.
            The timer runs from the moment the ping is queued, so a peer that stopped
            reading is detected even behind a full write buffer. It is suspended
            while reading is paused because the application does not consume
            messages; meanwhile the server's own pings go unanswered too, and a server
            with a keepalive of its own may close the connection after its timeout.
        proxy: True (the default, as websockets' and so the plain SDK's) looks the
            proxy up in the environment (``https_proxy``, ``no_proxy``, ...) on every
            connect; a proxy URL connects through that proxy; None connects directly
            (False is taken as None).
        max_queue_bytes: Bytes of unread messages buffered before reading from the
            socket pauses, as ``max_queue`` (the frames' sizes; websockets holds at
            most three messages of ``max_message_size`` and one socket read more).
    """

    ssl: ssl_module.SSLContext | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_fragments: int = DEFAULT_MAX_FRAGMENTS
    max_queue: int = DEFAULT_MAX_QUEUE
    write_limit: int = DEFAULT_WRITE_LIMIT
    open_timeout: float | None = DEFAULT_OPEN_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float = DEFAULT_PING_TIMEOUT
    proxy: str | bool | None = True
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES

    def __post_init__(self) -> None:
        proxy = self.proxy
        if not (
            proxy is None
            or isinstance(proxy, bool)
            or (isinstance(proxy, str) and proxy.partition("://")[0].lower() in PROXY_SCHEMES)
        ):
            raise ValueError(
                f"proxy must be True (the environment's), None or False (direct), or a URL "
                f"with a scheme among {PROXY_SCHEMES}, got {proxy!r}"
            )
        if proxy is False:
            object.__setattr__(self, "proxy", None)  # one spelling of "direct" downstream
        for name in (
            "max_message_size",
            "max_fragments",
            "max_queue",
            "max_queue_bytes",
            "write_limit",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("open_timeout", "close_timeout", "ping_interval", "ping_timeout"):
            value = getattr(self, name)
            if value is None and name in ("open_timeout", "ping_interval"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                allowed = "a positive number of seconds" + (
                    " or None" if name in ("open_timeout", "ping_interval") else ""
                )
                raise ValueError(f"{name} must be {allowed}, got {value!r}")


class TransportClosed(Exception):
    """The connection is closed; ``code`` and ``reason`` tell why, ``ok`` if normally.

    ``by_client`` is True when this side closed or failed the connection (then ``code``
    and ``reason`` are what it sent), False when the server did or the socket dropped.
    """

    def __init__(self, code: int, reason: str, ok: bool, by_client: bool = False) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.ok = ok
        self.by_client = by_client

    def __repr__(self) -> str:
        side = "client" if self.by_client else "server"
        return f"TransportClosed({self.code}, {self.reason!r}, ok={self.ok}, by={side})"


def closed_by_server(code: int, reason: str) -> TransportClosed:
    """The close the server sent (code 1005 when its close frame had none)."""
    return TransportClosed(code, reason, code in NORMAL_CLOSE_CODES)


def dropped(reason: str = "") -> TransportClosed:
    """The socket ended without a closing handshake: code 1006."""
    return TransportClosed(1006, reason, False)


def failed(code: int, reason: str) -> TransportClosed:
    """This side failed the connection, sending ``code`` and ``reason``."""
    return TransportClosed(code, reason, False, by_client=True)


def cannot_connect(
    url: str, exc: BaseException, open_timeout: float | None
) -> AgentConnectionError:
    """What a transport factory raises when opening failed (``exc`` says why)."""
    if isinstance(exc, TimeoutError):
        what = f"no WebSocket connection within open_timeout={open_timeout} s"
    else:
        what = str(exc)
    return AgentConnectionError(f"cannot connect to {url}: {what}", 1006, "")


class Dispatcher(Protocol):
    """What a transport sees of the session's dispatcher (``_core.connection.Connection``)."""

    on_closed: Callable[[Any, TransportClosed], object] | None

    def dispatch(self, frame: Buffer, /) -> Any:
        """Counts and decodes a frame; the message for ``receive()``, or None."""


class TrackEncoder(Protocol):
    """What :meth:`Transport.write_track_data` takes: a track's ``TrackDataEncoder``
    (``fishjam_fast._codec``; the native one lets picows write with one copy)."""

    def encode(self, data: Buffer, /) -> bytes:
        """The whole ``AgentRequest{track_data{...}}`` message carrying ``data``."""


class Transport(Protocol):
    """What an AgentSession needs from a connection."""

    @property
    def closed(self) -> TransportClosed | None:
        """Why the connection ended, as soon as it is known; None while it is open."""

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed (1006 if it dropped)."""

    @property
    def close_reason(self) -> str:
        """The close reason once the connection is closed, else ``""``."""

    @property
    def reading_paused(self) -> bool:
        """True while reading from the socket is paused (``max_queue`` unread messages)."""

    @property
    def unsent_bytes(self) -> int:
        """Bytes written that the server never got: measured when the connection ended
        abnormally, or when :meth:`close` had to abort (0 otherwise)."""

    def get_extra_info(self, name: str) -> Any:
        """The socket transport's ``get_extra_info(name)`` (``ssl_object``, ``peername``)."""

    @property
    def writing_paused(self) -> bool:
        """True while the write buffer is above its high-water mark: :meth:`drain`."""

    def write(self, frame: Buffer) -> None:
        """Frames and writes one binary message now, without waiting.

        Raises:
            TransportClosed: the connection is closed (nothing was written).
        """

    def write_track_data(self, encoder: TrackEncoder, data: Buffer) -> int:
        """Writes one ``track_data`` message of ``encoder``'s track carrying ``data`` now,
        without waiting (as :meth:`write` of ``encoder.encode(data)``, byte for byte).

        picows with the native encoder copies ``data`` once: it is encoded into a
        buffer the connection reuses and framed there. websockets encodes a new
        ``bytes`` and frames it into another: two copies, its honest cost.

        Returns:
            The message's size in bytes (the WebSocket frame's payload).

        Raises:
            TransportClosed: the connection is closed (nothing was written).
            TypeError: ``data`` is not a buffer.
        """

    @property
    def takes_client_frames(self) -> bool:
        """True when :meth:`write_client_frames` writes frames framed and masked by the
        caller (picows: straight to its socket); False when only :meth:`write` can
        (websockets frames every message itself)."""

    def write_client_frames(self, frames: Buffer) -> bool:
        """Writes whole, masked client frames (several messages framed by the caller,
        as audio windows' ``send_pcm_nowait`` does) to the socket in one write.

        Returns:
            True when written; False when nothing was written: the transport does not
            take client frames, or the connection ended or is closing (:meth:`write`
            then says why).
        """

    async def drain(self) -> None:
        """Waits while the write buffer is above its high-water mark.

        Bounded by the keepalive: a peer that stops reading fails the connection
        with 1011 after ``ping_interval + ping_timeout`` at most.

        Raises:
            TransportClosed: the connection ended while waiting.
        """

    async def send(self, frame: Buffer) -> None:
        """``write(frame)`` then ``drain()``."""

    async def send_many(self, frames: Sequence[Buffer]) -> None:
        """Writes several binary messages, in order, draining between batches."""

    def set_dispatcher(self, dispatcher: Dispatcher | None) -> None:
        """Hands the session's dispatcher to the transport (None: take it back).

        Both transports dispatch each frame where they read it (picows decodes it
        from its receive buffer; websockets in its reader task): what :meth:`recv`
        returns is then the message the dispatcher returned, and frames the
        dispatcher consumed (``on_track_data``, ``request_image``) are never queued.
        Before a dispatcher is set (authentication) frames are handed on as bytes.

        Every transport calls ``dispatcher.on_closed(transport, closed)`` once, soon
        after it learns that the connection ended (at once if it already has).
        """

    @property
    def dispatches(self) -> bool:
        """True: frames are dispatched as they arrive (both transports do)."""

    def recv(self) -> Awaitable[Any]:
        """Returns the next binary message (awaited: a coroutine or a future): a frame
        (``bytes``), or the message the dispatcher decoded from it.

        Raises:
            TransportClosed: the connection is closed and every message was read.
        """

    def recv_nowait(self) -> Any:
        """The next binary message if one is already queued (as :meth:`recv`), else
        None: then :meth:`recv`.

        The session's hot path: a message taken here costs no coroutine or future.

        Raises:
            TransportClosed: the connection is closed and every message was read.
        """

    async def close(self) -> None:
        """Closes normally (1000), waiting at most ``close_timeout``, then aborts."""

    def abort(self) -> None:
        """Drops the socket at once (no closing handshake)."""


try:  # the kernel's send queue (Linux, BSD, macOS): bytes written but not acknowledged
    import fcntl
    import struct
    import termios

    _OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)
except ImportError:  # pragma: no cover - Windows
    _OUTQ = None


def unsent_bytes(socket: Any) -> int:
    """Bytes written to ``socket`` (an asyncio transport) that its peer has not got:
    the transport's write buffer, plus the kernel's send queue where the platform
    tells it (unsent or unacknowledged). 0 once the socket is gone."""
    if socket is None:
        return 0
    try:
        size = int(socket.get_write_buffer_size())
    except (AttributeError, RuntimeError):
        size = 0
    sock = socket.get_extra_info("socket")
    if sock is not None and _OUTQ is not None:
        try:
            queued = fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0")
            size += struct.unpack("i", queued)[0]
        except (OSError, ValueError):
            pass  # closed meanwhile
    return size


class TransportBase:
    """What both transports share: why the connection ended, and waiting to write.

    A subclass provides ``_closed`` (None while open) and ``_loop``, which this class
    only reads (the picows transport's are its native listener's, readonly), sets
    ``_drainers`` (a list), provides ``write`` and ``writing_paused``, and calls
    :meth:`_wake_drainers` when writing resumes or the connection ends.
    """

    _drainers: list[asyncio.Future[None]]
    _dispatcher: Dispatcher | None

    if TYPE_CHECKING:  # read here; each transport holds them (see the docstring)

        @property
        def _closed(self) -> TransportClosed | None: ...

        @property
        def _loop(self) -> asyncio.AbstractEventLoop: ...

    _close_told = False
    _unsent_noted = False
    unsent_bytes = 0
    """Bytes written to this connection that the server had not got when it ended
    abnormally, or that ``close()`` could not send within ``close_timeout`` (see
    :func:`unsent_bytes`); 0 while open and after a complete close."""

    def _note_unsent(self) -> None:
        """Measures :attr:`unsent_bytes` once, as the connection is found ended."""
        if not self._unsent_noted:
            self._unsent_noted = True
            self.unsent_bytes = unsent_bytes(getattr(self, "_socket", None))

    def set_dispatcher(self, dispatcher: Dispatcher | None) -> None:
        self._dispatcher = dispatcher
        if self._closed is not None:
            self._tell_closed()

    def _tell_closed(self) -> None:
        """Tells the session, once, that the connection ended (``_closed`` is set), soon
        but not from inside a picows or websockets callback: a session that is not
        reading learns of a drop at once, and reconnects."""
        closed = self._closed
        if closed is not None and not (closed.ok and closed.by_client):
            self._note_unsent()  # close() measures its own, after its flush
        dispatcher = self._dispatcher
        if self._close_told or dispatcher is None or dispatcher.on_closed is None:
            return
        self._close_told = True
        self._loop.call_soon(dispatcher.on_closed, self, self._closed_copy())

    takes_client_frames = False
    """See :meth:`Transport.takes_client_frames` (the picows transport's is True)."""

    def write_client_frames(self, frames: Buffer) -> bool:
        """See :meth:`Transport.write_client_frames`: here, never (False)."""
        return False

    def write_track_data(self, encoder: TrackEncoder, data: Buffer) -> int:
        """See :meth:`Transport.write_track_data`: here, encoded then written (the
        picows transport's native listener frames it in place instead)."""
        frame = encoder.encode(data)
        self.write(frame)
        return len(frame)

    if TYPE_CHECKING:  # provided by each transport (picows: by its FrameListener base)

        def write(self, frame: Buffer) -> None: ...

        @property
        def writing_paused(self) -> bool: ...

    def _closed_copy(self) -> TransportClosed:
        """A fresh exception each time: raising one instance again grows its traceback."""
        closed = self._closed
        assert closed is not None
        return TransportClosed(closed.code, closed.reason, closed.ok, closed.by_client)

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for waiter in drainers:
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        while self.writing_paused:
            if self._closed is not None:
                raise self._closed_copy()
            waiter = self._loop.create_future()
            self._drainers.append(waiter)
            await waiter
        if self._closed is not None and not self._closed.ok:
            raise self._closed_copy()

    async def send(self, frame: Buffer) -> None:
        self.write(frame)
        if self.writing_paused:
            await self.drain()

    async def send_many(self, frames: Sequence[Buffer]) -> None:
        for frame in frames:
            self.write(frame)
            if self.writing_paused:
                await self.drain()

    @property
    def closed(self) -> TransportClosed | None:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self._closed.code if self._closed is not None else None

    @property
    def close_reason(self) -> str:
        return self._closed.reason if self._closed is not None else ""


TransportFactory = Callable[[str, TransportOptions], Awaitable[Transport]]
"""Opens a transport to a ``ws://``/``wss://`` URL (a reconnect loop calls it again).

Raises ``AgentConnectionError`` when the server cannot be reached, the TLS or WebSocket
handshake fails, or ``open_timeout`` expires.
"""


def websocket_url(fishjam_url: str, path: str = "/socket/agent/websocket") -> str:
    """Returns the agent socket URL (or the socket at ``path``) for a Fishjam URL,
    keeping any path prefix.

    ``http://`` becomes ``ws://`` and ``https://`` becomes ``wss://``; only the scheme is
    rewritten (the plain SDK replaces every ``http`` in the URL).
    """
    base = fishjam_url.rstrip("/")
    scheme, sep, rest = base.partition("://")
    if not sep:
        raise ValueError(
            f"fishjam_url must start with http://, https://, ws:// or wss://: {fishjam_url!r}"
        )
    schemes = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
    if scheme.lower() not in schemes:
        raise ValueError(f"unsupported fishjam_url scheme {scheme!r}: use http, https, ws or wss")
    return f"{schemes[scheme.lower()]}://{rest}{path}"
