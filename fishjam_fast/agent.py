"""The agent: ``fishjam_fast.agent`` mirrors the plain SDK's ``fishjam.agent``.

Switching an application is one changed import::

    from fishjam_fast.agent import Agent, OutgoingAudioTrackOptions
"""

from __future__ import annotations

import ssl as ssl_module
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from . import _codec
from ._codec import IncomingTrackData, IncomingTrackImage, Track
from ._reconnect import ReconnectPolicy, SessionStateChange, TokenProvider, reconnect_policy
from ._transport import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_QUEUE,
    DEFAULT_WRITE_LIMIT,
    Transport,
    TransportClosed,
    WebsocketsTransport,
    websocket_url,
)
from .enums import TrackEncoding, TrackType
from .errors import AgentAuthError, AgentConnectionError, AgentError, AgentProtocolError
from .session import AgentSession, OutgoingAudioTrackOptions, OutgoingTrack, SessionStats

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
    """

    def __init__(
        self,
        id: str,
        room_id: str,
        token: str,
        fishjam_url: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        open_timeout: float | None = 10.0,
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
            max_message_size: Largest frame accepted from the server, in bytes.
            max_queue: Frames buffered while the application does not consume
                :meth:`AgentSession.receive`; beyond it, reading from the socket pauses.
            write_limit: Write-buffer high-water mark in bytes; sending waits above it.
            open_timeout: Seconds allowed to open the connection.
            reconnect: After an abnormal end of the connection (a drop, 1001, 1011, a
                keepalive timeout), reconnect and carry on: True (the default) with a
                default :class:`ReconnectPolicy` (30 s budget per outage), a
                :class:`ReconnectPolicy`, or False to end the session as the plain SDK
                does. See :attr:`AgentSession.state`.
            token_provider: An async callable returning a fresh token (e.g. from the
                REST ``refresh_token``), asked once per outage when the server refuses
                the agent's token on reconnection.

        Raises:
            ValueError, TypeError: a bad URL, ``ssl`` for a plain URL, or a bad
                ``reconnect`` or ``token_provider``.
        """
        self.id = id
        self.room_id = room_id
        self._token = token
        self._fishjam_url = fishjam_url
        self._socket_url = websocket_url(fishjam_url)
        if ssl is not None and not self._socket_url.startswith("wss://"):
            raise ValueError("an ssl context was given for a plain http:// or ws:// Fishjam URL")
        self._transport_options: dict[str, Any] = {
            "ssl": ssl,
            "max_message_size": max_message_size,
            "max_queue": max_queue,
            "write_limit": write_limit,
            "open_timeout": open_timeout,
        }
        self._open_timeout = open_timeout
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

        Args:
            agent: The plain SDK's agent, e.g. from its ``FishjamClient.create_agent``.
            **options: Keyword options of :class:`Agent` (``ssl``, ``max_queue``, ...).
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
            ``async with`` block ends.

        Raises:
            AgentAuthError: the server refused the token (``.reason`` says why).
            AgentConnectionError: the server could not be reached.
        """
        transport = await self._open()
        session: AgentSession | None = None
        try:
            stats = SessionStats()
            first = await self._authenticate(transport, self._token, stats)
            session = AgentSession(self, transport, stats=stats)
            if first is not None:
                session._backlog.append(first)
            yield session
        finally:
            if session is not None:
                # closes the socket and marks the session ended: later sends raise
                # AgentConnectionError, a later receive() ends at once
                await session.disconnect()
            else:
                await transport.close()

    async def _open(self) -> Transport:
        """Opens a new connection: the one place that makes transports (connect() and
        reconnections both call it)."""
        return await WebsocketsTransport.open(self._socket_url, **self._transport_options)

    async def _authenticate(
        self, transport: Transport, token: str, stats: SessionStats
    ) -> IncomingTrackData | IncomingTrackImage | None:
        """Authenticates on a new connection, counting the traffic in ``stats``.

        Returns:
            The audio or image message the server answered with, if it was not
            ``authenticated`` (kept for ``receive()``).

        Raises:
            AgentAuthError: the server closed the connection instead of answering.
            AgentConnectionError: the answer was malformed.
        """
        request = _codec.encode_auth_request(token)
        try:
            await transport.send(request)
            stats.messages_sent += 1
            stats.bytes_sent += len(request)
            # Fishjam answers `authenticated`, or closes the socket with the reason
            frame = await transport.recv()
        except TransportClosed:
            raise AgentAuthError(transport.close_reason) from None
        stats.messages_received += 1
        stats.bytes_received += len(frame)
        try:
            message = _codec.decode_response(frame)
        except AgentProtocolError as exc:
            raise AgentConnectionError(f"malformed answer to authentication: {exc}") from exc
        stats.connected_at = time.monotonic()
        if isinstance(message, IncomingTrackData | IncomingTrackImage):
            return message
        return None
