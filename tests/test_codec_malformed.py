"""Malformed AgentResponse frames: AgentProtocolError naming the offset, nothing else."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from fishjam_fast import _codec_py
from fishjam_fast._proto.agent_pb2 import AgentResponse
from fishjam_fast.errors import AgentError, AgentProtocolError
from tests.conftest import native_extension
from tests.wire import field_len, field_varint, key, varint

TRACK = field_len(1, b"track-1") + field_varint(2, 2) + field_len(3, b'{"a":1}')
TRACK_DATA = field_len(2, field_len(1, b"peer") + field_len(2, TRACK) + field_len(3, bytes(64)))
TRACK_IMAGE = field_len(3, field_len(1, b"t") + field_len(2, b"image/jpeg") + field_len(3, b"jpg"))
AUTHENTICATED = field_len(1, b"")
SINGLE_FIELD_FRAMES = {
    "track_data": TRACK_DATA,
    "track_image": TRACK_IMAGE,
    "authenticated_with_unknown": field_len(1, field_varint(5, 300)),
}

OVERLONG = b"\x80" * 10 + b"\x00"  # an 11-byte varint (value 0)
OVERFLOW = b"\xff" * 9 + b"\x02"  # 10 bytes, bit 64 set


def _in_track(track: bytes) -> bytes:
    """AgentResponse{track_data{track: <track bytes>}} with the right lengths."""
    return field_len(2, field_len(2, track))


# (id, frame, offset the error must name)
CASES: list[tuple[str, bytes, int]] = [
    # varints
    ("overlong-key", OVERLONG, 0),
    ("overflowing-key", OVERFLOW, 0),
    ("truncated-key", b"\x80", 0),
    ("overlong-length", b"\x12" + OVERLONG, 1),
    ("overflowing-length", b"\x12" + OVERFLOW, 1),
    ("truncated-length", b"\x12\x80\x80", 1),
    ("overlong-unknown-varint", b"\x38" + OVERLONG, 1),
    ("overflowing-unknown-varint", b"\x38" + OVERFLOW, 1),
    ("truncated-unknown-varint", b"\x38\xff", 1),
    ("overlong-track-type", _in_track(b"\x10" + OVERLONG), 5),
    ("missing-varint-value", b"\x38", 1),
    # lengths
    ("length-past-end", b"\x12\x05abc", 1),
    ("length-2**31", b"\x12" + varint(2**31), 1),
    ("length-2**32", b"\x12" + varint(2**32), 1),
    ("length-2**63", b"\x12" + varint(2**63), 1),
    ("length-2**64-1", b"\x12" + varint(2**64 - 1), 1),
    ("nested-length-past-parent", b"\x12\x02\x0a\x05hello", 3),
    ("nested-huge-length", field_len(2, b"\x1a" + varint(2**63)), 3),
    ("track-length-past-parent", b"\x12\x04\x12\x02\x0a\x09" + bytes(20), 5),
    ("unknown-length-past-end", b"\x3a\x03ab", 1),
    ("fixed64-truncated", key(7, 1) + bytes(7), 1),
    ("fixed32-truncated", key(7, 5) + bytes(3), 1),
    ("nested-fixed64-past-parent", b"\x12\x05" + key(9, 1) + bytes(4) + bytes(8), 3),
    # keys
    ("field-0-varint", b"\x00\x01", 0),
    ("field-0-len", b"\x02\x00", 0),
    ("field-0-nested", field_len(2, b"\x00\x00"), 2),
    ("field-0-in-track", _in_track(b"\x02\x00"), 4),
    ("field-key-6-bytes", varint(2**32 << 3) + b"\x00", 0),
    ("field-key-past-32-bits", varint(2**32 | 2) + b"\x00", 0),
    ("padded-key-6-bytes", b"\x9a\x80\x80\x80\x80\x00\x00", 0),
    # keys and lengths are 32-bit varints: at most 5 bytes, as upb (found by fuzzing)
    ("length-6-bytes", b"\x1a" + b"\x80" * 5 + b"\x00", 1),
    ("unknown-length-6-bytes", b"\x3a" + b"\x80" * 5 + b"\x00", 1),
    ("nested-length-7-bytes", field_len(3, b"\x1a\x00\x1a" + b"\x80" * 6 + b"\x00"), 5),
    # wire types 3, 4, 6, 7
    *[(f"wire-type-{wt}-top", key(1, wt) + b"\x00", 0) for wt in (3, 4, 6, 7)],
    *[(f"wire-type-{wt}-unknown", key(99, wt), 0) for wt in (3, 4, 6, 7)],
    *[(f"wire-type-{wt}-nested", field_len(2, key(1, wt)), 2) for wt in (3, 4, 6, 7)],
    *[(f"wire-type-{wt}-in-track", _in_track(key(5, wt)), 4) for wt in (3, 4, 6, 7)],
    ("group-in-authenticated", field_len(1, b"\x0b\x0c"), 2),
]

BAD_UTF8 = {
    "lone-continuation": b"\x80",
    "invalid-byte": b"\xff",
    "truncated-sequence": b"\xe2\x82",
    "overlong-encoding": b"\xc0\x80",
    "surrogate": b"\xed\xa0\x80",
    "past-max": b"\xf4\x90\x80\x80",
}


def _utf8_cases() -> list[tuple[str, bytes, int]]:
    cases = []
    for name, bad in BAD_UTF8.items():
        bad = b"ab" + bad
        # the error names the first bad byte: 2 bytes into the string
        cases += [
            (f"peer_id-{name}", field_len(2, field_len(1, bad)), 4 + 2),
            (f"track.id-{name}", _in_track(field_len(1, bad)), 6 + 2),
            (f"track.metadata-{name}", _in_track(field_len(3, bad)), 6 + 2),
            (f"track_id-{name}", field_len(3, field_len(1, bad)), 4 + 2),
            (f"content_type-{name}", field_len(3, field_len(2, bad)), 4 + 2),
        ]
    return cases


ALL_CASES = CASES + _utf8_cases()


def _check_error(codec: SimpleNamespace, frame: bytes) -> AgentProtocolError:
    with pytest.raises(AgentProtocolError) as info:
        codec.decode_response(frame)
    assert type(info.value) is AgentProtocolError
    assert isinstance(info.value, AgentError) and isinstance(info.value, ValueError)
    return info.value


@pytest.mark.parametrize(
    ("frame", "offset"), [c[1:] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES]
)
def test_malformed_frame(codec: SimpleNamespace, frame: bytes, offset: int) -> None:
    error = _check_error(codec, frame)
    found = re.search(r"at offset (\d+)", str(error))
    assert found, str(error)
    assert int(found.group(1)) == offset, str(error)


def test_error_messages_say_what_was_wrong(codec: SimpleNamespace) -> None:
    assert "UTF-8 in track_data.peer_id" in str(
        _check_error(codec, field_len(2, field_len(1, b"\xff")))
    )
    assert "wire type 3" in str(_check_error(codec, key(1, 3)))
    assert "field number 0" in str(_check_error(codec, b"\x00\x00"))
    assert "longer than 10 bytes" in str(_check_error(codec, b"\x38" + OVERLONG))
    assert "longer than 5 bytes" in str(_check_error(codec, OVERLONG))
    assert "length" in str(_check_error(codec, b"\x12\x05"))


@pytest.mark.parametrize("name", SINGLE_FIELD_FRAMES)
def test_truncation_inside_a_field_is_an_error(codec: SimpleNamespace, name: str) -> None:
    # one top-level length-delimited field: any cut but the ends falls inside it
    frame = SINGLE_FIELD_FRAMES[name]
    for cut in range(1, len(frame)):
        _check_error(codec, frame[:cut])


# -- differential: native against fallback against google.protobuf ------------------
# (as fuzzing/fuzz_decode.py): on any bytes both decoders give the same result or the
# same AgentProtocolError; a frame google.protobuf rejects, both reject; a frame they
# accept decodes to what google.protobuf reads.


def _outcome(decode: Any, frame: bytes) -> tuple[str, Any]:
    try:
        message = decode(frame)
    except AgentProtocolError as exc:
        return "error", str(exc)
    return "ok", _fields(message)


def _fields(message: Any) -> tuple[Any, ...]:
    kind = type(message).__name__
    if kind == "IncomingTrackData":
        track = message.track
        return (kind, message.peer_id, track.id, int(track.type), track.metadata, message.data)
    if kind == "IncomingTrackImage":
        return (kind, message.track_id, message.content_type, message.data)
    return (kind,)


def _protobuf_fields(frame: bytes) -> tuple[Any, ...] | None:
    """What google.protobuf reads in ``frame`` (None: it rejects the frame)."""
    try:
        message = AgentResponse.FromString(frame)
    except DecodeError:
        return None
    kind = message.WhichOneof("content")
    if kind == "track_data":
        td = message.track_data
        track = td.track
        return ("IncomingTrackData", td.peer_id, track.id, track.type, track.metadata, td.data)
    if kind == "track_image":
        ti = message.track_image
        return ("IncomingTrackImage", ti.track_id, ti.content_type, ti.data)
    return ("Authenticated",) if kind == "authenticated" else ("UnknownResponse",)


def _check_differential(frame: bytes) -> str:
    """Checks ``frame`` on all three decoders; returns "ok" or "error"."""
    native = _outcome(native_extension().decode_response, frame)
    fallback = _outcome(_codec_py.decode_response, frame)
    assert native == fallback, frame
    reference = _protobuf_fields(frame)
    if reference is None:
        assert native[0] == "error", f"google.protobuf rejects {frame!r}, we decoded it"
    elif native[0] == "ok":
        assert native[1] == reference, frame
    return native[0]


@pytest.mark.parametrize("name", ["several-fields", "track_data"])
def test_truncations_decode_alike_everywhere(name: str) -> None:
    frame = (
        AUTHENTICATED + field_varint(9, 2**40) + TRACK_IMAGE + key(10, 1) + bytes(8) + TRACK_DATA
        if name == "several-fields"
        else TRACK_DATA
    )
    outcomes = [_check_differential(frame[:cut]) for cut in range(len(frame) + 1)]
    assert outcomes[0] == outcomes[-1] == "ok" and "error" in outcomes


@settings(max_examples=300, deadline=None)
@given(frame=st.binary(max_size=64))
def test_random_bytes_decode_alike_everywhere(frame: bytes) -> None:
    _check_differential(frame)


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from([TRACK_DATA, TRACK_IMAGE, AUTHENTICATED + TRACK_DATA]),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_corrupted_frames_decode_alike_everywhere(
    base: bytes, edits: list[tuple[int, int]]
) -> None:
    frame = bytearray(base)
    for position, value in edits:
        frame[position % len(frame)] = value
    _check_differential(bytes(frame))
