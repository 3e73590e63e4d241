"""Which transport an Agent or a FishjamNotifier uses, and the factory that opens it.

Above the two implementations (:mod:`.picows`, :mod:`.websockets`)
and the seam they share (:mod:`.base`), which imports neither.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from .._native import NATIVE
from .base import (
    PICOWS_PROXY_SCHEMES,
    TRANSPORT_NAMES,
    TransportFactory,
    TransportName,
    TransportOptions,
)


def default_transport() -> TransportName:
    """The transport an Agent uses unless told otherwise.

    ``FISHJAM_FAST_TRANSPORT=picows|websockets`` chooses; otherwise picows where it runs
    (picows installed and fishjam_fast's compiled extension used: the picows transport's
    per-frame path is compiled), websockets where it does not (the pure-Python build, a
    platform without picows wheels).
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
    picows_runs = (
        NATIVE
        and importlib.util.find_spec("picows") is not None
        and importlib.util.find_spec("fishjam_fast._picows_listener") is not None
    )
    return "picows" if picows_runs else "websockets"


def transport_factory(name: str) -> TransportFactory:
    """The factory of the named transport.

    Raises:
        ValueError: an unknown name.
        ImportError: the transport's library is not installed, or picows was asked
            for in the pure-Python build (its per-frame path is compiled).
    """
    if name == "picows":
        from .picows import open_picows

        return open_picows
    if name == "websockets":
        from .websockets import open_websockets

        return open_websockets
    raise ValueError(f"unknown transport {name!r}: use one of {', '.join(TRANSPORT_NAMES)}")


def connection_setup(
    socket_url: str, transport: TransportName | None, **options: Any
) -> tuple[TransportName, TransportFactory, TransportOptions]:
    """What an Agent and a FishjamNotifier both make of their connection options: the
    transport's name, its factory and one validated :class:`TransportOptions`.

    Args:
        socket_url: The ``ws://``/``wss://`` URL the connection goes to.
        transport: ``"picows"``, ``"websockets"``, or None (:func:`default_transport`).
        **options: The fields of :class:`TransportOptions` (``ssl``, ``proxy``, the
            limits and deadlines).

    Raises:
        ValueError, TypeError: ``ssl`` for a plain URL, an unknown transport, a bad
            limit, timeout or ``proxy`` (or a proxy scheme picows cannot use).
        ImportError: the transport's library is not installed, or picows was asked
            for in the pure-Python build (its per-frame path is compiled).
    """
    if options.get("ssl") is not None and not socket_url.startswith("wss://"):
        raise ValueError("an ssl context was given for a plain http:// or ws:// Fishjam URL")
    name = default_transport() if transport is None else transport
    factory = transport_factory(name)
    proxy = options.get("proxy")
    if (
        isinstance(proxy, str)
        and name == "picows"
        and proxy.partition("://")[0].lower() not in PICOWS_PROXY_SCHEMES
    ):
        raise ValueError(
            f"proxy={proxy!r} needs transport='websockets' (picows connects through "
            f"{', '.join(PICOWS_PROXY_SCHEMES)} proxies)"
        )
    return name, factory, TransportOptions(**options)
