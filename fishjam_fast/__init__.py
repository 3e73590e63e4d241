"""fishjam_fast: a native-accelerated, drop-in replacement for ``fishjam.agent``.

Switch an application written for the plain SDK with one line at start-up, before or
after its own imports::

    import fishjam_fast; fishjam_fast.install()

or, changing nothing in it, run it with ``python -m fishjam_fast run app.py [args]``
(install() done, uvloop as the event loop). Either way the plain SDK's names
(``fishjam.agent``, ``FishjamClient.create_agent``) produce fishjam_fast's objects.
Changing imports instead works only if *every* import changes: agents from
``fishjam_fast.FishjamClient`` (or ``fishjam_fast.Agent``) and the message and error
classes from ``fishjam_fast``, as the two sides' classes are distinct.

``NATIVE`` tells whether the compiled codec is in use.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from . import logs, pcm
from ._codec import NATIVE, IncomingTrackData, IncomingTrackImage, Track
from ._core.reconnect import ReconnectPolicy, SessionStateChange
from ._dropin import install, uninstall
from ._version import __version__ as __version__
from .agent import Agent
from .enums import TrackEncoding, TrackType
from .errors import (
    AgentAuthError,
    AgentConnectionError,
    AgentError,
    AgentProtocolError,
    AgentWouldBlockError,
    NativeExtensionWarning,
)
from .runner import run
from .session import AgentSession, OutgoingAudioTrackOptions, OutgoingTrack, SessionStats
from .windows import TrackAudio  # audio windows

if TYPE_CHECKING:
    from .client import FishjamClient
    from .notifier import FishjamNotifier, NotifierAuthError, NotifierConnectionError
    from .rest import AsyncFishjamClient, FishjamApiError
    from .server import AgentServer, ServerOptions
    from .server.job import Job
    from .webhooks import decode_server_notifications, verify_webhook_signature


__all__ = [
    "NATIVE",
    "Agent",
    "AgentAuthError",
    "AgentConnectionError",
    "AgentError",
    "AgentProtocolError",
    "AgentSession",
    "AgentWouldBlockError",
    "AsyncFishjamClient",
    "FishjamApiError",
    "FishjamNotifier",
    "IncomingTrackData",
    "IncomingTrackImage",
    "Job",
    "NativeExtensionWarning",
    "NotifierAuthError",
    "NotifierConnectionError",
    "OutgoingAudioTrackOptions",
    "OutgoingTrack",
    "ReconnectPolicy",
    "SessionStateChange",
    "SessionStats",
    "Track",
    "TrackAudio",
    "TrackEncoding",
    "TrackType",
    "decode_server_notifications",
    "install",
    "logs",
    "pcm",
    "run",
    "uninstall",
    "verify_webhook_signature",
]


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a finder that refuses it outright
        return False


def _plain_sdk_installed() -> bool:
    return _installed("fishjam")


if _plain_sdk_installed():  # the sdk extra; without it `import *` must work all the same
    __all__ += ["FishjamClient"]
if all(_installed(name) for name in ("aiohttp", "prometheus_client")):  # the server extra
    __all__ += ["AgentServer", "ServerOptions"]


def __getattr__(name: str) -> Any:
    # FishjamClient needs the optional plain SDK, the REST client aiohttp: import them only
    # when asked for, so `import fishjam_fast` stays light
    if name == "FishjamClient":
        from .client import FishjamClient

        return FishjamClient
    if name in ("AsyncFishjamClient", "FishjamApiError"):
        from . import rest

        return getattr(rest, name)
    if name == "Job":  # light: the agent server's other parts are not imported
        from .server.job import Job

        return Job
    if name in ("AgentServer", "ServerOptions"):  # the server extra
        from . import server

        return getattr(server, name)
    # the notifier and webhooks import the REST client and google.protobuf: on use only
    if name in ("FishjamNotifier", "NotifierAuthError", "NotifierConnectionError"):
        from . import notifier

        return getattr(notifier, name)
    if name in ("decode_server_notifications", "verify_webhook_signature"):
        from . import webhooks

        return getattr(webhooks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
