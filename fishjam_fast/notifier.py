"""FishjamNotifier: Fishjam's server notifications over the notification socket.

The plain SDK's API (``on_server_notification``, ``connect()``, ``wait_ready()``) plus
what a long-running backend needs: several handlers, an async iterator, deadlines on
every step of connecting, the keepalive and limits of the agent's transports (picows
or websockets), automatic reconnection with backoff and a :class:`NotificationGap`
after it, typed errors, counters and a state.

Flow control: notifications are delivered in order, one at a time. A handler that is
slow (an async one is awaited) or an iterator whose consumer is slow holds up reading:
the transport buffers ``max_queue`` frames, then stops reading from the socket, and
Fishjam's side of the connection holds the rest. Nothing is dropped; memory stays
bounded (``max_queue`` frames, ``max_pending`` notifications per iterator). While
reading is paused the keepalive is suspended (see ``ping_timeout``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from . import _notifications, events
from ._callbacks import Callbacks
from ._core.reconnect import RECONNECT_CLOSE_CODES, ReconnectPolicy, reconnect_policy
from .errors import AgentAuthError, AgentConnectionError, AgentProtocolError
from .rest import fishjam_url
from .transport.base import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_FRAGMENTS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_QUEUE,
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_WRITE_LIMIT,
    Transport,
    TransportClosed,
    TransportName,
    websocket_url,
)
from .transport.choose import connection_setup

__all__ = [
    "FishjamNotifier",
    "NotificationIterator",
    "NotifierAuthError",
    "NotifierConnectionError",
    "NotifierState",
    "NotifierStateChange",
    "NotifierStats",
]

logger = logging.getLogger("fishjam_fast")

SOCKET_PATH = "/socket/server/websocket"
DEFAULT_MAX_PENDING = 1024
"""Notifications an iterator buffers before the notifier stops reading for it."""

NotifierState = Literal["idle", "connecting", "connected", "reconnecting", "closed"]
"""``"idle"`` before :meth:`FishjamNotifier.connect`; ``"connecting"`` until the first
subscription; ``"connected"``; ``"reconnecting"`` after an abnormal end, until it is
back or gives up; ``"closed"`` for good."""

Notification: TypeAlias = Any
"""A ``fishjam_fast.events`` notification, or :class:`~fishjam_fast.events.NotificationGap`."""

Handler: TypeAlias = Callable[[Notification], None] | Callable[[Notification], Awaitable[None]]


class NotifierAuthError(AgentAuthError, RuntimeError):
    """Fishjam refused the management token (``reason``: the server's close reason,
    e.g. ``"invalid token"``). Also a RuntimeError: what the plain SDK's notifier
    raises, so its callers' ``except RuntimeError`` still catches it after install()."""

    def __str__(self) -> str:
        return f"the notifier failed to authenticate: {self.reason}"


class NotifierConnectionError(AgentConnectionError):
    """The notification socket could not be opened, answered out of protocol, or was
    lost and not regained within the reconnect budget (``code``, ``reason``: the close
    code and reason, 1006 when the connection dropped without one)."""


@dataclass(slots=True)
class NotifierStats:
    """Counters of a notifier, over all its connections.

    Attributes:
        notifications: Notifications delivered (each once, to every handler and
            iterator; gaps not included).
        skipped: Notifications this version cannot type (``UnknownNotification``:
            a newer server's), skipped.
        malformed: Frames that were not a valid ServerMessage, skipped.
        frames_received: Frames received after subscribing.
        bytes_received: Bytes of those frames.
        reconnects: Successful reconnections (one per outage; a gap each).
        reconnect_attempts: Connection attempts while reconnecting.
        handler_errors: Exceptions raised by handlers (logged, then ignored).
    """

    notifications: int = 0
    skipped: int = 0
    malformed: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    reconnects: int = 0
    reconnect_attempts: int = 0
    handler_errors: int = 0


@dataclass(frozen=True, slots=True)
class NotifierStateChange:
    """A transition of :attr:`FishjamNotifier.state`.

    Attributes:
        state: The new state.
        previous: The state before.
        cause: For ``"reconnecting"`` the error describing the drop; for ``"closed"``
            the error that ended the notifier (None after :meth:`close`).
        at: ``time.monotonic()`` of the transition.
    """

    state: NotifierState
    previous: NotifierState
    cause: Exception | None
    at: float


