"""The connection lifecycle of an agent session: ``connected``, ``reconnecting``,
``closed``.

:class:`SessionLifecycle` is the base of :class:`~fishjam_fast.session.AgentSession`. It
decides what an end of the connection means (a normal close ends the session; an
abnormal one starts a reconnection when the agent's policy allows), runs the outage
(the attempts themselves are :func:`fishjam_fast._core.reconnect.reopen`), tells the
application of every transition, and makes senders wait out an outage.
``session.py`` keeps sending and receiving; it calls :meth:`_lost` whenever its
transport reports a close.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

from .. import logs
from .._callbacks import Callbacks
from ..errors import AgentAuthError, AgentConnectionError
from ..logs import logger
from ..transport.base import NORMAL_CLOSE_CODES, Transport, TransportClosed
from .reconnect import (
    RECONNECT_CLOSE_CODES,
    SessionState,
    SessionStateChange,
    connection_error,
    reopen,
)

if TYPE_CHECKING:
    from ..agent import Agent
    from ..stats import SessionStats
    from ..track import OutgoingTrack
    from .connection import Connection

AfterDrop = Literal["resend", "skip", "fail"]
"""What ``_send`` does with a frame when the connection drops before or while it is
sent: ``"resend"`` it on the new connection (audio), ``"skip"`` it because it only
meant something on the old one (the reconnection re-adds the live tracks, and nothing
is queued on the server after a drop), or ``"fail"`` with AgentConnectionError at once
(image captures are never repeated behind the application's back)."""

SendPolicy = Literal["resend", "skip", "fail", "now"]
"""``AgentSession._send``'s wait-or-fail policy: an :data:`AfterDrop` (waits for room
in the write buffer, and what becomes of the frames after a drop), or ``"now"``: never
waits; raises AgentConnectionError unless the connection is open now and
AgentWouldBlockError while the write buffer is full, having sent nothing
(``send_chunk_nowait``, ``send_pcm_nowait``)."""


class SessionLifecycle:
    """The state of a session's connection, and what happens when it ends."""

    agent: Agent
    stats: SessionStats
    # the session core: the connection's state (transport, outage and closed state,
    # backlog, image waiters) lives there; it calls _lost through its on_lost field
    _conn: Connection

    async def _use_transport(self, transport: Transport) -> None:
        """Switches to a new connection (the session defines it)."""
        raise NotImplementedError

    def _init_lifecycle(self) -> None:
        # (self._conn.closed: what ended the session, None while it goes on)
        # live tracks, re-added on a new connection after a drop
        self._tracks: dict[str, OutgoingTrack] = {}
        self._state: SessionState = "connected"
        self._listeners: Callbacks[SessionStateChange] = Callbacks()
        # (self._conn.outage: while reconnecting, resolved when connected again, or
        # closed by disconnect(); failed with the error that ended the session otherwise)
        self._drop: AgentConnectionError | None = None  # what started the outage
        self._reconnector: asyncio.Task[None] | None = None
        # the application ended the session (disconnect()): a drop now ends it too
        self._disconnected = False
        # when the current connection was made (time.monotonic()), and the outage it ended, if
        # it was a reconnection: (loop time of the first drop, the policy's delays). A
        # drop before ReconnectPolicy.stable_after continues that outage
        self._connected_at = time.monotonic()
        self._last_outage: tuple[float, Iterator[float]] | None = None

    @property
    def closed(self) -> bool:
        """True once the connection has ended, for whatever reason."""
        return self._conn.closed is not None

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code once the session ended (1006: dropped), else None."""
        return (
            self._conn.closed.code
            if self._conn.closed is not None
            else self._conn.transport.close_code
        )

    @property
    def close_reason(self) -> str:
        """The server's close reason once the session ended, e.g. ``"Peer removed"``."""
        return (
            self._conn.closed.reason
            if self._conn.closed is not None
            else self._conn.transport.close_reason
        )

    @property
    def state(self) -> SessionState:
        """``"connected"``, ``"reconnecting"`` (after an abnormal end, while the agent's
        :class:`ReconnectPolicy` allows), or ``"closed"``."""
        return self._state

    def on_state_change(
        self, callback: Callable[[SessionStateChange], object]
    ) -> Callable[[], None]:
        """Calls ``callback(change)`` at every transition of :attr:`state`.

        The callback runs on the event loop, synchronously, at the transition: to
        ``"reconnecting"`` (``change.cause`` is the drop), back to ``"connected"``, and
        to ``"closed"`` (``change.cause`` is the error that ended the session, or None).
        It must not block; an exception it raises is logged and ignored.

        Args:
            callback: Called with a :class:`SessionStateChange`.

        Returns:
            A function that unregisters the callback.
        """
        return self._listeners.add(callback)

    def _set_state(
        self,
        state: SessionState,
        cause: Exception | None,
        lost_audio: dict[str, float] | None = None,
        unsent_bytes: int = 0,
    ) -> None:
        previous, self._state = self._state, state
        # the process's aggregated outage line (fishjam_fast.logs) counts transitions
        report = logs.report
        if state == "reconnecting":
            report.lost(_cause(cause))
        elif previous == "reconnecting":
            if state == "connected":
                report.recovered()
            elif cause is not None:
                report.gave_up(_give_up_cause(cause))
            else:
                report.left()  # disconnect() during the outage
        change = SessionStateChange(
            state, previous, cause, time.monotonic(), lost_audio or {}, unsent_bytes
        )
        self._listeners.call(change, "a state-change callback of agent %s failed", self.agent.id)

    def _loss(self, transport: Transport) -> tuple[dict[str, float], int]:
        """What the end of ``transport`` cost: each track's audio queued at the server
        (by its playout clock) and the bytes written that the server never got; counted
        in ``stats``, and told in the state change (never silent)."""
        now = time.monotonic()
        lost = {
            track.id: seconds
            for track in self._tracks.values()
            if (seconds := track._clock.queued(now)) > 0.0
        }
        unsent = transport.unsent_bytes
        stats = self.stats
        stats.audio_lost_seconds += sum(lost.values())
        stats.bytes_unsent += unsent
        return lost, unsent

    def _end(
        self,
        closed: TransportClosed,
        error: Exception | None = None,
        lost_audio: dict[str, float] | None = None,
        unsent_bytes: int = 0,
    ) -> None:
        """Ends the session for good; ``error``: what ended it, for those waiting out an
        outage (None: a normal close); ``lost_audio``, ``unsent_bytes``: what the end
        cost (see :class:`SessionStateChange`)."""
        if self._conn.closed is None:
            self._conn.closed = closed
            self.stats.closed_at = time.monotonic()
            self._fail_image_waiters(connection_error(closed, "the session ended"))
            outage, self._conn.outage = self._conn.outage, None
            if outage is not None and not outage.done():
                if error is None:
                    outage.set_result(None)
                else:
                    outage.set_exception(error)
                    outage.exception()  # nobody need be waiting: do not log it as lost
            cause: Exception | None = error
            if cause is None and not closed.ok:
                cause = connection_error(closed, "the connection to Fishjam was lost")
            self._set_state("closed", cause, lost_audio, unsent_bytes)

    def _fail_image_waiters(self, error: AgentConnectionError) -> None:
        for waiter in self._conn.image_waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # its request may have ended first: not "lost"
        self._conn.image_waiters.clear()

    def _lost(self, transport: Transport, closed: TransportClosed) -> None:
        """``transport`` closed: reconnect if it was abnormal and the policy allows,
        otherwise end the session."""
        if transport is not self._conn.transport or self._conn.closed is not None:
            return  # an older connection, or the session already ended
        if self._conn.outage is not None:
            return  # already reconnecting
        policy = self.agent._reconnect_policy
        lost: dict[str, float] = {}
        unsent = 0  # disconnect() (a normal close of ours) reports what it could not send
        if not (closed.ok and closed.by_client):
            lost, unsent = self._loss(transport)
        if policy is None or self._disconnected or closed.code not in RECONNECT_CLOSE_CODES:
            self._end(closed, None, lost, unsent)
            return
        loop = asyncio.get_running_loop()
        self._conn.outage = loop.create_future()
        drop = self._drop = connection_error(closed, "the connection to Fishjam was lost")
        self._fail_image_waiters(
            connection_error(closed, "the connection was lost; the image request was not re-sent")
        )
        # one line per agent at DEBUG; WARNING gets fishjam_fast.logs' aggregated line
        logger.debug(
            "agent %s: %s; reconnecting (budget %g s); lost %.3f s of queued audio, "
            "%d bytes unsent",
            self.agent.id,
            drop,
            policy.budget,
            sum(lost.values()),
            unsent,
        )
        now, lasted = loop.time(), time.monotonic() - self._connected_at
        last, self._last_outage = self._last_outage, None
        if last is not None and lasted < policy.stable_after:
            # the connection did not stay up: the same outage, budget and backoff go on
            logger.debug(
                "agent %s: the connection lasted %.3f s (< stable_after %g s): the outage goes on",
                self.agent.id,
                lasted,
                policy.stable_after,
            )
            since, delays = last
        else:
            since, delays = now, policy.delays()
        self._set_state("reconnecting", drop, lost, unsent)
        self._reconnector = loop.create_task(self._reconnect(closed, since, delays))

    async def _reconnect(
        self, cause: TransportClosed, since: float, delays: Iterator[float] | None = None
    ) -> None:
        """The outage: reconnect, then hand the new connection to everyone waiting.

        ``since`` is when the outage began (loop time); ``delays`` the policy's delays
        still to come (None: from the start)."""
        policy = self.agent._reconnect_policy
        assert policy is not None
        stats = self.stats
        attempts = stats.reconnect_attempts
        try:
            if delays is None:
                delays = policy.delays()
            transport, first = await reopen(
                self.agent,
                policy,
                cause,
                self._conn,
                lambda: list(self._tracks.values()),
                since=since,
                delays=delays,
            )
        except Exception as error:  # AgentError; a token_provider's TypeError
            logger.debug("agent %s: gave up reconnecting: %s", self.agent.id, error)
            code = getattr(error, "code", None) or cause.code
            self._end(TransportClosed(code, getattr(error, "reason", ""), False), error)
            return
        # disconnect() cancels this task; it never gets here once it was called
        await self._use_transport(transport)
        self._connected_at = time.monotonic()
        self._last_outage = (since, delays)
        if first is not None:
            self._conn.backlog.append(first)
        stats.reconnects += 1
        for track in self._tracks.values():
            track._connection_replaced()
        logger.debug(
            "agent %s: reconnected after %.3f s (%d attempts, %d tracks re-added)",
            self.agent.id,
            asyncio.get_running_loop().time() - since,
            stats.reconnect_attempts - attempts,
            len(self._tracks),
        )
        outage, self._conn.outage = self._conn.outage, None
        self._drop = None
        self._set_state("connected", None)
        if outage is not None and not outage.done():
            outage.set_result(None)

    async def _through_outage(self, after_drop: AfterDrop) -> bool:
        """Before sending while reconnecting or closed: True to send now, False to skip.

        Raises:
            AgentConnectionError: the session is closed, or ``after_drop`` is "fail"
                and it reconnects.
            AgentAuthError: the reconnection was refused while waiting.
        """
        outage = self._conn.outage
        if outage is not None:
            if after_drop == "fail":
                assert self._drop is not None
                raise AgentConnectionError(
                    f"{self._drop}; reconnecting", self._drop.code, self._drop.reason
                )
            if after_drop == "skip":
                return False
            await asyncio.shield(outage)
        if self._conn.closed is not None:
            raise self._closed_error()
        return True

    async def _connected(self) -> None:
        """Waits out a reconnection in progress.

        Raises:
            AgentConnectionError, AgentAuthError: as :meth:`_through_outage`.
        """
        await self._through_outage("resend")

    def _forget_track(self, track: OutgoingTrack) -> None:
        """``track`` is being removed: a reconnection no longer re-adds it.

        Raises:
            AgentConnectionError: the session is closed.
        """
        if self._conn.closed is not None:
            raise self._closed_error()
        self._tracks.pop(track.id, None)

    def _closed_error(self) -> AgentConnectionError:
        """What sending on an ended session raises: says who ended it."""
        closed = self._conn.closed
        assert closed is not None
        if self._disconnected:
            return connection_error(closed, "the session is closed")
        if closed.ok:
            return connection_error(closed, "Fishjam closed the session")
        return connection_error(closed, "the connection to Fishjam was lost")

    async def disconnect(self) -> int:
        """Ends the session by closing the connection normally.

        A :meth:`receive` loop in progress then ends cleanly. While reconnecting, it
        stops the attempts (at once) and ends the session with code 1000. What was
        written is flushed within ``close_timeout``; what could not be is counted in
        ``stats.bytes_unsent``, logged (WARNING) and returned.

        Returns:
            Bytes written that the server never got (0: everything went out). The
            plain SDK's ``disconnect()`` returns None; code that ignores the result
            is unaffected.
        """
        if self._conn.closed is None:
            self._disconnected = True
        reconnector = self._reconnector
        if reconnector is not None and not reconnector.done():
            reconnector.cancel()
            await asyncio.wait((reconnector,))
        transport = self._conn.transport
        already = self._conn.closed is not None or self._conn.outage is not None
        await transport.close()
        unsent = 0 if already else transport.unsent_bytes
        if unsent:
            self.stats.bytes_unsent += unsent
            logger.warning(
                "agent %s: disconnect() could not send %d bytes within close_timeout "
                "(the server did not read them); the socket was aborted",
                self.agent.id,
                unsent,
            )
        if self._conn.outage is not None:
            self._end(TransportClosed(1000, "", True))
            return unsent
        code = transport.close_code or 1000
        self._end(TransportClosed(code, transport.close_reason, code in NORMAL_CLOSE_CODES))
        return unsent


def _cause(error: Exception | None) -> str:
    """The cause of a drop, as the aggregated line counts it: a few distinct values."""
    code = getattr(error, "code", None)
    return f"code {code}" if code is not None else type(error).__name__


def _give_up_cause(error: Exception) -> str:
    """Why a session gave up reconnecting, as the aggregated line counts it."""
    if isinstance(error, AgentAuthError):
        return "token refused"
    if isinstance(error, AgentConnectionError):
        return "budget spent"
    return type(error).__name__
