# cython: annotation_typing=False
"""Decoded AgentResponse contents: the message classes of both builds.

One source (Cython's pure-Python mode, as ``_core/playout.py``): setup.py compiles this file,
with the augmenting ``_messages.pxd`` beside it, into the extension module
``fishjam_fast._messages``, which Python imports in place of this file. There each class
is a cdef class whose fields are C fields: the native decoder (``fishjam_fast._ext``,
which cimports them) makes a message with ``__new__`` and stores its fields directly,
without ``__init__`` or a Python setattr. Without a compiler this file runs as it is.

The classes compare by value (unhashable, like non-frozen dataclasses), support
``match`` patterns, positional and keyword construction and attribute access like the
plain SDK's betterproto classes; attributes can be set, not deleted. Keep to what Cython
compiles: no attributes beyond those the .pxd declares, no decorators but ``property``.
This module imports neither ``_ext`` nor the selectors at module level: ``_ext``
imports it while it initialises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

# absolute: the tests load this file uncompiled under another name, outside the package
from fishjam_fast.enums import TrackType

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "Authenticated",
    "IncomingTrackData",
    "IncomingTrackImage",
    "Track",
    "UnknownResponse",
]

# PCM16 on the wire: little-endian int16
_PCM_LE16 = np.dtype("<i2")


class _Message:
    """Base of the message classes: attributes can be set, not deleted."""

    __slots__ = ()

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete attribute {name!r} of {type(self).__name__}")


class Track(_Message):
    """A peer's track: ``id``, ``type`` (TrackType, or an int the enum lacks) and
    ``metadata`` (JSON text)."""

    __slots__ = ("id", "metadata", "type")
    __match_args__ = ("id", "type", "metadata")
    __hash__ = None  # type: ignore[assignment]  # unhashable: compared by value

    def __init__(
        self,
        id: str = "",
        type: TrackType | int = TrackType.TRACK_TYPE_UNSPECIFIED,
        metadata: str = "",
    ) -> None:
        self.id = id
        self.type = type
        self.metadata = metadata

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        o: Any = other
        return bool(self.id == o.id and self.type == o.type and self.metadata == o.metadata)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id!r}, type={self.type!r}, metadata={self.metadata!r})"
        )


class IncomingTrackData(_Message):
    """A chunk of a peer's track: PCM16 little-endian audio for audio tracks.

    Attributes:
        peer_id: The peer whose track this is.
        track: The track the chunk belongs to.
        data: The chunk (an owned ``bytes`` object).
    """

    __slots__ = ("data", "peer_id", "track")
    __match_args__ = ("peer_id", "track", "data")
    __hash__ = None  # type: ignore[assignment]  # unhashable: compared by value

    def __init__(self, peer_id: str = "", track: Track | None = None, data: bytes = b"") -> None:
        self.peer_id = peer_id
        self.track = Track() if track is None else track
        self.data = data

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        o: Any = other
        return bool(self.peer_id == o.peer_id and self.track == o.track and self.data == o.data)

    @property
    def pcm(self) -> npt.NDArray[np.int16]:
        """The chunk as PCM16 samples: a read-only int16 VIEW of :attr:`data` (no copy),
        shape ``(samples,)`` (channels interleaved).

        Raises:
            ValueError: ``data`` has an odd number of bytes.
        """
        data = self.data
        if type(data) is bytes and not len(data) & 1:
            # what the decoder makes: read-only, a view of immutable bytes
            return np.frombuffer(data, _PCM_LE16)
        # imported here: fishjam_fast.pcm imports the selectors, which import this module;
        # its checks give the errors for anything else
        from fishjam_fast.pcm import incoming_pcm_view

        return incoming_pcm_view(data)

    def samples(self) -> npt.NDArray[np.float32]:
        """The chunk as float32 samples in [-1, 1): a NEW array (``pcm / 32768``).

        Raises:
            ValueError: ``data`` has an odd number of bytes.
        """
        data = self.data
        if type(data) is bytes and not len(data) & 1:
            # straight to the selected kernel (native or NumPy), as imported here
            from fishjam_fast._pcm import pcm16_to_float32

            return pcm16_to_float32(data)
        from fishjam_fast.pcm import incoming_samples

        return incoming_samples(data)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(peer_id={self.peer_id!r}, track={self.track!r}, "
            f"data={self.data!r})"
        )


class IncomingTrackImage(_Message):
    """An image captured from a track, answering ``capture_image``.

    Attributes:
        track_id: The track the image was captured from.
        content_type: The image's MIME type, e.g. ``image/jpeg``.
        data: The encoded image (an owned ``bytes`` object).
    """

    __slots__ = ("content_type", "data", "track_id")
    __match_args__ = ("track_id", "content_type", "data")
    __hash__ = None  # type: ignore[assignment]  # unhashable: compared by value

    def __init__(self, track_id: str = "", content_type: str = "", data: bytes = b"") -> None:
        self.track_id = track_id
        self.content_type = content_type
        self.data = data

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        o: Any = other
        return bool(
            self.track_id == o.track_id
            and self.content_type == o.content_type
            and self.data == o.data
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(track_id={self.track_id!r}, "
            f"content_type={self.content_type!r}, data={self.data!r})"
        )


class Authenticated(_Message):
    """The server accepted the agent's token."""

    __slots__ = ()
    __match_args__ = ()
    __hash__ = None  # type: ignore[assignment]  # unhashable: compared by value

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class UnknownResponse(_Message):
    """An AgentResponse whose content this version does not know (a newer server).

    Attributes:
        field_number: The unknown oneof member's field number; 0 for an empty message.
    """

    __slots__ = ("field_number",)
    __match_args__ = ("field_number",)
    __hash__ = None  # type: ignore[assignment]  # unhashable: compared by value

    def __init__(self, field_number: int = 0) -> None:
        self.field_number = field_number

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        o: Any = other
        return bool(self.field_number == o.field_number)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(field_number={self.field_number!r})"
