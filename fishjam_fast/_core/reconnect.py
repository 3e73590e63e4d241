"""Automatic reconnection: the policy (backoff, jitter, budget), the session states, and
one outage's attempts (open a transport, authenticate, re-add the live tracks).

The session's lifecycle (``lifecycle.py``, the base of ``AgentSession``) decides *when*
to reconnect and keeps its tracks and its ``receive()`` iteration; this module does
*how*. It only talks to the agent through its
transport factory (``Agent._open``) and authentication step (``Agent._authenticate``),
so it works on whatever :class:`~fishjam_fast.transport.base.Transport` the agent opens.
"""

from __future__ import annotations

import asyncio
import math
import random
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .. import logs
from ..errors import AgentAuthError, AgentConnectionError
from ..logs import logger
from ..transport.base import TransportClosed

if TYPE_CHECKING:
    from .._codec import IncomingTrackData, IncomingTrackImage
    from ..agent import Agent
    from ..track import OutgoingTrack
    from ..transport.base import Transport
    from .connection import Connection

__all__ = [
    "RECONNECT_CLOSE_CODES",
    "ReconnectPolicy",
    "SessionState",
    "SessionStateChange",
    "TokenProvider",
]

SessionState = Literal["connected", "reconnecting", "closed"]
"""``"connected"``; ``"reconnecting"`` after an abnormal end, until the session is back
or gives up; ``"closed"`` for good."""

TokenProvider = Callable[[], Awaitable[str]]
"""An async callable returning a fresh token for the agent (e.g. from the REST
``refresh_token``), asked when the server refuses the agent's token on reconnection."""

RECONNECT_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
"""Close codes after which a session reconnects (RFC 6455 section 7.4.1 and the IANA
registry): going away (a server shutting down for a deploy), dropped without a close
frame (TCP reset, network loss), internal error (also a keepalive timeout), service
restart, try again later, bad gateway. A normal close (1000: ``Peer removed``, ``Room
stopped``, ``disconnect()``) ends the session; so do protocol errors (1002, 1003, 1007,
1008, 1009, 1010), which the same connection would hit again."""

# Refusals that say the old connection is still known to the server (it has not yet
# noticed the drop): worth retrying, not an authentication failure.
TRANSIENT_REFUSALS = frozenset({"peer already connected"})


DEFAULT_STABLE_AFTER = 5.0
"""Seconds a reconnected connection must last before its drop starts a new outage."""


