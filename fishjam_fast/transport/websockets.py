"""The portable transport, on the public API of websockets (16 and 17).

Reading uses only ``ClientConnection.recv_streaming()``, ``ping()``, ``close()``,
``state`` and the ``ConnectionClosed`` exception's ``rcvd``/``sent``; the connection is
made with ``connect(..., create_connection=...)`` (websockets' documented hook for a
subclass) and the subclass overrides nothing but asyncio's ``Protocol`` callbacks, each
calling websockets' own first, to learn what asyncio tells every protocol: the socket
transport, that writing paused or resumed, that the connection was lost. Sending frames
a binary message through the Sans-I/O ``ClientProtocol`` the constructor receives
(``send_binary``, ``data_to_send``: websockets has no synchronous send, and a task per
chunk would more than double the cost of a send).

Failing the connection (a protocol violation, a keepalive timeout) writes the close
frame through the same protocol object (``fail``), so it goes out before anything else.

A reader task in front of ``recv_streaming()`` takes each message as it arrives,
dispatches it to the session (decode, count, ``on_track_data``) and queues what is for
``receive()``, as the picows transport does where picows delivers a frame. What
websockets does not bound on its own is bounded here:

- unread messages: at most ``max_queue`` messages and ``max_queue_bytes`` bytes in our
  queue, then the reader stops taking more; websockets' own queue is kept at one frame
  (``max_queue=1``), then it pauses reading, and what was read but not yet fed to it
  waits (one socket read, 256 KiB). The true bound: our queue holds less than
  ``max_queue_bytes + max_message_size`` (the last message taken below the bound),
  websockets at most two messages of ``max_message_size`` and one 2 KiB slice, plus
  the held read: ``max_queue_bytes + 3 * max_message_size + 256 KiB`` at most;
- a drop is noticed without the application reading: the reader drains websockets'
  queue as soon as the connection is lost, whatever the bound, and learns the cause;
- messages span at most ``max_fragments`` frames (websockets' ``max_size`` caps their
  total); text frames fail the connection with 1003;
- empty messages carry nothing in the agent protocol: more than
  :data:`MAX_EMPTY_MESSAGES` in a row fail the connection with 1008, so a flood of
  empty frames costs a bounded amount of CPU (websockets parses each in Python);
- pongs: websockets answers every ping as it parses it. A server that floods pings and
  does not read the answers fails the connection with 1008 once more than
  ``write_limit`` bytes of answers wait in a write buffer that is already full;
- the keepalive is ours: websockets' own waits for the write buffer to drain before
  its timer starts, so a peer that stopped reading was never detected;
- ``close()`` is bounded by ``close_timeout``, drain included, then the socket is
  aborted; the reader reads on (and drops) what comes until the server's answer;
- when websockets fails the connection itself (1009, 1002, 1007) or the server closes,
  the socket is closed at once and the code and reason are known as soon as the
  socket is gone, not after ``close_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.protocol import OPEN, State

from ._queue import BoundedQueue
from .base import (
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

# Bytes handed to websockets' parser at a time (see AgentClientConnection.data_received).
_FEED_BYTES = 2048

MAX_EMPTY_MESSAGES = 1024
"""Empty messages in a row after which the connection fails with 1008: the agent
protocol never sends one, and websockets spends several µs of CPU on each."""


class AgentClientConnection(ClientConnection):
    """websockets' ClientConnection, telling its :class:`WebsocketsTransport` what
    asyncio tells every protocol (websockets' own handling runs first, unchanged)."""

    def __init__(self, protocol: Any, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.agent_protocol = protocol  # the Sans-I/O ClientProtocol (public API)
        self.owner: WebsocketsTransport | None = None
        self.socket: asyncio.Transport | None = None
        self.writing_paused = False
        self.held = b""  # read while websockets had paused reading, not yet parsed
        self.ending = False  # the socket is ending: parse everything it read, in order

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.socket = cast(asyncio.Transport, transport)  # uvloop's TLS one: no subclass

    def data_received(self, data: bytes) -> None:
        # websockets turns all it is given into frames at once: a 256 KiB read of empty
        # frames would be 128k frame objects before anything of ours could apply. It is
        # fed slices of _FEED_BYTES; once it has paused reading (its queue is full:
        # asyncio's public Transport.is_reading()), the rest is held, and fed first when
        # reading resumes: before newer bytes (prepended) or when the reader task has
        # taken a message (feed_held).
        socket = self.socket
        assert socket is not None
        if self.held:
            data, self.held = (self.held + data if data else self.held), b""
        before = socket.get_write_buffer_size()
        end = len(data)
        if end <= _FEED_BYTES:
            super().data_received(data)
        else:
            view = memoryview(data)
            for start in range(0, end, _FEED_BYTES):
                if start and not (socket.is_reading() or self.ending):
                    self.held = data[start:]
                    break
                super().data_received(bytes(view[start : start + _FEED_BYTES]))
        owner = self.owner
        if owner is not None:
            owner._after_read(socket.get_write_buffer_size() - before)

    def feed_held(self) -> None:
        """Parses the bytes held back while reading was paused, once it resumed."""
        socket = self.socket
        if self.held and socket is not None and socket.is_reading():
            self.data_received(b"")

    def pause_writing(self) -> None:
        super().pause_writing()
        self.writing_paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writing_paused = False
        if self.owner is not None:
            self.owner._writing_resumed()

    def _parse_held(self) -> None:
        """The socket is ending: what was read before the end is parsed, in order."""
        self.ending = True
        owner = self.owner
        if owner is not None and owner._closed is not None:
            self.held = b""  # we failed or closed the connection: nothing more is read
        elif self.held:
            self.data_received(b"")

    def eof_received(self) -> None:
        self._parse_held()
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._parse_held()
        super().connection_lost(exc)
        if self.owner is not None:
            self.owner._lost()


class WebsocketsTransport(TransportBase):
    """A Transport on the websockets asyncio client, opened without compression."""

    _closed: TransportClosed | None
    _loop: asyncio.AbstractEventLoop

    def __init__(self, ws: AgentClientConnection, options: TransportOptions) -> None:
        self._ws = ws
        self._protocol = ws.agent_protocol
        assert ws.socket is not None
        self._socket = ws.socket
        self._options = options
        self._loop = asyncio.get_running_loop()
        self._closed: TransportClosed | None = None
        self._drainers: list[asyncio.Future[None]] = []
        self._abort_timer: asyncio.TimerHandle | None = None
        self._dispatcher = None
        # the reader's queue: messages for receive() (or frames, before a dispatcher is
        # set), bounded by max_queue and max_queue_bytes (the picows transport's class)
        self._queue = BoundedQueue(self._loop, options.max_queue, options.max_queue_bytes)
        self._resume: asyncio.Future[None] | None = None  # the reader's, while it is paused
        self._reading_paused = False
        self._socket_lost = False  # connection_lost: drain websockets' queue, bound or not
        self._closing = False  # close() waits for the answer: read on, drop what comes
        self._answers_unsent = 0  # bytes of pongs written while writing was paused
        ws.owner = self
        self._keepalive: asyncio.Task[None] | None = None
        if options.ping_interval is not None:
            self._keepalive = self._loop.create_task(self._keep_alive(options.ping_interval))
        self._read_task = self._loop.create_task(self._read_loop())

    # -- what asyncio reports (AgentClientConnection) -------------------------------------

    def _after_read(self, answered: int) -> None:
        """After websockets parsed what was read; ``answered``: bytes it wrote back."""
        if self._ws.writing_paused and answered > 0:
            self._answers_unsent += answered
            limit = self._options.write_limit
            if self._answers_unsent > limit and self._closed is None:
                self._fail(
                    1008,
                    f"the server sends pings but does not read the pongs: "
                    f"{self._answers_unsent} bytes of pongs unsent (limit {limit})",
                    abort=True,
                )
                return
        if self._closed is None and self._ws.state is State.CLOSING and not self._closing:
            # the server closed, or websockets failed the connection (1009, 1002,
            # 1007): the handshake is done on our side; closing the socket now makes
            # the cause known at once (from ConnectionClosed), not after close_timeout
            self._socket.close()
            self._abort_later(self._options.close_timeout)

    def _writing_resumed(self) -> None:
        self._answers_unsent = 0
        self._wake_drainers()

    def _lost(self) -> None:
        self._socket_lost = True
        self._stop_keepalive()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._wake_drainers()
        self._wake_reader_task()  # it drains what websockets still holds, then the cause

    # -- the reader task ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Takes messages from websockets as they arrive, dispatches them and queues
        what is for ``receive()``, until the connection ends (then sets the cause)."""
        ws = self._ws
        limit = self._options.max_fragments
        empty = 0
        try:
            while self._closed is None or self._closing:
                if self._over_bound() and not (self._socket_lost or self._closing):
                    self._reading_paused = True
                    self._stop_keepalive()  # its pongs would wait behind unread data
                    self._resume = self._loop.create_future()
                    await self._resume
                    continue
                parts: list[bytes] = []
                stream = cast(AsyncGenerator[bytes | str], ws.recv_streaming())
                async with contextlib.aclosing(stream) as fragments:
                    async for fragment in fragments:
                        if isinstance(fragment, str):
                            self._fail_reading(
                                1003, "text frames are not part of the agent protocol"
                            )
                            return
                        parts.append(fragment)
                        if ws.held:
                            ws.feed_held()  # websockets resumed reading as it was taken
                        if len(parts) > limit:
                            self._fail_reading(1009, f"message spans more than {limit} fragments")
                            return
                frame = parts[0] if len(parts) == 1 else b"".join(parts)
                if frame:
                    empty = 0
                else:
                    empty += 1
                    if empty > MAX_EMPTY_MESSAGES:
                        self._fail_reading(
                            1008, f"more than {MAX_EMPTY_MESSAGES} empty messages in a row"
                        )
                        return
                if self._closing:
                    continue  # disconnect(): the session reads no more; wait for the answer
                self._deliver(frame)
        except ConnectionClosed as exc:
            if self._closed is None:
                rcvd, sent = exc.rcvd, exc.sent
                if rcvd is not None and (sent is None or exc.rcvd_then_sent):
                    self._closed = closed_by_server(rcvd.code, rcvd.reason)
                elif sent is not None:
                    self._closed = failed(sent.code, sent.reason)
                else:
                    self._closed = dropped()
            self._ended()

    def _over_bound(self) -> bool:
        return self._queue.at_bound()

    def _wake_reader_task(self) -> None:
        resume, self._resume = self._resume, None
        self._reading_paused = False
        if resume is not None and not resume.done():
            resume.set_result(None)

    def _deliver(self, frame: bytes) -> None:
        """Dispatches a message (the session's decoder, counters, ``on_track_data``) and
        hands what is for ``receive()`` to the waiting reader, or queues it."""
        dispatcher = self._dispatcher
        message: Any = frame if dispatcher is None else dispatcher.dispatch(frame)
        if message is not None:
            self._queue.put(message, len(frame))

    def _ended(self) -> None:
        """The connection ended (``_closed`` is set): every waiter, and the session."""
        self._stop_keepalive()
        if not len(self._queue):
            self._queue.fail_reader(self._closed_copy())
        self._wake_drainers()
        self._tell_closed()

    # -- failing -----------------------------------------------------------------------

    def _fail(self, code: int, reason: str, abort: bool = False) -> None:
        """Fails the connection with ``code`` and ``reason`` (websockets' ``close()``,
        bounded by ``close_timeout``; ``abort``: the socket is dropped at once)."""
        if self._closed is not None:
            return
        self._closed = failed(code, reason)
        # the close frame goes out now, through the Sans-I/O protocol we write with
        # (websockets' close() is a coroutine: the session could close first), then the
        # socket is closed without waiting for the peer's answer
        protocol = self._protocol
        if protocol.state is OPEN:
            protocol.fail(code, reason)
            for data in protocol.data_to_send():
                if data:
                    self._socket.write(data)
        if abort:
            self._socket.abort()
        else:
            self._socket.close()
            self._abort_later(self._options.close_timeout)
        self._ended()

    def _fail_reading(self, code: int, reason: str) -> None:
        """Fails the connection on a message that violates the protocol: nothing read
        after it is delivered (as on picows)."""
        self._fail(code, reason)

    def _abort_later(self, delay: float) -> None:
        if self._abort_timer is None and not self._socket_lost:
            self._abort_timer = self._loop.call_later(delay, self.abort)

    def abort(self) -> None:
        self._abort_timer = None
        self._socket.abort()

    # -- keepalive ---------------------------------------------------------------------

    async def _keep_alive(self, interval: float) -> None:
        timeout = self._options.ping_timeout
        while self._closed is None:
            await asyncio.sleep(interval)
            if self._reading_paused:
                continue  # suspended while the application does not read
            try:
                async with asyncio.timeout(timeout):
                    # the deadline covers the wait for the write buffer that ping()
                    # does before it writes the ping
                    pong = await self._ws.ping()
                    await pong
            except TimeoutError:
                if self._reading_paused:
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

    def recv_nowait(self) -> Any:
        """The next queued message; None if none is queued and the connection is open.

        Messages that arrived before the connection ended are still returned, then the
        cause is raised (TransportClosed).
        """
        queue = self._queue
        message = queue.take()
        if message is None:
            if self._closed is not None:
                raise self._closed_copy()
            return None
        if self._reading_paused and queue.drained():
            self._wake_reader_task()
            if self._keepalive is None and self._closed is None:
                interval = self._options.ping_interval
                if interval is not None:
                    self._keepalive = self._loop.create_task(self._keep_alive(interval))
        return message

    def recv(self) -> asyncio.Future[Any]:
        """The next message: a future that the reader task resolves with it (no
        coroutine per message), or with the cause of the end of the connection."""
        message = self.recv_nowait()
        if message is None:
            return self._queue.wait()
        reader: asyncio.Future[Any] = self._loop.create_future()
        reader.set_result(message)
        return reader

    # -- sending -----------------------------------------------------------------------

    def write(self, frame: Buffer) -> None:
        protocol = self._protocol
        if self._closed is not None or protocol.state is not OPEN:
            raise (
                self._closed_copy()
                if self._closed is not None
                else TransportClosed(1006, "", False)
            )
        protocol.send_binary(frame)
        for data in protocol.data_to_send():
            self._socket.write(data)

    async def close(self) -> None:
        if self._closed is None:
            self._closed = TransportClosed(1000, "", True, by_client=True)
            self._closing = True
            self._wake_reader_task()  # the answer may wait behind unread messages
            self._ended()
        self._stop_keepalive()
        try:
            # websockets' close() first waits for the write buffer to drain
            async with asyncio.timeout(self._options.close_timeout):
                await self._ws.close()
        except TimeoutError:
            self._note_unsent()  # what the flush did not get out: reported, not silent
            self.abort()
            await self._ws.wait_closed()
        finally:
            self._closing = False
            self._wake_reader_task()

    # -- state ---------------------------------------------------------------------------

    dispatches = True  # the reader task dispatches every message as it arrives

    @property
    def writing_paused(self) -> bool:
        return self._ws.writing_paused

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    @property
    def queued_messages(self) -> int:
        return len(self._queue)

    def get_extra_info(self, name: str) -> Any:
        return self._socket.get_extra_info(name)


async def open_websockets(url: str, options: TransportOptions) -> WebsocketsTransport:
    """Opens a websockets connection (a :data:`~.base.TransportFactory`).

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
            # our reader queues (bounded by max_queue and max_queue_bytes): websockets
            # holds one frame more, then pauses reading
            max_queue=1,
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
