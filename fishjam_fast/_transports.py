"""Which transport an Agent or a FishjamNotifier uses, and the factory that opens it.

Above the two implementations (:mod:`._transport_picows`, :mod:`._transport_websockets`)
and the seam they share (:mod:`._transport`), which imports neither.
"""

from __future__ import annotations

import importlib.util
import os

from ._transport import TRANSPORT_NAMES, TransportFactory, TransportName


def default_transport() -> TransportName:
    """The transport an Agent uses unless told otherwise.

    ``FISHJAM_FAST_TRANSPORT=picows|websockets`` chooses; otherwise picows where it is
    installed, websockets where it is not (a platform without picows wheels).
    """
    chosen = os.environ.get("FISHJAM_FAST_TRANSPORT", "").strip().lower()
    if chosen == "picows":
        return "picows"
    if chosen == "websockets":
        return "websockets"
    if chosen:
        raise ValueError(
            f"FISHJAM_FAST_TRANSPORT={chosen!r}: use one of {', '.join(TRANSPORT_NAMES)}"
        )
    return "picows" if importlib.util.find_spec("picows") is not None else "websockets"


def transport_factory(name: str) -> TransportFactory:
    """The factory of the named transport.

    Raises:
        ValueError: an unknown name.
        ImportError: the transport's library is not installed.
    """
    if name == "picows":
        from ._transport_picows import open_picows

        return open_picows
    if name == "websockets":
        from ._transport_websockets import open_websockets

        return open_websockets
    raise ValueError(f"unknown transport {name!r}: use one of {', '.join(TRANSPORT_NAMES)}")
