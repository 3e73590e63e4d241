"""Malformed AgentResponse frames: AgentProtocolError naming the offset, nothing else."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fishjam_fast.errors import AgentError, AgentProtocolError
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


@pytest.mark.parametrize("name", ["several-fields", "track_data"])
def test_any_truncation_is_a_result_or_an_error(codec: SimpleNamespace, name: str) -> None:
    frame = (
        AUTHENTICATED + field_varint(9, 2**40) + TRACK_IMAGE + key(10, 1) + bytes(8) + TRACK_DATA
        if name == "several-fields"
        else TRACK_DATA
    )
    for cut in range(len(frame) + 1):
        try:
            codec.decode_response(frame[:cut])
        except AgentProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(frame=st.binary(max_size=64))
def test_random_bytes_give_a_result_or_protocol_error(codec: SimpleNamespace, frame: bytes) -> None:
    try:
        codec.decode_response(frame)
    except AgentProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from([TRACK_DATA, TRACK_IMAGE, AUTHENTICATED + TRACK_DATA]),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_corrupted_frames_give_a_result_or_protocol_error(
    codec: SimpleNamespace, base: bytes, edits: list[tuple[int, int]]
) -> None:
    frame = bytearray(base)
    for position, value in edits:
        frame[position % len(frame)] = value
    try:
        codec.decode_response(bytes(frame))
    except AgentProtocolError:
        pass
