"""The portable transport, on the public API of websockets (16 and 17).

Only documented names are used: ``connect(..., create_connection=...)``, the
``ClientConnection`` constructor, ``recv_streaming``, ``ping``, ``close``,
``wait_closed``, the asyncio protocol callbacks, and the Sans-I/O ``ClientProtocol``
that the constructor receives (``send_binary``, ``fail``, ``data_to_send``, ``state``,
``close_sent``, ``close_rcvd``). What websockets does not bound on its own is bounded
here:

- messages are read frame by frame (``recv_streaming``) and joined once, at most
  ``max_fragments`` frames each (websockets' ``max_size`` caps their total);
- text frames fail the connection with 1003;
- reading pauses while writing is paused, so pong replies to a ping flood cannot pile
  up behind a peer that does not read (a gate in front of the socket transport, which
  websockets' own ``max_queue`` pausing also goes through);
- the keepalive is ours: websockets' own waits for the write buffer to drain before
  its timer starts, so a peer that stopped reading was never detected;
- ``close()`` is bounded by ``close_timeout``, drain included, then the socket is
  aborted;
- when websockets fails the connection itself (1009, 1002, 1007), the code and reason
  it sent are known at once and the socket is closed without waiting for the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConcurrencyError, ConnectionClosed, InvalidHandshake
from websockets.protocol import OPEN

from ._transport import (
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


# Bytes handed to websockets' parser at a time: it turns all it is given into frame
# objects at once, so a 64 KiB read of empty fragments would be 32k of them before any
# limit of ours could apply. Between slices, reading may pause (see _ReadGate).
_FEED_BYTES = 2048


class _ReadGate:
    """The socket transport as websockets sees it: reading pauses for two reasons.

    websockets pauses reading while ``max_queue`` frames are unread; the transport
    pauses it while the write buffer is full (so pongs cannot pile up behind a peer that
    does not read). Reading resumes when neither holds, after the bytes that were read
    but held back (see :meth:`AgentClientConnection.data_received`) are parsed.
    """

    def __init__(self, transport: asyncio.Transport, resume: Callable[[], None]) -> None:
        self._transport = transport
        self._resume = resume
        self.for_queue = False  # websockets' max_queue: the application does not read
        self.for_writes = False  # the peer does not read what we write
        self.closing = False  # close() waits for the answer: read whatever is unread
        self.paused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def apply(self) -> None:
        paused = (self.for_queue and not self.closing) or self.for_writes
        if paused != self.paused and not self._transport.is_closing():
            self.paused = paused
            if paused:
                self._transport.pause_reading()
            else:
                self._resume()

    def pause_reading(self) -> None:
        self.for_queue = True
        self.apply()

    def resume_reading(self) -> None:
        self.for_queue = False
        self.apply()


class AgentClientConnection(ClientConnection):
    """websockets' ClientConnection, reporting to its :class:`WebsocketsTransport`."""

    def __init__(self, protocol: Any, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.agent_protocol = protocol  # the Sans-I/O ClientProtocol (public API)
        self.owner: WebsocketsTransport | None = None
        self.gate: _ReadGate | None = None
        self.socket: asyncio.Transport | None = None
        self._held: bytes | None = None  # read while reading was paused, not yet parsed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        socket = cast(asyncio.Transport, transport)  # uvloop's TLS one is not a subclass
        self.socket = socket
        self.gate = _ReadGate(socket, self._resume_reading)
        super().connection_made(self.gate)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        gate = self.gate
        assert gate is not None
        end = len(data)
        if end <= _FEED_BYTES:
            super().data_received(data)
        else:
            view = memoryview(data)
            for start in range(0, end, _FEED_BYTES):
                if gate.paused and self.response is not None:
                    self._held = data[start:]
                    break
                super().data_received(bytes(view[start : start + _FEED_BYTES]))
        owner = self.owner
        if owner is not None and owner._closed is None:
            owner._check_protocol()

    def _resume_reading(self) -> None:
        if self._held is not None:
            # not from inside websockets' own resume callback: parse on the next turn
            self.loop.call_soon(self._feed_held)
        else:
            assert self.socket is not None
            self.socket.resume_reading()

    def _feed_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.data_received(held)
        gate, socket = self.gate, self.socket
        assert gate is not None and socket is not None
        if self._held is None and not gate.paused and not socket.is_closing():
            socket.resume_reading()

    def eof_received(self) -> None:
        if self._held is not None:
            self._feed_held()
        super().eof_received()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.gate is not None:
            self.gate.for_writes = True
            self.gate.apply()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.gate is not None:
            self.gate.for_writes = False
            self.gate.apply()
        if self.owner is not None:
            self.owner._wake_drainers()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.owner is not None:
            self.owner._lost()


class WebsocketsTransport(TransportBase):
    """A Transport on the websockets asyncio client, opened without compression."""

    def __init__(self, ws: AgentClientConnection, options: TransportOptions) -> None:
        self._ws = ws
        self._protocol = ws.agent_protocol
        assert ws.socket is not None and ws.gate is not None
        self._socket = ws.socket
        self._gate = ws.gate
        self._options = options
        self._loop = asyncio.get_running_loop()
        self._closed: TransportClosed | None = None
        self._drainers: list[asyncio.Future[None]] = []
        self._abort_timer: asyncio.TimerHandle | None = None
        self._failed_reading = False  # recv() failed the connection: it reads no more
        self._dispatcher = None  # websockets reads the frames: the session dispatches
        ws.owner = self
        self._keepalive: asyncio.Task[None] | None = None
        if options.ping_interval is not None:
            self._keepalive = self._loop.create_task(self._keep_alive(options.ping_interval))

    # -- what websockets reports --------------------------------------------------------

    def _check_protocol(self) -> None:
        """Called after each read: learns of a close as soon as websockets saw it."""
        protocol = self._protocol
        received = protocol.close_rcvd
        if received is not None:
            self._closed = closed_by_server(received.code, received.reason)
        elif protocol.close_sent is not None:
            # websockets failed the connection (a frame too large, a malformed frame,
            # an invalid close): what it sent is the cause; close the socket now
            # rather than wait for the server to answer
            sent = protocol.close_sent
            self._closed = failed(sent.code, sent.reason)
            self._socket.close()
            self._abort_later(self._options.close_timeout)
        else:
            return
        self._stop_keepalive()
        self._wake_drainers()
        self._tell_closed()

    def _lost(self) -> None:
        if self._closed is None:
            self._closed = dropped()
        self._stop_keepalive()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._wake_drainers()
        self._tell_closed()

    def _closed_now(self) -> TransportClosed:
        """Why the connection ended (it has: websockets raised ConnectionClosed)."""
        if self._closed is None:
            self._lost()
        return self._closed_copy()

    # -- failing -----------------------------------------------------------------------

    def _fail(self, code: int, reason: str, abort: bool = False) -> TransportClosed:
        """Fails the connection with ``code`` and ``reason``; returns the exception."""
        if self._closed is None:
            self._closed = failed(code, reason)
            protocol = self._protocol
            if protocol.state is OPEN:
                protocol.fail(code, reason)
                for data in protocol.data_to_send():
                    if data:
                        self._socket.write(data)
            self._stop_keepalive()
            if abort:
                self._socket.abort()
            else:
                self._socket.close()
                self._abort_later(self._options.close_timeout)
            self._wake_drainers()
            self._tell_closed()
        return self._closed_now()

    def _fail_reading(self, code: int, reason: str) -> TransportClosed:
        """Fails the connection on a message read that violates the protocol. The
        violation came first: it is the cause even if the server's close frame (read in
        the same slice of bytes) was seen before the message was taken."""
        self._failed_reading = True
        closed = self._closed
        if closed is not None and not closed.by_client:
            self._closed = failed(code, reason)
            self._socket.close()
            self._abort_later(self._options.close_timeout)
            self._tell_closed()
            return self._closed_copy()
        return self._fail(code, reason)

    def _abort_later(self, delay: float) -> None:
        if self._abort_timer is None:
            self._abort_timer = self._loop.call_later(delay, self.abort)

    def abort(self) -> None:
        self._abort_timer = None
        self._socket.abort()

    # -- keepalive ---------------------------------------------------------------------

    async def _keep_alive(self, interval: float) -> None:
        timeout = self._options.ping_timeout
        gate = self._gate
        while self._closed is None:
            await asyncio.sleep(interval)
            if gate.for_queue:
                continue  # suspended while the application does not read
            try:
                async with asyncio.timeout(timeout):
                    # the deadline covers the wait for the write buffer that ping()
                    # does before it writes the ping
                    pong = await self._ws.ping()
                    await pong
            except TimeoutError:
                if gate.for_queue:
                    continue  # the pong waits behind data the application has not read
                self._fail(1011, f"keepalive ping timeout: no pong within {timeout:g} s", True)
                return
            except ConnectionClosed:
                return

    def _stop_keepalive(self) -> None:
        task = self._keepalive
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._keepalive = None

    # -- receiving ---------------------------------------------------------------------

    def recv_nowait(self) -> bytes | None:
        """Always None: websockets hands messages out (and the cause of a close, after
        the messages it still holds) through its coroutine only."""
        return None

    async def recv(self) -> bytes:
        if self._failed_reading:
            # websockets still holds what it parsed along with the offending frame:
            # nothing after a failure is delivered (as on picows)
            raise self._closed_now()
        limit = self._options.max_fragments
        parts: list[bytes] = []
        try:
            stream = cast(AsyncGenerator[bytes | str], self._ws.recv_streaming())
            async with contextlib.aclosing(stream) as fragments:
                async for fragment in fragments:
                    if isinstance(fragment, str):
                        raise self._fail_reading(
                            1003, "text frames are not part of the agent protocol"
                        )
                    parts.append(fragment)
                    if len(parts) > limit:
                        raise self._fail_reading(1009, f"message spans more than {limit} fragments")
        except ConnectionClosed:
            raise self._closed_now() from None
        except ConcurrencyError:
            # websockets' answer to a read after an interrupted one on a connection
            # that has ended (its docs: the connection is unusable): the end it is
            if self._closed is None:
                raise
            raise self._closed_now() from None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # -- sending -----------------------------------------------------------------------

    def write(self, frame: Buffer) -> None:
        protocol = self._protocol
        if self._closed is not None or protocol.state is not OPEN:
            raise (
                self._closed_now() if self._closed is not None else TransportClosed(1006, "", False)
            )
        protocol.send_binary(frame)
        for data in protocol.data_to_send():
            self._socket.write(data)

    async def close(self) -> None:
        if self._closed is None:
            self._closed = TransportClosed(1000, "", True, by_client=True)
            self._tell_closed()
        self._stop_keepalive()
        # the answer to our close may wait behind messages the application did not read
        # (websockets' max_queue paused reading): read on until it comes, within
        # close_timeout (the session reads no more messages after disconnect())
        self._gate.closing = True
        self._gate.apply()
        try:
            # websockets' close() first waits for the write buffer to drain
            async with asyncio.timeout(self._options.close_timeout):
                await self._ws.close()
        except TimeoutError:
            self._note_unsent()  # what the flush did not get out: reported, not silent
            self.abort()
            await self._ws.wait_closed()

    # -- state ---------------------------------------------------------------------------

    dispatches = False  # websockets reads the frames: the session dispatches them

    @property
    def writing_paused(self) -> bool:
        return self._gate.for_writes

    @property
    def reading_paused(self) -> bool:
        return self._gate.for_queue

    def get_extra_info(self, name: str) -> Any:
        return self._socket.get_extra_info(name)


async def open_websockets(url: str, options: TransportOptions) -> WebsocketsTransport:
    """Opens a websockets connection (a :data:`~._transport.TransportFactory`).

    Raises:
        AgentConnectionError: the server could not be reached, a handshake failed, or
            ``open_timeout`` expired.
    """
    secure = url.startswith("wss://")
    try:
        ws = await connect(
            url,
            # PCM does not compress: deflate would only burn CPU on both ends
            compression=None,
            ssl=options.ssl if options.ssl is not None else secure or None,
            max_size=options.max_message_size,
            max_queue=options.max_queue,
            write_limit=options.write_limit,
            open_timeout=options.open_timeout,
            close_timeout=options.close_timeout,
            ping_interval=None,  # the keepalive is ours (see _keep_alive)
            # True: the environment's proxy, websockets' default; None: direct
            proxy=None if options.proxy is False else options.proxy,
            create_connection=AgentClientConnection,
        )
    except (TimeoutError, OSError, InvalidHandshake) as exc:
        raise cannot_connect(url, exc, options.open_timeout) from exc
    assert isinstance(ws, AgentClientConnection)
    return WebsocketsTransport(ws, options)
