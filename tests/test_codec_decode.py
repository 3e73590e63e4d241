"""AgentResponse decoding: the same result as google.protobuf's own parse.

Frames are built at the wire level from google.protobuf-valid parts, then mutated:
unknown fields of every wire type (top level and nested), any field order, repeated
fields (scalars: last wins; sub-messages: merged; another oneof member: replaces).
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fishjam_fast import pcm
from fishjam_fast._proto.agent_pb2 import AgentResponse
from fishjam_fast.enums import TrackType
from tests.wire import field_len, field_varint, key, varint

# (field, wire type) of every known field, per message
TRACK = {1: 2, 2: 0, 3: 2}
TRACK_DATA = {1: 2, 2: 2, 3: 2}
TRACK_IMAGE = {1: 2, 2: 2, 3: 2}
RESPONSE = {1: 2, 2: 2, 3: 2}

texts = st.text(max_size=12).map(str.encode)
uint64 = st.one_of(
    st.sampled_from([0, 1, 2, 3, 2**31, 2**32 + 2, 2**64 - 1]), st.integers(0, 2**64 - 1)
)


@st.composite
def unknown_field(draw: st.DrawFn, known: dict[int, int]) -> tuple[int, bytes]:
    """An unknown field: a new number, or a known one with another wire type."""
    wire_type = draw(st.sampled_from([0, 1, 2, 5]))
    field = draw(
        st.one_of(st.integers(1, 40), st.integers(1, 2**29 - 1)).filter(
            lambda f: known.get(f) != wire_type
        )
    )
    if wire_type == 0:
        payload = varint(draw(uint64))
    elif wire_type == 1:
        payload = draw(st.binary(min_size=8, max_size=8))
    elif wire_type == 5:
        payload = draw(st.binary(min_size=4, max_size=4))
    else:
        body = draw(st.binary(max_size=10))
        payload = varint(len(body)) + body
    return field, key(field, wire_type) + payload


def unknowns(known: dict[int, int]) -> st.SearchStrategy[bytes]:
    return unknown_field(known).map(lambda f: f[1])


track = st.lists(
    st.one_of(
        texts.map(lambda s: field_len(1, s)),
        uint64.map(lambda v: field_varint(2, v)),
        texts.map(lambda s: field_len(3, s)),
        unknowns(TRACK),
    ),
    max_size=5,
).map(b"".join)

track_data = st.lists(
    st.one_of(
        texts.map(lambda s: field_len(1, s)),
        track.map(lambda t: field_len(2, t)),
        st.binary(max_size=40).map(lambda d: field_len(3, d)),
        unknowns(TRACK_DATA),
    ),
    max_size=6,
).map(b"".join)

track_image = st.lists(
    st.one_of(
        texts.map(lambda s: field_len(1, s)),
        texts.map(lambda s: field_len(2, s)),
        st.binary(max_size=40).map(lambda d: field_len(3, d)),
        unknowns(TRACK_IMAGE),
    ),
    max_size=6,
).map(b"".join)

authenticated = st.lists(unknowns({}), max_size=2).map(b"".join)

# top-level parts: (field number if unknown else 0, bytes)
top_part = st.one_of(
    authenticated.map(lambda m: (0, field_len(1, m))),
    track_data.map(lambda m: (0, field_len(2, m))),
    track_image.map(lambda m: (0, field_len(3, m))),
    unknown_field(RESPONSE),
)
responses = st.lists(top_part, max_size=5)


def _check_against_protobuf(codec: SimpleNamespace, frame: bytes, last_unknown: int) -> None:
    expected = AgentResponse.FromString(frame)
    result = codec.decode_response(frame)
    kind = expected.WhichOneof("content")
    if kind == "track_data":
        td = expected.track_data
        assert type(result) is codec.IncomingTrackData
        assert result.peer_id == td.peer_id
        assert type(result.data) is bytes and result.data == td.data
        assert type(result.track) is codec.Track
        assert result.track.id == td.track.id
        assert result.track.metadata == td.track.metadata
        assert result.track.type == td.track.type
        if 0 <= td.track.type <= 2:
            assert type(result.track.type) is TrackType
        else:
            assert type(result.track.type) is int
    elif kind == "track_image":
        ti = expected.track_image
        assert result == codec.IncomingTrackImage(ti.track_id, ti.content_type, ti.data)
        assert type(result.data) is bytes
    elif kind == "authenticated":
        assert result == codec.Authenticated()
    else:
        assert result == codec.UnknownResponse(last_unknown)


@settings(max_examples=300, deadline=None)
@given(parts=responses)
@pytest.mark.slow  # a property test: hundreds of messages
def test_decode_matches_google_protobuf(
    codec: SimpleNamespace, parts: list[tuple[int, bytes]]
) -> None:
    frame = b"".join(p for _, p in parts)
    last_unknown = next((f for f, _ in reversed(parts) if f), 0)
    _check_against_protobuf(codec, frame, last_unknown)


@settings(max_examples=100, deadline=None)
@given(parts=responses, data=st.data())
@pytest.mark.slow  # a property test: hundreds of messages
def test_decode_shuffled_and_repeated(
    codec: SimpleNamespace, parts: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    parts = data.draw(st.permutations(parts + parts[: data.draw(st.integers(0, len(parts)))]))
    frame = b"".join(p for _, p in parts)
    last_unknown = next((f for f, _ in reversed(parts) if f), 0)
    _check_against_protobuf(codec, frame, last_unknown)


# -- specific rules ------------------------------------------------------------------


def _td(*fields: bytes) -> bytes:
    return field_len(2, b"".join(fields))


def test_plain_track_data(codec: SimpleNamespace) -> None:
    frame = _td(
        field_len(1, b"peer"),
        field_len(2, field_len(1, b"tr") + field_varint(2, 2) + field_len(3, b"{}")),
        field_len(3, b"\x01\x02"),
    )
    result = codec.decode_response(frame)
    assert result == codec.IncomingTrackData(
        "peer", codec.Track("tr", TrackType.TRACK_TYPE_AUDIO, "{}"), b"\x01\x02"
    )
    assert result.track.type is TrackType.TRACK_TYPE_AUDIO


def test_repeated_scalar_last_wins_and_submessages_merge(codec: SimpleNamespace) -> None:
    frame = _td(field_len(1, b"a"), field_len(2, field_len(1, b"t1"))) + _td(
        field_len(1, b"b"), field_len(2, field_varint(2, 1)), field_len(3, b"x")
    )
    assert codec.decode_response(frame) == codec.IncomingTrackData(
        "b", codec.Track("t1", TrackType.TRACK_TYPE_VIDEO, ""), b"x"
    )


def test_other_oneof_member_replaces(codec: SimpleNamespace) -> None:
    frame = _td(field_len(1, b"a")) + field_len(3, field_len(2, b"image/png")) + _td()
    assert codec.decode_response(frame) == codec.IncomingTrackData()
    frame = _td(field_len(1, b"a")) + field_len(3, field_len(2, b"image/png"))
    assert codec.decode_response(frame) == codec.IncomingTrackImage("", "image/png", b"")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        (2**31 - 1, 2**31 - 1),
        (2**64 - 1, -1),  # a negative int32 enum is a 10-byte varint
        (2**32 + 2, TrackType.TRACK_TYPE_AUDIO),  # truncated to int32, as protobuf
        (2**31, -(2**31)),
    ],
)
def test_enum_values(codec: SimpleNamespace, value: int, expected: int) -> None:
    result = codec.decode_response(_td(field_len(2, field_varint(2, value))))
    assert result.track.type == expected
    assert type(result.track.type) is type(expected)


def test_unknown_response(codec: SimpleNamespace) -> None:
    assert codec.decode_response(b"") == codec.UnknownResponse(0)
    assert codec.decode_response(field_len(9, b"new")) == codec.UnknownResponse(9)
    # a known field with another wire type is an unknown field
    assert codec.decode_response(field_varint(2, 5)) == codec.UnknownResponse(2)
    assert codec.decode_response(field_len(1, b"") + field_len(9, b"")) == codec.Authenticated()


def test_known_field_with_wrong_wire_type_is_skipped(codec: SimpleNamespace) -> None:
    frame = _td(field_varint(1, 7), field_len(2, field_len(2, b"\x02")), key(3, 5) + b"abcd")
    assert codec.decode_response(frame) == codec.IncomingTrackData()


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, lambda b: np.frombuffer(b, np.uint8)],
    ids=["bytes", "bytearray", "memoryview", "ndarray"],
)
def test_any_buffer_decodes(codec: SimpleNamespace, wrap: object) -> None:
    frame = _td(field_len(1, b"p"), field_len(3, b"data"))
    result = codec.decode_response(wrap(frame))  # type: ignore[operator]
    assert result == codec.IncomingTrackData("p", codec.Track(), b"data")


def test_non_contiguous_frame(codec: SimpleNamespace) -> None:
    frame = _td(field_len(1, b"p"), field_len(3, b"data"))
    strided = np.frombuffer(bytes(b for c in frame for b in (c, 0)), np.uint8)[::2]
    assert codec.decode_response(strided) == codec.decode_response(frame)


@pytest.mark.parametrize("bad", ["text", None, 3], ids=repr)
def test_non_buffer_frame_raises_type_error(codec: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        codec.decode_response(bad)


# -- the message classes behave like the dataclasses ---------------------------------


def test_message_classes(codec: SimpleNamespace) -> None:
    track = codec.Track("t", TrackType.TRACK_TYPE_AUDIO, "{}")
    assert repr(track) == "Track(id='t', type=<TrackType.TRACK_TYPE_AUDIO: 2>, metadata='{}')"
    data = codec.IncomingTrackData("p", track, b"x")
    assert repr(data) == f"IncomingTrackData(peer_id='p', track={track!r}, data=b'x')"
    assert repr(codec.IncomingTrackImage("t", "image/jpeg", b"")) == (
        "IncomingTrackImage(track_id='t', content_type='image/jpeg', data=b'')"
    )
    assert repr(codec.Authenticated()) == "Authenticated()"
    assert repr(codec.UnknownResponse(5)) == "UnknownResponse(field_number=5)"
    assert data == codec.IncomingTrackData(peer_id="p", track=track, data=b"x")
    assert data != codec.IncomingTrackData("q", track, b"x")
    assert codec.Track() == codec.Track("", TrackType.TRACK_TYPE_UNSPECIFIED, "")
    assert codec.IncomingTrackData().track == codec.Track()
    with pytest.raises(TypeError):
        hash(track)
    match data:
        case codec.IncomingTrackData(peer, codec.Track(track_id, kind, _), payload):
            assert (peer, track_id, kind, payload) == ("p", "t", 2, b"x")
        case _:
            pytest.fail("no match")
    data.peer_id = "z"
    assert data.peer_id == "z"
    assert pickle.loads(pickle.dumps(data)) == data


def test_repeated_strings_stay_right(codec: SimpleNamespace) -> None:
    # the native decoder reuses recently decoded short strings: ids that differ only in
    # the middle (same length, same first and last 8 bytes) must still come out right
    ids = [f"peer-000{i:04d}-suffix00" for i in range(300)] * 2
    for peer_id in ids:
        frame = _td(field_len(1, peer_id.encode()), field_len(2, field_len(3, peer_id.encode())))
        result = codec.decode_response(frame)
        assert result.peer_id == peer_id and result.track.metadata == peer_id
    long_id = "ü" * 200
    assert codec.decode_response(_td(field_len(1, long_id.encode()))).peer_id == long_id


def test_native_fields_cannot_be_deleted() -> None:
    ext = pytest.importorskip("fishjam_fast._ext")
    message = ext.decode_response(_td(field_len(1, b"p")))
    with pytest.raises(AttributeError):
        del message.peer_id
    with pytest.raises(AttributeError):
        del message.track.id
    message.peer_id = "q"  # fields stay settable, as on the dataclasses
    assert message.peer_id == "q"


def _outcome(function: Callable[[], Any]) -> tuple[str, Any]:
    try:
        result = function()
    except (TypeError, ValueError) as exc:
        return "error", (type(exc), str(exc))
    return "ok", (result.dtype, result.shape, result.tolist(), result.flags.writeable)


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<4h", -32768, -1, 16384, 32767),
        b"",
        bytearray(b"\x01\x02\x03\x04"),
        memoryview(b"\x01\x02\x03\x04\x05\x06")[::2],  # strided: refused
        b"\x01\x02\x03",  # odd
        bytearray(b"\x01"),
        "ab",
        None,
    ],
    ids=["bytes", "empty", "bytearray", "strided", "odd", "odd-bytearray", "str", "none"],
)
def test_track_data_samples_and_pcm_are_the_pcm_module_s(codec: SimpleNamespace, data: Any) -> None:
    # .samples() and .pcm give what fishjam_fast.pcm's incoming_* give for the same
    # data, results and errors alike (the native samples() calls the kernel directly)
    message = codec.IncomingTrackData("p", codec.Track(), b"")
    message.data = data
    assert _outcome(message.samples) == _outcome(lambda: pcm.incoming_samples(data))
    assert _outcome(lambda: message.pcm) == _outcome(lambda: pcm.incoming_pcm_view(data))


def test_decoded_track_data_samples_and_pcm() -> None:
    ext = pytest.importorskip("fishjam_fast._ext")
    payload = struct.pack("<3h", -32768, 16384, 32767)
    message = ext.decode_response(_td(field_len(3, payload)))
    samples = message.samples()
    assert samples.dtype == np.float32 and samples.flags.owndata and samples.flags.writeable
    assert samples.tolist() == [-1.0, 0.5, 32767 / 32768]
    assert message.samples() is not samples  # a new array each time
    view = message.pcm  # a read-only view of the bytes, no copy
    assert view.dtype == np.dtype("<i2") and view.tolist() == [-32768, 16384, 32767]
    assert not view.flags.writeable
    assert np.shares_memory(view, np.frombuffer(message.data, dtype=np.uint8))
