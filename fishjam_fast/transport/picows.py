"""The default transport: picows parses the byte stream, one listener owns everything else.

picows (a Cython WebSocket library) reads the socket into its own buffer, parses frame
headers, and calls ``on_ws_frame`` of the listener with a view of each payload in
that buffer; sends go through its framing and masking (``WSTransport.send``, one copy
into its write buffer, then a direct ``send(2)`` when the socket's buffer is empty).
Everything picows leaves to its user is done here, with a bound on each: reassembling
fragments (one buffer, ``max_message_size``, ``max_fragments``), refusing text frames
(1003) and reserved bits (1002), answering pings (coalesced to the latest one while
writing is paused), the keepalive (timers, not a task), pausing reading while
``max_queue`` messages are unread, and the closing handshake.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, cast

from picows import WSCloseCode, WSError, WSListener, WSMsgType, WSTransport, ws_connect

try:  # what picows' proxy connections raise (it depends on python-socks)
    from python_socks import ProxyError
except ImportError:  # pragma: no cover - a picows without proxy support

    class ProxyError(Exception):  # type: ignore[no-redef]
        """Never raised: no python-socks."""


from .._env import NO_EXTENSIONS
from .._native import BUILD_HINT
from ._queue import BoundedQueue
from .base import (
    PICOWS_PROXY_SCHEMES,
    TransportBase,
    TransportClosed,
    TransportOptions,
    cannot_connect,
    closed_by_server,
    dropped,
    failed,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

# The per-frame path is compiled, with no Python twin: picows itself needs a compiler, and
# the pure-Python build (no extension) has the websockets transport, which
# choose.default_transport picks there. Asking for picows there says so.
if NO_EXTENSIONS:
    raise ImportError(
        "the picows transport runs on fishjam_fast's compiled extension, and "
        "FISHJAM_FAST_NO_EXTENSIONS=1 chooses the pure-Python build: use "
        "transport='websockets' (or unset FISHJAM_FAST_NO_EXTENSIONS)"
    )
try:
    from .._picows_listener import FrameListener
except ImportError as exc:  # pragma: no cover - a build without the extension
    raise ImportError(
        f"the picows transport runs on fishjam_fast's compiled extension, which this "
        f"installation lacks ({exc}): use transport='websockets', or {BUILD_HINT}"
    ) from exc

_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_TEXT = WSMsgType.TEXT
_PING = WSMsgType.PING
_PONG = WSMsgType.PONG
_CLOSE = WSMsgType.CLOSE

# a close reason must fit a control frame: 125 bytes minus the 2-byte code
_MAX_REASON_BYTES = 123


def _code(code: int) -> WSCloseCode:
    """A close code as picows types it (its enum lists the RFC's codes only)."""
    return cast(WSCloseCode, code)


def _close_frame(view: memoryview) -> tuple[int, str]:
    """The code and reason of a close frame's payload (picows checked the UTF-8)."""
    if len(view) < 2:
        return 1005, ""
    return int.from_bytes(view[:2], "big"), bytes(view[2:]).decode("utf-8", "replace")


class _PicowsTransport(TransportBase):
    """A Transport on picows; also the picows listener of its connection.

    The per-frame path (``on_ws_frame`` for whole binary frames, ``deliver``,
    ``write``) comes from the compiled FrameListener base
    (``fishjam_fast._picows_listener``); this class handles the rest.
    """

    _queue: BoundedQueue
    _closed: TransportClosed | None
    _fragments: bytearray | None
    _reading_paused: bool
    _ws: WSTransport | None
    _dispatcher: Any

    if TYPE_CHECKING:  # provided by the FrameListener base

        def write(self, frame: Buffer) -> None: ...
        def deliver(self, message: Any, size: int = 0) -> None: ...
        def recv_nowait(self) -> bytes | None: ...
        def recv(self) -> asyncio.Future[bytes]: ...

        @property
        def writing_paused(self) -> bool: ...

    def __init__(self, options: TransportOptions) -> None:
        super().__init__(  # type: ignore[call-arg]  # the FrameListener
            options.max_queue, options.max_message_size, options.max_queue_bytes
        )
        self._options = options
        self._socket: Any = None  # the asyncio transport under picows
        self._drainers: list[asyncio.Future[None]] = []
        self._disconnected = self._loop.create_future()
        self._fragment_count = 0  # frames of the fragmented message so far
        self._pending_pong: bytes | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_deadline: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None

    # -- picows callbacks --------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._ws = transport
        self._socket = transport.underlying_transport
        self._socket.set_write_buffer_limits(high=self._options.write_limit)
        self._schedule_ping()

    def _on_other_frame(self, frame: Any) -> None:
        """Every frame but a whole binary one outside a fragmented message, and every
        frame once the connection ended (only the answer to our close is read then)."""
        msg_type = frame.msg_type
        if self._closed is None:
            ws = self._ws
            if ws is not None and ws.is_close_frame_sent:
                if (
                    frame.last_in_buffer
                    and msg_type == _BINARY
                    and frame.fin
                    and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
                    and self._fragments is None
                    and frame.payload_size <= self._options.max_message_size
                ):
                    # picows parses one frame ahead: this one came before the frame it
                    # failed on (it delivers it after sending its close), so it counts
                    self._deliver_frame(frame)
                self._failed_by_picows(ws)
            elif msg_type in (_BINARY, _CONTINUATION) and frame.payload_size > (
                limit := self._options.max_message_size
            ):
                # picows refuses it already (max_frame_size): never delivered, whatever
                # order picows reports it in
                self._fail(1009, f"a frame of {frame.payload_size} bytes exceeds the limit {limit}")
                return
        if self._closed is not None:
            # RFC 6455 section 5.5.1: nothing after a close frame; nothing after a
            # failure either, on both transports
            if msg_type == _CLOSE:
                self._on_close(frame.get_payload_as_memoryview())
            return
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            self._fail(1002, "reserved bits set: no extension was negotiated")
        elif msg_type == _BINARY:
            if self._fragments is not None:
                self._fail(1002, "a new message began inside a fragmented message")
            else:
                self._fragments = bytearray()
                self._fragment_count = 0
                self._add_fragment(frame)
        elif msg_type == _CONTINUATION:
            if self._fragments is None:
                self._fail(1002, "a continuation frame with no message to continue")
            else:
                self._add_fragment(frame)
        elif msg_type == _TEXT:
            self._fail(1003, "text frames are not part of the agent protocol")
        elif msg_type == _PING:
            self._on_ping(frame.get_payload_as_bytes())
        elif msg_type == _PONG:
            self._on_pong()
        elif msg_type == _CLOSE:
            self._on_close(frame.get_payload_as_memoryview())

    def _deliver_frame(self, frame: Any) -> None:
        """A whole binary frame, as the listener's fast path hands it on."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            self.deliver(frame.get_payload_as_bytes(), frame.payload_size)
            return
        message = dispatcher.dispatch(frame.get_payload_as_memoryview())
        if message is not None:
            self.deliver(message, frame.payload_size)

    def _failed_by_picows(self, ws: WSTransport) -> None:
        """picows failed the connection itself (sent its close: a frame over
        max_frame_size, a malformed frame) but goes on parsing what follows: take its
        code and reason as the cause now, before any later frame is looked at."""
        handshake = ws.close_handshake
        sent = handshake.sent if handshake is not None else None
        code = int(cast(int, sent.code)) if sent is not None else 1002
        self._closed = failed(code, (sent.reason or "") if sent is not None else "")
        self._fragments = None
        self._cancel_keepalive()
        self._abort_later(self._options.close_timeout)
        self._wake_all()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._cancel_timers()
        if self._closed is None:
            handshake = transport.close_handshake
            sent = handshake.sent if handshake is not None else None
            if sent is not None:
                # picows failed the connection itself (a frame over max_message_size,
                # a malformed frame, an invalid close): the code and reason it sent
                self._closed = failed(int(cast(int, sent.code)), sent.reason or "")
            else:
                self._closed = dropped()
        self._wake_all()
        if not self._disconnected.done():
            self._disconnected.set_result(None)
        # picows also stores a failure it detected itself (1007, 1002, ...) in its own
        # disconnect future, right after this callback; the cause is already in
        # self._closed, so retrieve it there: otherwise asyncio logs "Future exception
        # was never retrieved" when the connection is collected.
        waiter = asyncio.ensure_future(transport.wait_disconnected())
        waiter.add_done_callback(_retrieve_exception)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        pong, self._pending_pong = self._pending_pong, None
        if pong is not None and self._closed is None and self._ws is not None:
            self._ws.send_pong(pong)
        self._wake_drainers()

    # -- receiving --------------------------------------------------------------------

    def _pause_for_queue(self) -> None:
        # the application does not keep up: stop reading (the kernel's buffer and then
        # the server's writes back up) and suspend the keepalive, whose pongs would now
        # wait behind unread data
        self._reading_paused = True
        self._socket.pause_reading()
        self._cancel_keepalive()

    def _add_fragment(self, frame: Any) -> None:
        fragments = self._fragments
        assert fragments is not None
        self._fragment_count += 1
        limit = self._options.max_message_size
        size = len(fragments) + frame.payload_size
        if size > limit:
            self._fail(
                1009, f"fragmented message of {size} bytes or more exceeds the limit {limit}"
            )
            return
        if self._fragment_count > self._options.max_fragments:
            self._fail(1009, f"message spans more than {self._options.max_fragments} fragments")
            return
        fragments += frame.get_payload_as_memoryview()
        if frame.fin:
            self._fragments = None
            dispatcher = self._dispatcher
            message = bytes(fragments)
            if dispatcher is not None:
                message = dispatcher.dispatch(message)
            if message is not None:
                self.deliver(message, len(fragments))

    def _resume_for_queue(self) -> None:
        self._reading_paused = False
        if self._closed is None:
            self._socket.resume_reading()
            self._schedule_ping()

    # -- control frames -----------------------------------------------------------------

    def _on_ping(self, payload: bytes) -> None:
        if self._closed is not None or self._ws is None:
            return
        if self._write_paused:
            # RFC 6455 section 5.5.3: a pong for the latest ping only is enough; a ping
            # flood from a peer that does not read cannot pile up pongs here
            self._pending_pong = payload
        else:
            self._ws.send_pong(payload)

    def _schedule_ping(self) -> None:
        interval = self._options.ping_interval
        if interval is not None and self._closed is None and self._ping_timer is None:
            self._ping_timer = self._loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self._closed is not None or self._reading_paused or self._ws is None:
            return
        self._ws.send_ping(b"fishjam_fast")
        # the deadline runs from now, even if the ping waits behind a full write buffer
        self._pong_deadline = self._loop.call_later(self._options.ping_timeout, self._ping_expired)

    def _on_pong(self) -> None:
        deadline = self._pong_deadline
        if deadline is not None:
            deadline.cancel()
            self._pong_deadline = None
            self._schedule_ping()

    def _ping_expired(self) -> None:
        self._pong_deadline = None
        timeout = self._options.ping_timeout
        self._fail(1011, f"keepalive ping timeout: no pong within {timeout:g} s", abort=True)

    def _cancel_keepalive(self) -> None:
        for timer in (self._ping_timer, self._pong_deadline):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_deadline = None

    def _cancel_timers(self) -> None:
        self._cancel_keepalive()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None

    def _on_close(self, payload: memoryview) -> None:
        code, reason = _close_frame(payload)
        ws = self._ws
        assert ws is not None
        if self._closed is None:
            self._closed = closed_by_server(code, reason)
            self._cancel_keepalive()
            # echo the code (RFC 6455 section 5.5.1); the server then closes the socket
            ws.send_close(_code(code if code != 1005 else 1000))
            self._wake_all()
            self._abort_later(self._options.close_timeout)
        else:
            # the answer to our close: the handshake is complete
            ws.disconnect()

    # -- failing and closing -----------------------------------------------------------

    def _fail(self, code: int, reason: str, abort: bool = False) -> None:
        """Fails the connection: sends ``code`` and ``reason``, tells every waiter now."""
        if self._closed is not None:
            return
        self._closed = failed(code, reason)
        self._fragments = None
        self._cancel_keepalive()
        ws = self._ws
        if ws is not None:
            ws.send_close(_code(code), reason.encode()[:_MAX_REASON_BYTES])
            if abort:  # the peer is gone: do not wait for its buffer to drain
                self._abort_later(0.0)
            else:
                ws.disconnect()
                self._abort_later(self._options.close_timeout)
        self._wake_all()

    def _abort_later(self, delay: float) -> None:
        if self._abort_timer is None and not self._disconnected.done():
            self._abort_timer = self._loop.call_later(delay, self.abort)

    def _wake_all(self) -> None:
        """The connection ended (``_closed`` is set): every waiter, and the session."""
        self._queue.fail_reader(self._closed_copy())
        self._wake_drainers()
        self._tell_closed()

    def abort(self) -> None:
        self._abort_timer = None
        if self._socket is not None and not self._disconnected.done():
            self._socket.abort()

    async def close(self) -> None:
        if self._closed is None:
            self._closed = TransportClosed(1000, "", True, by_client=True)
            self._cancel_keepalive()
            if self._ws is not None:
                self._ws.send_close(_code(1000))
            self._wake_all()
        if self._reading_paused and self._socket is not None and not self._disconnected.done():
            # the answer to our close waits behind messages the application did not
            # read: read on (frames after the close are not delivered), so the
            # handshake completes without waiting out close_timeout
            self._socket.resume_reading()
        try:
            async with asyncio.timeout(self._options.close_timeout):
                await asyncio.shield(self._disconnected)
        except TimeoutError:
            self._note_unsent()  # what the flush did not get out: reported, not silent
            self.abort()
            await asyncio.shield(self._disconnected)

    # -- sending ------------------------------------------------------------------------

    takes_client_frames = True

    def write_client_frames(self, frames: Buffer) -> bool:
        """Writes frames the caller framed and masked straight to the socket, in one
        write (picows' own ``send`` would frame each message again); False, writing
        nothing, once the connection ended or our close frame went out."""
        ws = self._ws
        if self._closed is not None or ws is None or ws.is_close_frame_sent:
            return False
        self._socket.write(frames)
        return True

    def _raise_closed(self) -> None:
        raise self._closed_copy()

    # -- state ----------------------------------------------------------------------------

    dispatches = True  # every frame, where picows delivers it

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    @property
    def queued_messages(self) -> int:
        return len(self._queue)

    def get_extra_info(self, name: str) -> Any:
        return self._socket.get_extra_info(name) if self._socket is not None else None


class PicowsTransport(_PicowsTransport, FrameListener):
    """The picows transport: the per-frame path in C, the rest in :class:`_PicowsTransport`."""


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _proxy_for(url: str, proxy: str | bool | None) -> str | None:
    """The proxy URL to connect ``url`` through: ``proxy`` itself, none, or for True the
    environment's, read with the standard library (``urllib.request.getproxies`` and
    ``proxy_bypass``) in the order websockets documents for its ``proxy=True``, so both
    transports pick the same proxy: ``no_proxy`` honoured, then
    ``wss``/``socks``/``https`` for ``wss://``, ``ws``/``socks``/``https``/``http`` for
    ``ws://``; an ``http://`` proxy given as ``socks`` means SOCKS5.

    Raises:
        ValueError: the environment's proxy has a scheme picows cannot use.
    """
    if proxy is None or proxy is False:
        return None
    if isinstance(proxy, str):
        return proxy
    # the environment once when it names no proxy (the common case): proxy_bypass reads
    # it all again, so it is asked only when there is a proxy to bypass
    proxies = urllib.request.getproxies()
    if not proxies:
        return None
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    if urllib.request.proxy_bypass(f"{parts.hostname}:{port}"):
        return None
    names = ("wss", "socks", "https") if secure else ("ws", "socks", "https", "http")
    name = next((name for name in names if name in proxies), None)
    if name is None:
        return None
    found = proxies[name]
    if name == "socks" and found.startswith("http://"):
        found = "socks5h://" + found[len("http://") :]
    if found.partition("://")[0].lower() not in PICOWS_PROXY_SCHEMES:
        raise ValueError(
            f"the environment's proxy {found!r} is not one picows connects through "
            f"({', '.join(PICOWS_PROXY_SCHEMES)}); use transport='websockets'"
        )
    return found


async def open_picows(url: str, options: TransportOptions) -> _PicowsTransport:
    """Opens a picows connection (a :data:`~.base.TransportFactory`).

    Raises:
        AgentConnectionError: the server could not be reached, a handshake failed, or
            ``open_timeout`` expired.
    """
    secure = url.startswith("wss://")
    context: ssl_module.SSLContext | None = options.ssl if secure else None
    try:
        proxy = _proxy_for(url, options.proxy)
    except ValueError as exc:
        raise cannot_connect(url, exc, options.open_timeout) from None
    try:
        async with asyncio.timeout(options.open_timeout):
            _, listener = await ws_connect(
                lambda: cast(WSListener, PicowsTransport(options)),
                url,
                ssl_context=context,
                # picows drops a connection whose handshake does not complete in time,
                # so a cancelled connect leaves no socket behind
                websocket_handshake_timeout=options.open_timeout,
                enable_auto_ping=False,  # the keepalive is ours (see _ping)
                enable_auto_pong=False,  # pongs are coalesced under backpressure
                max_frame_size=options.max_message_size,
                max_redirects=0,
                proxy=proxy,
            )
    except (TimeoutError, OSError, WSError, ProxyError) as exc:
        raise cannot_connect(url, exc, options.open_timeout) from exc
    assert isinstance(listener, _PicowsTransport)
    return listener