class _Inbox:
    """One iterator's bounded buffer: ``put`` waits while it is full."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[Notification] = deque()
        self._maxsize = maxsize
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self.closed = False
        self.error: BaseException | None = None

    async def put(self, item: Notification) -> None:
        while len(self._items) >= self._maxsize and not self.closed:
            waiter = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            await waiter
        if self.closed:
            return  # the iterator is gone: no one will read it
        self._items.append(item)
        self._wake_getter()

    async def get(self) -> Notification:
        while not self._items:
            if self.closed:
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            self._getter = asyncio.get_running_loop().create_future()
            await self._getter
        item = self._items.popleft()
        if self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        return item

    def close(self, error: BaseException | None = None) -> None:
        self.closed = True
        self.error = error
        self._wake_getter()
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _wake_getter(self) -> None:
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)


class NotificationIterator:
    """What :meth:`FishjamNotifier.notifications` returns (an async iterator)."""

    def __init__(self, inbox: _Inbox) -> None:
        self._inbox = inbox

    def __aiter__(self) -> NotificationIterator:
        return self

    async def __anext__(self) -> Notification:
        return await self._inbox.get()

    async def aclose(self) -> None:
        """Stops this iterator: the notifier no longer waits for it."""
        self._inbox.close()

    def __del__(self) -> None:
        self._inbox.close()


def _auth_request(token: str) -> bytes:
    from ._proto.server_notifications_pb2 import ServerMessage

    return ServerMessage(auth_request=ServerMessage.AuthRequest(token=token)).SerializeToString()


def _subscribe_request() -> bytes:
    from ._proto.server_notifications_pb2 import ServerMessage

    request = ServerMessage.SubscribeRequest(
        event_type=ServerMessage.EVENT_TYPE_SERVER_NOTIFICATION
    )
    return ServerMessage(subscribe_request=request).SerializeToString()


class FishjamNotifier:
    """Receives Fishjam's server notifications (room, peer, track, voice activity...).

    Use it as the plain SDK's (handlers, then ``await notifier.connect()``), or as an
    async context manager with an iterator::

        async with FishjamNotifier(fishjam_id, management_token) as notifier:
            async for notification in notifier.notifications():
                ...

    Attributes:
        stats: Counters (:class:`NotifierStats`).
        transport_name: ``"picows"`` or ``"websockets"``.
    """

    def __init__(
        self,
        fishjam_id: str,
        management_token: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        transport: TransportName | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_pending: int = DEFAULT_MAX_PENDING,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
        proxy: str | bool | None = True,
        reconnect: bool | ReconnectPolicy = True,
    ) -> None:
        """Creates a notifier; nothing is connected until :meth:`connect`.

        Args:
            fishjam_id: The Fishjam ID, or the Fishjam URL (``http(s)://host``); the
                socket is ``ws(s)://host/socket/server/websocket``.
            management_token: The management token.
            ssl: An SSL context for ``https``/``wss`` URLs.
            transport: ``"picows"`` or ``"websockets"``; None: ``FISHJAM_FAST_TRANSPORT``
                if set, else picows where it is installed.
            max_message_size: Largest frame accepted, in bytes (default 4 MiB).
            max_fragments: Frames one fragmented message may span (default 1024).
            max_queue: Frames the transport buffers while notifications are being
                handled (default 64); beyond it, reading from the socket pauses.
            max_pending: Notifications each :meth:`notifications` iterator buffers
                (default 1024); beyond it, the notifier waits for its consumer.
            write_limit: Write-buffer high-water mark in bytes (default 64 KiB).
            open_timeout: Seconds allowed for TCP, TLS, the WebSocket handshake and
                the answers to the authentication and subscription requests (default
                10), on every connection attempt; None: no limit.
            close_timeout: Seconds :meth:`close` waits for the closing handshake.
            ping_interval: Seconds between keepalive pings (default 20); None: none.
            ping_timeout: Seconds a pong may take (default 20), then the connection
                is considered lost (and reconnected).
            proxy: True (the default, as for :class:`~fishjam_fast.Agent`): the proxy
                the environment configures (``https_proxy``, ``no_proxy``, ...); a
                proxy URL; None or False: direct.
            reconnect: True (default policy: 30 s budget per outage), a
                :class:`ReconnectPolicy`, or False: a lost connection ends
                :meth:`connect` with :class:`NotifierConnectionError`.

        Raises:
            ValueError, TypeError: a bad URL, limit, timeout, transport or policy.
        """
        if not isinstance(fishjam_id, str) or not fishjam_id:
            raise ValueError(f"fishjam_id must be a non-empty str, got {fishjam_id!r}")
        if not isinstance(management_token, str):
            raise TypeError(
                f"management_token must be a str, not {type(management_token).__name__}"
            )
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive int, got {max_pending!r}")
        self._socket_url = websocket_url(fishjam_url(fishjam_id), SOCKET_PATH)
        self._token = management_token
        self.transport_name: TransportName
        self.transport_name, self._factory, self._options = connection_setup(
            self._socket_url,
            transport,
            ssl=ssl,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            max_queue=max_queue,
            write_limit=write_limit,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            proxy=proxy,
        )
        self._policy = reconnect_policy(reconnect)
        self._max_pending = max_pending
        self._handlers: list[Handler] = []
        self._inboxes: list[_Inbox] = []
        self._consumer_waiter: asyncio.Future[None] | None = None  # _deliver waits for one
        self._listeners: Callbacks[NotifierStateChange] = Callbacks()
        self._state: NotifierState = "idle"
        self._transport: Transport | None = None
        self._runner: asyncio.Task[Any] | None = None  # the task running connect()
        self._background: asyncio.Task[None] | None = None  # connect() of `async with`
        self._ready = asyncio.Event()  # set once subscribed (events bind no loop here)
        self._finished = asyncio.Event()  # set when connect() has ended
        self._error: BaseException | None = None
        self._closing = False
        self.stats = NotifierStats()

    def __repr__(self) -> str:
        return f"FishjamNotifier(url={self._socket_url!r}, state={self._state!r})"

    # -- the plain SDK's API -------------------------------------------------------------

    def on_server_notification(self, handler: Handler) -> Handler:
        """Registers a handler (a decorator); several may be registered, called in order.

        A handler gets every notification (``fishjam_fast.events``) and every
        :class:`~fishjam_fast.events.NotificationGap`. It may be sync or async (then
        awaited before the next notification). An exception it raises is logged and
        counted (``stats.handler_errors``); the notifier carries on.

        Returns:
            The handler, unchanged.

        Raises:
            TypeError: ``handler`` is not callable.
        """
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        self._handlers.append(handler)
        self._consumer_added()
        return handler

    def remove_server_notification_handler(self, handler: Handler) -> bool:
        """Unregisters a handler that :meth:`on_server_notification` registered.

        The handler is called for no notification after this returns, including the
        rest of the one being delivered (a handler may remove itself or another). A
        handler registered twice is removed once. With no handler and no iterator
        left, reading pauses until one comes (the server holds what follows).

        Returns:
            True if it was registered, False if not (nothing changes).
        """
        try:
            self._handlers.remove(handler)
        except ValueError:
            return False
        return True

    async def connect(self) -> None:
        """Connects, authenticates, subscribes, then delivers notifications until
        :meth:`close` (then it returns) or a failure (then it raises).

        A lost connection is reconnected with backoff (see ``reconnect``), after which
        a :class:`~fishjam_fast.events.NotificationGap` is delivered.

        Raises:
            NotifierAuthError: Fishjam refused the management token.
            NotifierConnectionError: the first connection failed (or took longer
                than ``open_timeout``), the server broke the protocol, or the
                connection was lost and not regained within the reconnect budget.
            RuntimeError: the notifier is already connecting or connected, or closed.
        """
        if self._state != "idle":
            raise RuntimeError(f"connect() was already called (state {self._state!r})")
        self._runner = asyncio.current_task()
        self._set_state("connecting", None)
        error: BaseException | None = None
        try:
            transport = await self._open_subscribed()
            self._ready.set()
            self._set_state("connected", None)
            while True:
                closed = await self._read(transport)
                if self._closing:
                    break
                transport = await self._reconnect(closed)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self._finish(error)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Waits until the notifier is subscribed (returns at once if it is).

        Args:
            timeout: Seconds to wait at most; None: no limit.

        Raises:
            TimeoutError: ``timeout`` passed first.
            NotifierAuthError, NotifierConnectionError: connecting failed.
        """
        async with asyncio.timeout(timeout):
            while not self._ready.is_set():
                if self._error is not None:
                    raise self._error
                if self._state == "closed":
                    raise NotifierConnectionError("the notifier is closed")
                waits = {
                    asyncio.ensure_future(self._ready.wait()),
                    asyncio.ensure_future(self._finished.wait()),
                }
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waits:
                        waiter.cancel()

    # -- fishjam_fast's additions -------------------------------------------------------

    def notifications(self) -> NotificationIterator:
        """An async iterator over the notifications (and gaps) from this call on, in
        order: call it before ``async with notifier`` to miss none.

        The iterator buffers up to ``max_pending`` notifications; then the notifier
        waits for it (reading pauses: nothing is dropped). It ends when the notifier
        is closed, after the buffered ones, or raises the error that ended it.
        Several iterators may run at once; each sees every notification. One that is
        no longer used is dropped when garbage collected, or at once by ``aclose()``.

        Returns:
            An async iterator of ``fishjam_fast.events`` notifications and
            NotificationGap.
        """
        inbox = _Inbox(self._max_pending)
        if self._state == "closed":
            inbox.close(self._error)
        self._inboxes.append(inbox)
        self._consumer_added()
        return NotificationIterator(inbox)

    async def close(self) -> None:
        """Closes the connection (at most ``close_timeout``, then aborts); ``connect()``
        returns, iterators end after what they buffered. Safe to call more than once."""
        if self._state in ("idle", "closed"):
            self._state_closed_without_connect()
            return
        self._closing = True
        runner = self._runner
        transport = self._transport
        if self._state == "connected" and transport is not None:
            await transport.close()
        elif runner is not None and not runner.done():
            runner.cancel()  # connecting or waiting to reconnect: stop now
        for inbox in self._inboxes:
            inbox.close()
        self._consumer_added()  # a read loop waiting for a consumer: none will come
        finished = self._finished
        if runner is not None and runner is not asyncio.current_task():
            # a handler may be in the middle of a notification: it gets close_timeout
            try:
                async with asyncio.timeout(self._options.close_timeout):
                    await finished.wait()
            except TimeoutError:
                runner.cancel()
                await finished.wait()
        if self._background is not None and self._background is not asyncio.current_task():
            try:
                await self._background
            except Exception:  # already raised to whoever waited on it, and logged
                pass

    async def __aenter__(self) -> FishjamNotifier:
        """Starts :meth:`connect` in the background and waits until subscribed.

        Raises:
            NotifierAuthError, NotifierConnectionError: connecting failed.
        """
        self._background = asyncio.create_task(self._connect_in_background())
        try:
            await self.wait_ready()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def state(self) -> NotifierState:
        """``"idle"``, ``"connecting"``, ``"connected"``, ``"reconnecting"``, ``"closed"``."""
        return self._state

    def on_state_change(
        self, callback: Callable[[NotifierStateChange], object]
    ) -> Callable[[], None]:
        """Calls ``callback(change)`` at every transition of :attr:`state`, synchronously
        on the loop; it must not block, and an exception it raises is logged.

        Returns:
            A function that unregisters the callback.
        """
        return self._listeners.add(callback)

    # -- internals ----------------------------------------------------------------------

    async def _connect_in_background(self) -> None:
        try:
            await self.connect()
        except Exception as exc:
            if self._ready.is_set():
                logger.error("fishjam_fast notifier ended: %s", exc)

    def _state_closed_without_connect(self) -> None:
        if self._state == "idle":
            self._set_state("closed", None)
            for inbox in self._inboxes:
                inbox.close()

    def _set_state(self, state: NotifierState, cause: Exception | None) -> None:
        previous, self._state = self._state, state
        if previous == state:
            return
        change = NotifierStateChange(state, previous, cause, time.monotonic())
        self._listeners.call(change, "a notifier on_state_change callback failed")

    async def _finish(self, error: BaseException | None) -> None:
        self._error = error
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.abort()
        for inbox in self._inboxes:
            inbox.close(error if isinstance(error, Exception) else None)
        cause = error if isinstance(error, Exception) else None
        self._set_state("closed", cause)
        self._finished.set()

    async def _open_subscribed(self) -> Transport:
        """Opens, authenticates and subscribes, all within ``open_timeout``.

        Raises:
            NotifierAuthError: the token was refused.
            NotifierConnectionError: anything else failed or timed out.
        """
        timeout = self._options.open_timeout
        step = "no WebSocket connection"
        transport: Transport | None = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    transport = await self._factory(self._socket_url, self._options)
                except AgentConnectionError as exc:
                    raise NotifierConnectionError(str(exc), exc.code, exc.reason) from None
                self._transport = transport
                step = "no answer to the authentication request"
                await self._exchange(transport, _auth_request(self._token), "authenticated")
                step = "no answer to the subscription request"
                await self._exchange(transport, _subscribe_request(), "subscribed")
                return transport
        except TimeoutError:
            if transport is not None:
                transport.abort()
            raise NotifierConnectionError(
                f"cannot connect to {self._socket_url}: {step} within open_timeout={timeout:g} s",
                1006,
                "",
            ) from None
        except BaseException:
            if transport is not None:
                transport.abort()
            raise

    async def _exchange(self, transport: Transport, request: bytes, expect: str) -> None:
        """Sends a handshake request and checks the answer."""
        try:
            transport.write(request)
            frame = await transport.recv()
        except TransportClosed as closed:
            if expect == "authenticated" and closed.reason and not closed.by_client:
                raise NotifierAuthError(closed.reason) from None
            reason = f": {closed.reason}" if closed.reason else ""
            raise NotifierConnectionError(
                f"the connection ended before the notifier was {expect} "
                f"(code {closed.code}{reason})",
                closed.code,
                closed.reason,
            ) from None
        try:
            answer = _notifications.decode_server_message(frame)
        except AgentProtocolError as exc:
            raise NotifierConnectionError(f"malformed answer, expected {expect}: {exc}") from None
        wanted = (
            events.ServerMessageAuthenticated
            if expect == "authenticated"
            else events.ServerMessageSubscribeResponse
        )
        if len(answer) != 1 or type(answer[0]) is not wanted:
            raise NotifierConnectionError(f"unexpected answer, expected {expect}: {answer!r}"[:300])

    async def _read(self, transport: Transport) -> TransportClosed:
        """Delivers notifications until the connection ends; returns why it ended."""
        stats = self.stats
        decode = _notifications.decode_server_message
        unknown = events.UnknownNotification
        control = events.CONTROL_MESSAGES
        while True:
            if self._closing:  # close() was called (from a handler, maybe): deliver no more
                return TransportClosed(1000, "", True, by_client=True)
            try:
                frame = transport.recv_nowait()
                if frame is None:
                    frame = await transport.recv()
            except TransportClosed as closed:
                return closed
            stats.frames_received += 1
            stats.bytes_received += len(frame)
            try:
                notifications = decode(frame)
            except AgentProtocolError as exc:
                stats.malformed += 1
                if stats.malformed == 1 or stats.malformed % 1000 == 0:
                    logger.warning(
                        "fishjam_fast notifier skipped a malformed frame (%d so far): %s",
                        stats.malformed,
                        exc,
                    )
                continue
            for notification in notifications:
                if self._closing:
                    break
                if type(notification) is unknown:
                    stats.skipped += 1
                elif not isinstance(notification, control):
                    stats.notifications += 1
                    await self._deliver(notification)

    def _consumer_added(self) -> None:
        waiter, self._consumer_waiter = self._consumer_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _deliver(self, notification: Notification) -> None:
        if self._inboxes:
            self._inboxes = [inbox for inbox in self._inboxes if not inbox.closed]
        while not self._handlers and not self._inboxes and not self._closing:
            # nobody to hand it to yet: reading pauses until a handler or an iterator
            # comes (the server holds the rest), rather than losing it
            self._consumer_waiter = asyncio.get_running_loop().create_future()
            await self._consumer_waiter
        # a snapshot: a handler may remove itself or another while it runs
        for handler in tuple(self._handlers):
            if handler not in self._handlers:
                continue  # removed by one called before it, for this notification
            try:
                result = handler(notification)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.stats.handler_errors += 1
                logger.exception("a fishjam_fast notifier handler failed on %r", notification)
        for inbox in list(self._inboxes):
            await inbox.put(notification)

    async def _reconnect(self, closed: TransportClosed) -> Transport:
        """Reconnects after ``closed`` with backoff, then delivers a NotificationGap.

        Raises:
            NotifierAuthError: the token was refused on reconnection.
            NotifierConnectionError: no reconnection policy, a close that is not worth
                retrying, or the budget was spent.
        """
        self._transport = None
        disconnected_at = time.time()
        reason = f": {closed.reason}" if closed.reason else ""
        cause = NotifierConnectionError(
            f"the notification socket was lost (code {closed.code}{reason})",
            closed.code,
            closed.reason,
        )
        if self._policy is None or closed.code not in RECONNECT_CLOSE_CODES:
            raise cause
        logger.warning("fishjam_fast notifier reconnecting: %s", cause)
        self._set_state("reconnecting", cause)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._policy.budget
        last: Exception = cause
        for delay in self._policy.delays():
            if loop.time() + delay >= deadline:
                break
            await asyncio.sleep(delay)
            self.stats.reconnect_attempts += 1
            try:
                remaining = deadline - loop.time()
                async with asyncio.timeout(remaining if math.isfinite(remaining) else None):
                    transport = await self._open_subscribed()
            except NotifierAuthError:
                raise
            except (NotifierConnectionError, TimeoutError) as exc:
                last = exc
                continue
            self.stats.reconnects += 1
            self._set_state("connected", None)
            gap = events.NotificationGap(disconnected_at, time.time(), str(cause))
            logger.warning("fishjam_fast notifier reconnected after %s", cause)
            await self._deliver(gap)
            return transport
        raise NotifierConnectionError(
            f"could not reconnect within {self._policy.budget:g} s "
            f"({self.stats.reconnect_attempts} attempts); last cause: {last}",
            closed.code,
            closed.reason,
        )
