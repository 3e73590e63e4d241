"""What both implementations of the session's per-message path share (``_session_py``
and ``src_ext/session_hot.pyx``). It imports no selector: the compiled extension imports
it while the selectors are still choosing."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import AgentSession

RECEIVING_TWICE = (
    "another task is iterating receive() of this session; read the messages in one "
    "loop and hand them on (e.g. via an asyncio.Queue)"
)


def keep_arrived(session: AgentSession, pending: object) -> None:
    """A read was cancelled (``recv(timeout)``'s deadline, ``request_image``'s): if the
    message arrived meanwhile, it goes to the backlog, which the next read takes first.

    It happens when the message resolves the transport's future in the same loop
    iteration as the cancellation: the task then wakes up with CancelledError instead
    of the result, which only the future still holds. (A future cancelled before the
    message came leaves it queued in the transport.) A frame (bytes: read before the
    dispatcher was set) is dispatched now, as ``accept_frame`` does.
    """
    if (
        isinstance(pending, asyncio.Future)
        and pending.done()
        and not pending.cancelled()
        and pending.exception() is None
    ):
        message = pending.result()
        if type(message) is bytes:
            message = session._dispatcher.dispatch(message)
        if message is not None:
            session._backlog.append(message)