def _seconds(name: str, value: object, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < 0 or (math.isinf(value) and not allow_inf):
        allowed = "a number >= 0 (math.inf: no limit)" if allow_inf else "a finite number >= 0"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a session reconnects after an abnormal end of its connection.

    Attempt ``n`` (0, 1, 2...) of an outage starts ``min(max_delay, first_delay * 2**n)``
    seconds after the previous one ended, shortened by a random fraction of up to
    ``jitter`` (1.0: anywhere between 0 and the full delay, so that agents dropped
    together do not come back together). Each attempt opens a connection, authenticates
    with the agent's token and re-adds every live track; it may take up to the agent's
    ``open_timeout``. The outage ends when an attempt succeeds, when the server refuses
    the token, or when ``budget`` seconds have passed since the drop.

    With ``retry_connect=True`` the first connection (:meth:`Agent.connect`) follows
    the same policy: it attempts at once, and after a transient failure retries with
    the same delays while ``budget`` seconds from the call last. Transient: the server
    refused or reset the TCP connection, did not answer within ``open_timeout``,
    answered the handshake with HTTP 408, 429, 500, 502, 503 or 504, closed the socket
    during authentication with code 1001, 1006, 1011, 1012, 1013 or 1014 (a restart,
    "try again later"), or refused with "peer already connected" (a previous
    connection of the same agent the server has not yet seen end). Anything else is
    raised at once: a refused token (:class:`AgentAuthError`), a TLS certificate that
    does not verify, any other HTTP answer (404: a wrong URL), a malformed answer, a
    proxy that cannot be used.

    A connection that drops less than ``stable_after`` seconds after it was made (a
    server that accepts, authenticates, then closes 1001/1011 or resets, every time)
    did not end the outage: the next attempt continues it, with the next, longer delay
    and the budget counted from the first drop, so such a storm ends in
    :class:`AgentConnectionError` (with the last cause) once ``budget`` is spent.

    Attributes:
        budget: Seconds an outage may last before the session gives up with
            :class:`AgentConnectionError` (``math.inf``: never); with
            ``retry_connect``, also the seconds ``connect()`` may spend retrying.
        first_delay: Seconds before the first attempt (before jitter).
        max_delay: Longest delay between attempts (before jitter).
        jitter: Fraction of each delay drawn at random, in [0, 1].
        retry_connect: Retry the first connection too (default False: ``connect()``
            fails at the first error, as the plain SDK's does).
        stable_after: Seconds a reconnected connection must stay up before a drop
            starts a new outage (a fresh budget, the delays from ``first_delay``);
            0 makes every successful reconnection end its outage.
    """

    budget: float = 30.0
    first_delay: float = 0.2
    max_delay: float = 5.0
    jitter: float = 1.0
    retry_connect: bool = False
    stable_after: float = DEFAULT_STABLE_AFTER

    def __post_init__(self) -> None:
        budget = _seconds("budget", self.budget, allow_inf=True)
        if budget == 0:
            raise ValueError("budget must be > 0 seconds; to never reconnect use reconnect=False")
        first_delay = _seconds("first_delay", self.first_delay)
        max_delay = _seconds("max_delay", self.max_delay)
        if max_delay < first_delay:
            raise ValueError(f"max_delay ({max_delay}) must be >= first_delay ({first_delay})")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, int | float):
            kind = type(self.jitter).__name__
            raise TypeError(f"jitter must be a fraction in [0, 1], not {kind}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be a fraction in [0, 1], got {self.jitter!r}")
        if not isinstance(self.retry_connect, bool):
            kind = type(self.retry_connect).__name__
            raise TypeError(f"retry_connect must be True or False, not {kind}")
        stable_after = _seconds("stable_after", self.stable_after)
        for name, value in (
            ("stable_after", stable_after),
            ("budget", budget),
            ("first_delay", first_delay),
            ("max_delay", max_delay),
            ("jitter", float(self.jitter)),
        ):
            object.__setattr__(self, name, value)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The delays before each attempt of one outage, jittered (an endless iterator).

        Args:
            rng: The random source (tests pass a seeded one); ``random`` by default.
        """
        uniform = rng.random if rng is not None else random.random
        delay, jitter = self.first_delay, self.jitter
        while True:
            yield delay * (1.0 - jitter * uniform())
            delay = min(self.max_delay, delay * 2.0)


def reconnect_policy(reconnect: object) -> ReconnectPolicy | None:
    """The policy an ``Agent(reconnect=...)`` argument stands for (None: never).

    Raises:
        TypeError: neither a bool nor a :class:`ReconnectPolicy`.
    """
    if reconnect is True:
        return ReconnectPolicy()
    if reconnect is False:
        return None
    if isinstance(reconnect, ReconnectPolicy):
        return reconnect
    raise TypeError(
        f"reconnect must be True, False or a ReconnectPolicy, not {type(reconnect).__name__}"
    )


@dataclass(frozen=True)
class SessionStateChange:
    """A transition of :attr:`AgentSession.state`, handed to the callbacks registered with
    :meth:`AgentSession.on_state_change`.

    Attributes:
        state: The new state.
        previous: The state before.
        cause: Why: for ``"reconnecting"`` the :class:`AgentConnectionError` describing the
            drop (``.code``, ``.reason``); for ``"closed"`` the error that ended the
            session (None after a normal close); None for ``"connected"``.
        at: ``time.monotonic()`` of the transition.
        lost_audio: On a drop (to ``"reconnecting"``, or to ``"closed"`` after an
            abnormal end): for each track that had audio queued at the server, the
            seconds of it (by the track's playout clock) that the server dropped with
            the connection; empty otherwise.
        unsent_bytes: On a drop: bytes written to the connection that died that the
            server never got (its write buffer and the kernel's send queue); 0
            otherwise (``disconnect()`` returns what it could not send).
    """

    state: SessionState
    previous: SessionState
    cause: Exception | None
    at: float
    lost_audio: Mapping[str, float] = field(default_factory=dict)
    unsent_bytes: int = 0


def connection_error(closed: TransportClosed, what: str) -> AgentConnectionError:
    """An AgentConnectionError saying ``what`` happened, with the close code and reason."""
    reason = f": {closed.reason}" if closed.reason else ""
    return AgentConnectionError(f"{what} (code {closed.code}{reason})", closed.code, closed.reason)


RETRIED_HTTP_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Answers to the WebSocket handshake after which a first connection is retried: the
server is busy, restarting or behind a gateway that is (RFC 9110 section 15)."""


def transient(error: AgentConnectionError | AgentAuthError) -> bool:
    """Whether a failed first connection is worth retrying (see ReconnectPolicy)."""
    if isinstance(error, AgentAuthError):
        # Fishjam refuses with 1000; other codes are a server going away meanwhile
        return error.reason in TRANSIENT_REFUSALS or error.code in RECONNECT_CLOSE_CODES
    if error.code is not None and error.code != 1006:
        return error.code in RECONNECT_CLOSE_CODES  # closed during authentication
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ssl.SSLCertVerificationError | ValueError):
        return False  # a certificate or a proxy setting: the same next time
    response = getattr(cause, "response", None)  # websockets' and picows' HTTP errors
    status = getattr(response, "status_code", getattr(response, "status", None))
    if isinstance(status, int):
        return status in RETRIED_HTTP_STATUSES
    return error.code == 1006  # refused, reset, timed out, dropped


async def connect_with_retries(
    agent: Agent, policy: ReconnectPolicy, conn: Connection
) -> tuple[Transport, IncomingTrackData | IncomingTrackImage | None]:
    """:meth:`Agent.connect`'s attempts under ``policy`` (``retry_connect``): the first
    at once, then after each transient failure the policy's next delay, while the
    budget (from now) lasts; each attempt has the agent's ``open_timeout``.

    Raises:
        AgentAuthError: the server refused the token (at once).
        AgentConnectionError: a failure that is not transient (at once), or the budget
            was spent: it says how many attempts were made and the last cause.
    """
    stats = conn.stats  # (the session core ``conn`` counts each attempt's traffic)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.budget
    delays = policy.delays()
    last: AgentConnectionError | AgentAuthError | None = None
    while True:
        stats.connect_attempts += 1
        delay = math.inf
        try:
            async with asyncio.timeout_at(deadline if math.isfinite(deadline) else None):
                return await agent._open_authenticated(conn)
        except (AgentConnectionError, AgentAuthError) as exc:
            if not transient(exc):
                raise
            last, delay = exc, next(delays)
        except TimeoutError:
            pass  # the budget ran out during the attempt: the cause is the one before
        if loop.time() + delay >= deadline:
            code = last.code if isinstance(last, AgentConnectionError) else 1006
            raise AgentConnectionError(
                f"could not connect within {policy.budget:g} s "
                f"({stats.connect_attempts} attempts); last cause: "
                + (str(last) if last is not None else "no answer within the budget"),
                code,
                last.reason if last is not None else "",
            ) from last
        logger.debug(
            "agent %s: connect attempt %d failed: %s; retrying in %.3f s",
            agent.id,
            stats.connect_attempts,
            last,
            delay,
        )
        logs.report.connect_failed()
        await asyncio.sleep(delay)


class _Refused(Exception):
    """The server closed the socket during authentication with a close frame 1000."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def reopen(
    agent: Agent,
    policy: ReconnectPolicy,
    cause: TransportClosed,
    conn: Connection,
    live_tracks: Callable[[], Iterable[OutgoingTrack]],
    *,
    since: float | None = None,
    delays: Iterator[float] | None = None,
) -> tuple[Transport, IncomingTrackData | IncomingTrackImage | None]:
    """Reconnects after ``cause``: attempts with backoff until one succeeds.

    ``since`` (loop time the outage began, default now) and ``delays`` (the policy's
    delays, default a fresh ``policy.delays()``) continue an outage whose last
    connection was not stable (see ``ReconnectPolicy.stable_after``).

    A successful attempt has opened a transport, authenticated and re-added every track
    ``live_tracks()`` returns at that moment, in that order, before anything else is sent.

    Returns:
        The new transport, and an audio or image message the server sent in answer to
        the authentication, if it did.

    Raises:
        AgentAuthError: the server refused the token (and the agent's ``token_provider``,
            if any, gave none that worked).
        AgentConnectionError: the budget was spent; it says the last cause.
    """
    stats = conn.stats  # (the session core ``conn`` counts each attempt's traffic)
    loop = asyncio.get_running_loop()
    deadline = (loop.time() if since is None else since) + policy.budget
    open_timeout = agent._options.open_timeout
    if open_timeout is None:
        open_timeout = math.inf
    last: AgentConnectionError = connection_error(cause, "the connection to Fishjam was lost")
    token = agent._token
    asked_for_token = False
    retry_now = False
    for delay in delays if delays is not None else policy.delays():
        if not retry_now:
            if loop.time() + delay >= deadline:
                break
            await asyncio.sleep(delay)
        retry_now = False
        stats.reconnect_attempts += 1
        attempt_deadline = min(deadline, loop.time() + open_timeout)
        try:
            async with asyncio.timeout_at(attempt_deadline):
                return await _attempt(agent, token, conn, live_tracks)
        except _Refused as refused:
            if refused.reason in TRANSIENT_REFUSALS:
                last = AgentConnectionError(
                    f"the server refused to reconnect: {refused.reason}", 1000, refused.reason
                )
                continue
            provider = agent._token_provider
            if provider is None or asked_for_token:
                raise AgentAuthError(refused.reason) from None
            asked_for_token = True
            token = await _fresh_token(provider, refused.reason, deadline)
            retry_now = True
        except AgentConnectionError as exc:
            last = exc
        except TimeoutError:
            if attempt_deadline >= deadline:
                break  # the budget is spent; the cause is the one before
            last = AgentConnectionError(
                f"no answer within open_timeout ({open_timeout:g} s)", 1006, ""
            )
    # sleep out the budget: the session gives up when it is spent, not before
    await asyncio.sleep(max(0.0, deadline - loop.time()))
    raise AgentConnectionError(
        f"could not reconnect within {policy.budget:g} s "
        f"({stats.reconnect_attempts} attempts); last cause: {last}",
        last.code,
        last.reason,
    ) from last


async def _fresh_token(provider: TokenProvider, refusal: str, deadline: float) -> str:
    """Asks ``provider`` for a token, by ``deadline`` (loop time).

    Raises:
        AgentAuthError: the provider failed or timed out (chained), with the refusal.
        TypeError: it returned something other than a str.
    """
    try:
        async with asyncio.timeout_at(deadline):
            token = await provider()
    except Exception as exc:
        raise AgentAuthError(refusal) from exc
    if not isinstance(token, str):
        raise TypeError(f"token_provider must return a str, not {type(token).__name__}")
    return token


async def _attempt(
    agent: Agent,
    token: str,
    conn: Connection,
    live_tracks: Callable[[], Iterable[OutgoingTrack]],
) -> tuple[Transport, IncomingTrackData | IncomingTrackImage | None]:
    """One attempt: open, authenticate with ``token``, re-add the tracks (counted in
    the session core ``conn``, whose transport the new one is not yet).

    Raises:
        _Refused: the server refused the token.
        AgentConnectionError: the connection failed or dropped.
    """
    transport = await agent._open()
    authenticated = False
    try:
        try:
            first = await agent._authenticate(transport, token, conn)
            authenticated = True
        except AgentAuthError as refused:
            if transport.close_code == 1000:
                raise _Refused(refused.reason) from None
            raise AgentConnectionError(
                f"the connection dropped during authentication (code {transport.close_code})",
                transport.close_code or 1006,
                transport.close_reason,
            ) from None
        frames = [memoryview(track._add_track_frame()) for track in live_tracks()]
        if frames:
            await transport.send_many(frames)
            conn.count_sent(len(frames), sum(frame.nbytes for frame in frames))
    except TransportClosed as closed:
        await transport.close()
        raise connection_error(closed, "the connection dropped while re-adding tracks") from None
    except BaseException:
        if authenticated:
            await transport.close()
        else:
            # a server that never answered the authentication would not answer a close
            # either: an attempt costs open_timeout, not open_timeout + close_timeout
            transport.abort()
        raise
    agent._token = token
    return transport, first
