"""The reference codec: google.protobuf classes generated from ``protos/``.

It is the pure-Python fallback of the native codec (``src_ext/codec.pyx``) and the
implementation the tests compare the native one against. Both expose the same
functions with the same semantics and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from ._messages_py import (
    Authenticated,
    IncomingTrackData,
    IncomingTrackImage,
    Track,
    UnknownResponse,
)
from ._proto.agent_pb2 import AgentRequest, AgentResponse
from .enums import track_type
from .errors import AgentProtocolError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "NATIVE",
    "TrackDataEncoder",
    "decode_response",
    "encode_add_track",
    "encode_auth_request",
    "encode_capture_image",
    "encode_interrupt_track",
    "encode_remove_track",
    "encode_track_data",
    "frame_track_data",
]

NATIVE = False

_AUTHENTICATED = Authenticated()


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return value


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"data must be a bytes-like object (bytes, bytearray, memoryview, "
            f"NumPy array), not {type(data).__name__}"
        ) from None
    return view.tobytes()


def encode_auth_request(token: str) -> bytes:
    """Encodes ``AgentRequest{auth_request{token}}``."""
    message = AgentRequest()
    message.auth_request.token = _check_str("token", token)
    return message.SerializeToString()


def encode_add_track(
    track_id: str,
    metadata: str,
    encoding: int,
    sample_rate: int,
    channels: int,
    track_type: int = 2,
) -> bytes:
    """Encodes ``AgentRequest{add_track{track{id, type, metadata}, codec_params}}``."""
    message = AgentRequest()
    add_track = message.add_track
    add_track.track.id = _check_str("track_id", track_id)
    add_track.track.type = track_type  # type: ignore[assignment]
    add_track.track.metadata = _check_str("metadata", metadata)
    add_track.codec_params.encoding = encoding  # type: ignore[assignment]
    add_track.codec_params.sample_rate = sample_rate
    add_track.codec_params.channels = channels
    return message.SerializeToString()


def encode_remove_track(track_id: str) -> bytes:
    """Encodes ``AgentRequest{remove_track{track_id}}``."""
    message = AgentRequest()
    message.remove_track.track_id = _check_str("track_id", track_id)
    return message.SerializeToString()


def encode_interrupt_track(track_id: str) -> bytes:
    """Encodes ``AgentRequest{interrupt_track{track_id}}``."""
    message = AgentRequest()
    message.interrupt_track.track_id = _check_str("track_id", track_id)
    return message.SerializeToString()


def encode_capture_image(track_id: str) -> bytes:
    """Encodes ``AgentRequest{capture_image{track_id}}``."""
    message = AgentRequest()
    message.capture_image.track_id = _check_str("track_id", track_id)
    return message.SerializeToString()


def encode_track_data(track_id: str, data: Buffer) -> bytes:
    """Encodes ``AgentRequest{track_data{track_id, data}}``."""
    message = AgentRequest()
    message.track_data.track_id = _check_str("track_id", track_id)
    message.track_data.data = _as_bytes(data)
    return message.SerializeToString()


class TrackDataEncoder:
    """Encodes ``track_data`` messages of one track (the hot path of sending)."""

    __slots__ = ("track_id",)

    def __init__(self, track_id: str) -> None:
        self.track_id = _check_str("track_id", track_id)

    def encode(self, data: Buffer) -> bytes:
        """Returns the whole ``AgentRequest`` frame carrying ``data``."""
        return encode_track_data(self.track_id, data)


def frame_track_data(
    track_id: str, payload: Buffer, chunk_size: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Frames ``payload`` as consecutive ``track_data`` messages of ``chunk_size`` bytes.

    The last message carries what is left (possibly fewer bytes); an empty payload
    gives no message.

    Returns:
        ``(buffer, offsets)``: one uint8 array holding every frame back to back, and
        ``len(frames) + 1`` int64 offsets: frame ``i`` is ``buffer[offsets[i]:offsets[i+1]]``.
    """
    _check_str("track_id", track_id)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    data = _as_bytes(payload)
    frames = [
        encode_track_data(track_id, data[start : start + chunk_size])
        for start in range(0, len(data), chunk_size)
    ]
    offsets = np.zeros(len(frames) + 1, dtype=np.int64)
    np.cumsum([len(f) for f in frames], out=offsets[1:])
    buffer = np.frombuffer(b"".join(frames), dtype=np.uint8).copy()
    return buffer, offsets


def decode_response(
    frame: Buffer,
) -> IncomingTrackData | IncomingTrackImage | Authenticated | UnknownResponse:
    """Decodes one ``AgentResponse`` frame.

    Raises:
        AgentProtocolError: ``frame`` is not a valid AgentResponse.
    """
    try:
        message = AgentResponse.FromString(_as_bytes(frame))
    except DecodeError as exc:
        raise AgentProtocolError(f"malformed AgentResponse: {exc}") from None
    kind = message.WhichOneof("content")
    if kind == "track_data":
        td = message.track_data
        t = td.track
        return IncomingTrackData(td.peer_id, Track(t.id, track_type(t.type), t.metadata), td.data)
    if kind == "track_image":
        ti = message.track_image
        return IncomingTrackImage(ti.track_id, ti.content_type, ti.data)
    if kind == "authenticated":
        return _AUTHENTICATED
    return UnknownResponse(0)
