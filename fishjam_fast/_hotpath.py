"""The selector of the session's per-message path (``src_ext/session_hot.pyx`` in the
extension, ``_session_py`` in the fallback): the dispatcher that decodes, counts and
routes each frame where the transport reads it, the one read and the one write of the
session, each track's sender. Above :mod:`._codec` (the fallback decodes with it),
below the session. (Each track's playout clock is :mod:`._playout`: one source,
compiled where the extension is.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._native import NATIVE, SESSION_NAMES, take

if TYPE_CHECKING:
    from ._ext import Dispatcher as Dispatcher
    from ._ext import TrackSender as TrackSender
    from ._ext import accept_frame as accept_frame
    from ._ext import read_message as read_message
    from ._ext import receive_messages as receive_messages
    from ._ext import send_chunk_now as send_chunk_now
    from ._ext import write_now as write_now
else:
    from . import _session_py

    globals().update(take(SESSION_NAMES, _session_py))

__all__ = ["NATIVE", *SESSION_NAMES]
