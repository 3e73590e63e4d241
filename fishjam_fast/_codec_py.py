"""The reference codec: google.protobuf classes generated from ``protos/``.

It is the pure-Python fallback of the native codec (``src_ext/codec.pyx``) and the
implementation the tests compare the native one against. Both expose the same
functions with the same semantics and errors.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from ._messages import (
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


_AUTHENTICATED = Authenticated()


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return value


def _check_int(name: str, value: object, low: int, high: int) -> int:
    # as google.protobuf: bool is no int here; the native encoder does the same checks
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    number = operator.index(value)  # type: ignore[arg-type]
    if not low <= number <= high:
        raise ValueError(f"{name} out of range: {number}")
    return number


_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"data must be a bytes-like object (bytes, bytearray, memoryview, NumPy array "
            f"or another buffer), not {type(data).__name__}"
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
    add_track.track.metadata = _check_str("metadata", metadata)
    add_track.track.type = _check_int("track_type", track_type, *_INT32)  # type: ignore[assignment]
    add_track.codec_params.encoding = _check_int("encoding", encoding, *_INT32)  # type: ignore[assignment]
    add_track.codec_params.sample_rate = _check_int("sample_rate", sample_rate, *_UINT32)
    add_track.codec_params.channels = _check_int("channels", channels, *_UINT32)
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
        track_id.encode()  # UnicodeEncodeError (a ValueError) now, as the native one

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
    _check_str("track_id", track_id).encode()  # checked first, as the native one
    chunk_size = operator.index(chunk_size)
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


# -- the wire scanner -------------------------------------------------------------------
#
# google.protobuf (upb) accepts groups, varints with bits past 64 and reports no
# offsets; this small scanner runs first and holds both implementations to the same
# rules, with the native decoder's messages: field keys valid (number > 0, wire type
# 0, 1, 2 or 5), varints at most 10 bytes within 64 bits (keys and lengths, 32-bit
# varints: 5 bytes, as upb), lengths within what is left, known sub-messages scanned
# too, known string fields valid UTF-8.

# What a known length-delimited field holds: a string (its name, for errors), bytes
# (None) or a sub-message (the field map of that message).
_Schema: TypeAlias = "dict[int, str | _Schema | None]"
_TRACK: _Schema = {1: "track_data.track.id", 3: "track_data.track.metadata"}
_TRACK_DATA: _Schema = {1: "track_data.peer_id", 2: _TRACK, 3: None}
_TRACK_IMAGE: _Schema = {1: "track_image.track_id", 2: "track_image.content_type", 3: None}
_RESPONSE: _Schema = {1: {}, 2: _TRACK_DATA, 3: _TRACK_IMAGE}


def _error(what: str, offset: int) -> AgentProtocolError:
    return AgentProtocolError(f"malformed AgentResponse: {what} at offset {offset}")


def _varint(data: bytes, pos: int, end: int, max_bytes: int = 10) -> tuple[int, int]:
    """Reads a varint at ``pos``; returns its value and the position after it."""
    value = 0
    for i in range(min(end - pos, max_bytes)):
        byte = data[pos + i]
        if i == max_bytes - 1 and byte & 0x80:
            raise _error(f"varint longer than {max_bytes} bytes", pos)
        if i == 9 and byte > 1:  # the 10th byte holds bit 63 only
            raise _error("varint overflows 64 bits", pos)
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos + i + 1
    raise _error("truncated varint", pos)


def _scan(data: bytes, pos: int, end: int, schema: _Schema) -> int:
    """Validates the message in ``data[pos:end]``; returns its last unknown field number."""
    unknown = 0
    while pos < end:
        key_pos = pos
        key, pos = _varint(data, pos, end, 5)  # keys and lengths: 32-bit varints
        field, wire_type = key >> 3, key & 7
        if key > 0xFFFFFFFF:
            raise _error(f"field key {key} too large", key_pos)
        if field == 0:
            raise _error("field number 0", key_pos)
        if wire_type not in (0, 1, 2, 5):
            raise _error(f"invalid wire type {wire_type} (field {field})", key_pos)
        if wire_type == 0:
            _, pos = _varint(data, pos, end)
        elif wire_type != 2:
            size = 8 if wire_type == 1 else 4
            if size > end - pos:
                raise _error(f"{size} bytes needed but {end - pos} left", pos)
            pos += size
        else:
            length_pos = pos
            length, pos = _varint(data, pos, end, 5)
            if length > end - pos:
                raise _error(f"length {length} exceeds the {end - pos} bytes left", length_pos)
            if field in schema:
                kind = schema[field]
                if isinstance(kind, dict):
                    _scan(data, pos, pos + length, kind)
                elif kind is not None:
                    try:
                        data[pos : pos + length].decode()
                    except UnicodeDecodeError as exc:
                        raise _error(f"invalid UTF-8 in {kind}", pos + exc.start) from None
                pos += length
                continue
            pos += length
        unknown = field
    return unknown


def decode_response(
    frame: Buffer,
) -> IncomingTrackData | IncomingTrackImage | Authenticated | UnknownResponse:
    """Decodes one ``AgentResponse`` frame.

    Returns:
        IncomingTrackData, IncomingTrackImage, Authenticated, or UnknownResponse
        (the field number of the last unknown top-level field, 0 if none).

    Raises:
        AgentProtocolError: ``frame`` is not a valid AgentResponse (the message says
            what was wrong and at which byte offset).
        TypeError: ``frame`` is not a buffer.
    """
    try:
        data = _as_bytes(frame)
    except TypeError:
        raise TypeError(
            f"frame must be a bytes-like object (bytes, bytearray, memoryview, NumPy array "
            f"or another buffer), not {type(frame).__name__}"
        ) from None
    unknown = _scan(data, 0, len(data), _RESPONSE)
    try:
        message = AgentResponse.FromString(data)
    except DecodeError as exc:  # pragma: no cover - the scanner is stricter than upb
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
    return UnknownResponse(unknown)
