"""The agent: ``fishjam_fast.agent`` mirrors the plain SDK's ``fishjam.agent``.

Switching an application is one changed import::

    from fishjam_fast.agent import Agent, OutgoingAudioTrackOptions
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from . import _codec
from ._codec import IncomingTrackData, IncomingTrackImage, Track
from ._core.connection import Connection
from ._core.reconnect import (
    ReconnectPolicy,
    SessionStateChange,
    TokenProvider,
    connect_with_retries,
    reconnect_policy,
)
from .enums import TrackEncoding, TrackType
from .errors import AgentAuthError, AgentConnectionError, AgentError, AgentProtocolError
from .session import AgentSession, OutgoingAudioTrackOptions, OutgoingTrack, SessionStats
from .transport.base import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_FRAGMENTS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_QUEUE_BYTES,
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
    "Agent",
    "AgentAuthError",
    "AgentConnectionError",
    "AgentError",
    "AgentProtocolError",
    "AgentSession",
    "IncomingTrackData",
    "IncomingTrackImage",
    "OutgoingAudioTrackOptions",
    "OutgoingTrack",
    "ReconnectPolicy",
    "SessionStateChange",
    "SessionStats",
    "Track",
    "TrackEncoding",
    "TrackType",
]


class Agent:
    """Connects to a Fishjam room as an agent peer.

    Usually made by ``FishjamClient.create_agent`` (the plain SDK's or
    :class:`fishjam_fast.FishjamClient`), or from a plain-SDK agent with
    :meth:`from_sdk`.

    Attributes:
        id: The agent's peer id.
        room_id: The room the agent joins.
        transport_name: The transport it connects over: ``"picows"`` or ``"websockets"``.
    """

    def __init__(
        self,
        id: str,
        room_id: str,
        token: str,
        fishjam_url: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        transport: TransportName | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        ping_interval: float | None = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
        proxy: str | bool | None = True,
        reconnect: bool | ReconnectPolicy = True,
        token_provider: TokenProvider | None = None,
    ) -> None:
        """Creates an agent; nothing is connected until :meth:`connect`.

        Args:
            id: The agent's peer id.
            room_id: The room the agent joins.
            token: The agent's authentication token.
            fishjam_url: The Fishjam URL (``http(s)://host[/prefix]``); the agent
                socket is ``ws(s)://host[/prefix]/socket/agent/websocket``.
            ssl: An SSL context for ``https``/``wss`` URLs; by default the system's
                certificates are verified.
            transport: ``"picows"`` (the default where picows is installed: the
                native WebSocket layer) or ``"websockets"`` (the portable alternative,
                pure Python). None: ``FISHJAM_FAST_TRANSPORT`` if set, else the default.
            max_message_size: Largest message accepted from the server, in bytes
                (default 4 MiB); a larger one fails the connection with code 1009.
            max_fragments: Frames one fragmented message may span (default 1024);
                more fail the connection with code 1009.
            max_queue: Messages buffered while the application does not consume
                :meth:`AgentSession.receive` (default 64); beyond it, reading from the
                socket pauses and the keepalive is suspended.
            max_queue_bytes: Bytes of such messages buffered (default 16 MiB): reading
                also pauses above it, so ``max_queue`` large messages cannot hold
                ``max_queue * max_message_size`` bytes (websockets holds at most three
                messages and one socket read more than this).
            write_limit: Write-buffer high-water mark in bytes (default 64 KiB);
                sending waits above it.
            open_timeout: Seconds allowed for TCP, TLS, the WebSocket handshake and
                the server's answer to the authentication request (default 10);
                None: no limit. Each reconnection attempt has the same allowance.
            close_timeout: Seconds :meth:`AgentSession.disconnect` waits for the
                closing handshake before aborting the socket (default 5).
            ping_interval: Seconds between keepalive pings (default 20); None
                disables the keepalive, and then nothing bounds a send into a server
                that stopped reading.
            ping_timeout: Seconds a pong may take (default 20). The timer starts when
                the ping is queued, so a server that stopped reading is detected even
                while the write buffer is full: the connection fails with code 1011
                and a waiting ``send_chunk`` raises :class:`AgentConnectionError`
                (or the session reconnects, see ``reconnect``). A send into a full
                buffer is bounded by ``ping_interval + ping_timeout`` this way. While
                reading is paused because the application does not consume
                ``receive()``, the keepalive is suspended (the pong would wait behind
                unread data); the server's own pings then go unanswered too, so a
                server with a keepalive of its own may close the connection if the
                pause outlasts its timeout.
            proxy: True (the default) uses the proxy the environment configures, as
                the plain SDK (websockets) does: for a ``wss://`` URL ``wss_proxy``,
                ``socks_proxy``, ``https_proxy`` (or their upper-case names), for
                ``ws://`` also ``http_proxy``; hosts in ``no_proxy`` are reached
                directly, and with none of these set the connection is direct. A
                proxy URL (``http://``, ``https://``, ``socks5h://``, ...) connects
                through that proxy. None or False connect directly, whatever the
                environment says. The picows transport takes ``http``, ``https``,
                ``socks4`` and ``socks5`` proxies; ``socks4a`` and ``socks5h`` need
                ``transport="websockets"``.
            reconnect: After an abnormal end of the connection (a drop, 1001, 1011, a
                keepalive timeout), reconnect and carry on: True (the default) with a
                default :class:`ReconnectPolicy` (30 s budget per outage), a
                :class:`ReconnectPolicy`, or False to end the session as the plain SDK
                does. See :attr:`AgentSession.state`. The first connection is retried
                only when the policy says so: ``ReconnectPolicy(retry_connect=True)``.
            token_provider: An async callable returning a fresh token (e.g. from the
                REST ``refresh_token``), asked once per outage when the server refuses
                the agent's token on reconnection.

        Raises:
            ValueError, TypeError: a bad URL, ``ssl`` for a plain URL, an unknown
                transport, a limit that is not a positive int, a timeout that is not a
                positive number, a bad ``proxy`` (or one picows cannot use), or a
                bad ``reconnect`` or ``token_provider``.
        """
        self.id = id
        self.room_id = room_id
        self._token = token
        self._fishjam_url = fishjam_url
        self._socket_url = websocket_url(fishjam_url)
        self.transport_name: TransportName
        self.transport_name, self._transport_factory, self._options = connection_setup(
            self._socket_url,
            transport,
            ssl=ssl,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            write_limit=write_limit,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            proxy=proxy,
        )
        self._reconnect_policy = reconnect_policy(reconnect)
        if token_provider is not None and not callable(token_provider):
            raise TypeError(
                f"token_provider must be an async callable, not {type(token_provider).__name__}"
            )
        self._token_provider = token_provider

    def __repr__(self) -> str:
        return f"Agent(id={self.id!r}, room_id={self.room_id!r}, url={self._socket_url!r})"

    @classmethod
    def from_sdk(cls, agent: Any, **options: Any) -> Agent:
        """Makes a fishjam_fast agent from a plain SDK ``fishjam.agent.Agent``.

        The plain SDK's agent exposes only ``id`` and ``room_id``: its token and
        Fishjam URL are its private ``_token`` and ``_fishjam_url``, read here and only
        here (the supported SDK range is pinned and tested; a version without them
        raises ``TypeError`` saying so). Code that creates its agents itself needs no
        plain agent: :class:`~fishjam_fast.AsyncFishjamClient` (or
        ``fishjam_fast.FishjamClient``) ``.create_agent`` returns this class directly.

        Args:
            agent: The plain SDK's agent, e.g. from its ``FishjamClient.create_agent``.
            **options: Keyword options of :class:`Agent` (``ssl``, ``max_queue``, ...).

        Raises:
            TypeError: ``agent`` is not a plain SDK agent (or one of a version whose
                token and URL cannot be read).
        """
        try:
            return cls(agent.id, agent.room_id, agent._token, agent._fishjam_url, **options)
        except AttributeError as exc:
            raise TypeError(f"not a fishjam.agent.Agent: {agent!r} ({exc})") from None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AgentSession]:
        """Connects and authenticates the agent.

        Yields:
            The session, to send audio and receive peers' audio. It is closed when the
            ``async with`` block ends (at most ``close_timeout`` for the closing
            handshake, then the socket is aborted).

        Raises:
            AgentAuthError: the server closed the connection with a reason (e.g.
                ``"invalid token"``) instead of authenticating. Never retried.
            AgentConnectionError: the server could not be reached, the connection
                dropped, or no answer to the authentication request came within
                ``open_timeout``. With ``ReconnectPolicy(retry_connect=True)``
                transient failures are retried first, within the policy's budget
                (see :class:`ReconnectPolicy`); then the error says how many attempts
                were made and the last cause.
        """
        # the session core, first: it counts the authentication's traffic
        conn = Connection(None, SessionStats(), asyncio.get_running_loop())
        policy = self._reconnect_policy
        if policy is not None and policy.retry_connect:
            transport, first = await connect_with_retries(self, policy, conn)
        else:
            conn.stats.connect_attempts += 1
            transport, first = await self._open_authenticated(conn)
        session = AgentSession(self, transport, conn=conn)
        if first is not None:
            session._conn.backlog.append(first)
        try:
            yield session
        finally:
            # closes the socket and marks the session ended: later sends raise
            # AgentConnectionError, a later receive() ends at once
            await session.disconnect()

    async def _open_authenticated(
        self, conn: Connection
    ) -> tuple[Transport, IncomingTrackData | IncomingTrackImage | None]:
        """Opens a connection and authenticates, all within ``open_timeout``."""
        timeout = self._options.open_timeout
        transport: Transport | None = None
        try:
            async with asyncio.timeout(timeout):
                transport = await self._open()
                return transport, await self._authenticate(transport, self._token, conn)
        except TimeoutError:
            if transport is None:
                what = "no WebSocket connection"
            else:
                transport.abort()
                what = "no answer to the authentication request"
            raise AgentConnectionError(
                f"cannot connect to {self._socket_url}: {what} within open_timeout={timeout:g} s",
                1006,
                "",
            ) from None
        except BaseException:
            if transport is not None:
                transport.abort()
            raise

    async def _open(self) -> Transport:
        """Opens a new connection: the one place that makes transports (connect() and
        reconnections both call it)."""
        return await self._transport_factory(self._socket_url, self._options)

    async def _authenticate(
        self, transport: Transport, token: str, conn: Connection
    ) -> IncomingTrackData | IncomingTrackImage | None:
        """Authenticates on a new connection, counting the traffic in the session core
        ``conn`` (whose transport it is not yet).

        Returns:
            The audio or image message the server answered with, if it was not
            ``authenticated`` (kept for ``receive()``).

        Raises:
            AgentAuthError: the server closed the connection with a reason instead of
                answering (``transport.close_code`` tells a refusal, 1000, apart).
            AgentConnectionError: the connection dropped or failed first, or the
                answer was malformed.
        """
        request = _codec.encode_auth_request(token)
        try:
            transport.write(request)
            conn.count_sent(1, len(request))
            # Fishjam answers `authenticated`, or closes the socket with the reason
            frame = await transport.recv()
        except TransportClosed as closed:
            if closed.reason and not closed.by_client:
                raise AgentAuthError(closed.reason, closed.code) from None
            raise AgentConnectionError(
                f"the connection ended before authentication (code {closed.code}"
                + (f": {closed.reason})" if closed.reason else ")"),
                closed.code,
                closed.reason,
            ) from None
        conn.count_received(len(frame), None)
        try:
            message = _codec.decode_response(frame)
        except AgentProtocolError as exc:
            raise AgentConnectionError(f"malformed answer to authentication: {exc}") from exc
        conn.stats.connected_at = time.monotonic()
        if isinstance(message, IncomingTrackData | IncomingTrackImage):
            return message
        return None
