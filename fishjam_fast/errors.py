"""Exceptions raised by fishjam_fast.

The names and the two base classes match the plain SDK's ``fishjam.agent.errors``,
so ``except AgentError`` written for the plain SDK keeps working. After
``fishjam_fast.install()`` they are also subclasses of the plain SDK's classes of the
same name (see ``fishjam_fast._dropin``).
"""

from __future__ import annotations


class _PlainSdkBase(Exception):
    """Where the plain SDK's ``fishjam.agent.AgentError`` goes while
    ``fishjam_fast.install()`` is in effect (``AgentError.__bases__`` is swapped, so
    ``except fishjam.agent.AgentError`` catches ours). An empty ``Exception`` subclass:
    CPython swaps a base only for one of the same layout, which ``Exception`` itself
    is not."""


class AgentError(_PlainSdkBase):
    """Base class of every exception raised by an agent."""


class AgentAuthError(AgentError):
    """The server refused the agent's token.

    Attributes:
        reason: The close reason the server gave, e.g. ``"invalid token"``.
        code: The close code it came with (1000 from Fishjam), None where unknown.
    """

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code

    def __str__(self) -> str:
        return f"agent failed to authenticate: {self.reason}"


class AgentProtocolError(AgentError, ValueError):
    """A frame received from the network is not a valid agent protocol message.

    The message says what was wrong and at which byte offset of the frame.
    """


class AgentConnectionError(AgentError):
    """The connection to Fishjam ended abnormally, or was used after it ended.

    Attributes:
        code: The WebSocket close code (1006 when the connection dropped without one),
            or None when no close code applies (a malformed answer to authentication).
        reason: The close reason, possibly empty: the server's, or the one this side
            sent when it failed the connection (e.g. 1009 with the sizes).
    """

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class AgentWouldBlockError(AgentError):
    """:meth:`OutgoingTrack.send_chunk_nowait` could not send without waiting.

    The connection's write buffer is above its high-water mark (the network or the
    server is slower than the audio), or the track's pacing (``max_queued``) would hold
    the chunk. Nothing was sent: try again later, drop the chunk, or use the awaitable
    ``send_chunk``, which waits.
    """


class NativeExtensionWarning(RuntimeWarning):
    """fishjam_fast was imported without its compiled extension, and nobody asked for
    that (``FISHJAM_FAST_NO_EXTENSIONS=1``): the pure-Python fallback works, but
    slower. The message says how to build the extension."""
