"""The selector of the ServerMessage decoder (``src_ext/notifications.pyx``, or
``_notifications_py`` on google.protobuf): above :mod:`.events`, whose classes it makes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._native import NATIVE, NOTIFICATION_NAMES, take

if TYPE_CHECKING:
    from ._ext import decode_server_message as decode_server_message
else:
    from . import _notifications_py

    globals().update(take(NOTIFICATION_NAMES, _notifications_py))

__all__ = ["NATIVE", *NOTIFICATION_NAMES]
