"""AgentRequest encoding: byte for byte what google.protobuf and the plain SDK write."""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import numpy as np
import pytest
from fishjam.events._protos.fishjam import (
    AgentRequest as BpRequest,
)
from fishjam.events._protos.fishjam import (
    AgentRequestAddTrack,
    AgentRequestAddTrackCodecParameters,
    AgentRequestAuthRequest,
    AgentRequestCaptureImage,
    AgentRequestInterruptTrack,
    AgentRequestRemoveTrack,
    AgentRequestTrackData,
)
from fishjam.events._protos.fishjam.notifications import Track as BpTrack
from fishjam.events._protos.fishjam.notifications import TrackEncoding, TrackType
from hypothesis import given, settings
from hypothesis import strategies as st

from fishjam_fast._proto.agent_pb2 import AgentRequest as PbRequest

ids = st.text(max_size=80)  # any code point but lone surrogates, non-BMP included
uint32 = st.one_of(
    st.sampled_from([0, 1, 16000, 24000, 2**31, 2**32 - 1]), st.integers(0, 2**32 - 1)
)
int32 = st.one_of(
    st.sampled_from([0, 1, 2, -1, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1)
)
# payload sizes up to 1 MiB; the bytes come from a seeded PRNG (fast even at 1 MiB)
sizes = st.one_of(st.integers(0, 300), st.integers(0, 1 << 20), st.sampled_from([0, 127, 128, 640]))
seeds = st.integers(0, 2**32)
metadata = st.one_of(
    st.just("null"),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4).map(
        lambda d: __import__("json").dumps(d, ensure_ascii=False)
    ),
    st.text(max_size=200),
)


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _pb_track_data(track_id: str, data: bytes) -> bytes:
    message = PbRequest()
    message.track_data.track_id = track_id
    message.track_data.data = data
    return message.SerializeToString()


def _bp(**member: object) -> bytes:
    return bytes(BpRequest(**member))  # type: ignore[arg-type]


def test_documented_examples(codec: SimpleNamespace) -> None:
    assert codec.encode_auth_request("") == bytes.fromhex("0a00")
    assert codec.encode_track_data("x", b"") == bytes.fromhex("22030a0178")
    assert codec.encode_capture_image("") == bytes.fromhex("3200")
    assert codec.encode_track_data("x", b"ab") == bytes.fromhex("22070a017812026162")


@settings(max_examples=60, deadline=None)
@given(track_id=ids, size=sizes, seed=seeds)
def test_track_data_matches_references(
    codec: SimpleNamespace, track_id: str, size: int, seed: int
) -> None:
    data = _payload(size, seed)
    expected = _pb_track_data(track_id, data)
    assert expected == _bp(track_data=AgentRequestTrackData(track_id=track_id, data=data))
    assert codec.encode_track_data(track_id, data) == expected
    assert codec.TrackDataEncoder(track_id).encode(data) == expected
    # any C-contiguous buffer: its raw bytes
    assert codec.encode_track_data(track_id, bytearray(data)) == expected
    assert codec.encode_track_data(track_id, memoryview(data)) == expected
    if size % 2 == 0:
        assert codec.encode_track_data(track_id, np.frombuffer(data, np.int16)) == expected


@settings(max_examples=60, deadline=None)
@given(value=ids)
def test_string_requests_match_references(codec: SimpleNamespace, value: str) -> None:
    cases = [
        (codec.encode_auth_request, "auth_request", "token", AgentRequestAuthRequest),
        (codec.encode_remove_track, "remove_track", "track_id", AgentRequestRemoveTrack),
        (codec.encode_interrupt_track, "interrupt_track", "track_id", AgentRequestInterruptTrack),
        (codec.encode_capture_image, "capture_image", "track_id", AgentRequestCaptureImage),
    ]
    for encode, member, field, bp_class in cases:
        message = PbRequest()
        setattr(getattr(message, member), field, value)
        expected = message.SerializeToString()
        assert expected == _bp(**{member: bp_class(**{field: value})})
        assert encode(value) == expected


def _pb_add_track(
    track_id: str, meta: str, encoding: int, rate: int, channels: int, track_type: int
) -> bytes:
    message = PbRequest()
    message.add_track.track.id = track_id
    message.add_track.track.type = track_type  # type: ignore[assignment]
    message.add_track.track.metadata = meta
    message.add_track.codec_params.encoding = encoding  # type: ignore[assignment]
    message.add_track.codec_params.sample_rate = rate
    message.add_track.codec_params.channels = channels
    return message.SerializeToString()


@settings(max_examples=80, deadline=None)
@given(track_id=ids, meta=metadata, encoding=int32, rate=uint32, channels=uint32, track_type=int32)
def test_add_track_matches_google_protobuf(
    codec: SimpleNamespace,
    track_id: str,
    meta: str,
    encoding: int,
    rate: int,
    channels: int,
    track_type: int,
) -> None:
    expected = _pb_add_track(track_id, meta, encoding, rate, channels, track_type)
    assert codec.encode_add_track(track_id, meta, encoding, rate, channels, track_type) == expected


@settings(max_examples=60, deadline=None)
@given(
    track_id=ids,
    meta=metadata,
    encoding=st.sampled_from(list(TrackEncoding)),
    rate=uint32,
    channels=uint32,
)
def test_add_track_matches_plain_sdk(
    codec: SimpleNamespace, track_id: str, meta: str, encoding: int, rate: int, channels: int
) -> None:
    # what the plain SDK's Agent.add_track builds (type AUDIO, the options' codec params)
    expected = _bp(
        add_track=AgentRequestAddTrack(
            track=BpTrack(id=track_id, type=TrackType.TRACK_TYPE_AUDIO, metadata=meta),
            codec_params=AgentRequestAddTrackCodecParameters(
                encoding=encoding, sample_rate=rate, channels=channels
            ),
        )
    )
    assert codec.encode_add_track(track_id, meta, encoding, rate, channels) == expected
    assert expected == _pb_add_track(track_id, meta, encoding, rate, channels, 2)


def test_add_track_writes_empty_submessages(codec: SimpleNamespace) -> None:
    # AddTrack{track{}, codec_params{}}: both set sub-messages written even when empty
    assert codec.encode_add_track("", "", 0, 0, 0, 0) == bytes.fromhex("12040a001200")


def test_negative_enum_is_ten_byte_varint(codec: SimpleNamespace) -> None:
    frame = codec.encode_add_track("", "", -1, 0, 0, 0)
    assert frame == bytes.fromhex("120f0a00120b08ffffffffffffffffff01")


def test_non_contiguous_data_is_copied_in_c_order(codec: SimpleNamespace) -> None:
    array = np.arange(64, dtype=np.int16).reshape(8, 8)[::2, 1::3]
    assert not array.flags.c_contiguous
    expected = _pb_track_data("t", array.tobytes())
    assert codec.encode_track_data("t", array) == expected
    assert codec.TrackDataEncoder("t").encode(array) == expected
    buffer, _offsets = codec.frame_track_data("t", array, 5)
    assert buffer.tobytes() == codec.frame_track_data("t", array.tobytes(), 5)[0].tobytes()


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [b"x", None, 1, bytearray(b"x")], ids=repr)
def test_non_str_ids_raise_type_error_naming_the_argument(
    codec: SimpleNamespace, bad: object
) -> None:
    with pytest.raises(TypeError, match="token"):
        codec.encode_auth_request(bad)
    for encode in (
        codec.encode_remove_track,
        codec.encode_interrupt_track,
        codec.encode_capture_image,
    ):
        with pytest.raises(TypeError, match="track_id"):
            encode(bad)
    with pytest.raises(TypeError, match="track_id"):
        codec.encode_track_data(bad, b"")
    with pytest.raises(TypeError, match="track_id"):
        codec.TrackDataEncoder(bad)
    with pytest.raises(TypeError, match="track_id"):
        codec.frame_track_data(bad, b"", 1)
    with pytest.raises(TypeError, match="track_id"):
        codec.encode_add_track(bad, "", 0, 16000, 1)
    with pytest.raises(TypeError, match="metadata"):
        codec.encode_add_track("t", bad, 0, 16000, 1)


@pytest.mark.parametrize("bad", ["text", None, 5, [1, 2]], ids=repr)
def test_non_buffer_data_raises_type_error(codec: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        codec.encode_track_data("t", bad)
    with pytest.raises(TypeError, match="bytes-like"):
        codec.TrackDataEncoder("t").encode(bad)
    with pytest.raises(TypeError, match="bytes-like"):
        codec.frame_track_data("t", bad, 10)


def test_lone_surrogates_raise_unicode_encode_error(codec: SimpleNamespace) -> None:
    # as google.protobuf: UnicodeEncodeError, a ValueError
    with pytest.raises(UnicodeEncodeError):
        codec.encode_auth_request("\ud800")
    with pytest.raises(ValueError):
        codec.encode_track_data("a\udfff", b"")
    with pytest.raises(ValueError):
        codec.TrackDataEncoder("\ud800")
    with pytest.raises(ValueError):
        codec.encode_add_track("t", "\ud800", 0, 1, 1)


@pytest.mark.parametrize(
    ("encoding", "rate", "channels", "track_type"),
    [
        (0, 2**32, 1, 2),
        (0, -1, 1, 2),
        (0, 1, 2**32, 2),
        (0, 1, -1, 2),
        (2**31, 1, 1, 2),
        (-(2**31) - 1, 1, 1, 2),
        (0, 1, 1, 2**31),
        (0, 1, 1, 2**100),
    ],
)
def test_numbers_out_of_range_raise_value_error(
    codec: SimpleNamespace, encoding: int, rate: int, channels: int, track_type: int
) -> None:
    with pytest.raises(ValueError, match="out of range"):
        codec.encode_add_track("t", "", encoding, rate, channels, track_type)


@pytest.mark.parametrize("bad", [True, 1.0, "1", None], ids=repr)
def test_non_int_numbers_raise_type_error(codec: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError):
        codec.encode_add_track("t", "", bad, 16000, 1)
    with pytest.raises(TypeError):
        codec.encode_add_track("t", "", 0, bad, 1)
    with pytest.raises(TypeError):
        codec.encode_add_track("t", "", 0, 16000, bad)


def test_numpy_integers_are_accepted(codec: SimpleNamespace) -> None:
    frame = codec.encode_add_track("t", "", np.int32(1), np.uint32(16000), np.int64(2))
    assert frame == codec.encode_add_track("t", "", 1, 16000, 2)


# -- bulk framing ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    track_id=ids,
    size=st.one_of(st.integers(0, 5000), st.sampled_from([0, 1, 640, 6400])),
    chunk_size=st.one_of(st.integers(1, 700), st.sampled_from([1, 127, 128, 640, 10**9])),
    seed=seeds,
)
def test_frame_track_data_equals_per_chunk_encoding(
    codec: SimpleNamespace, track_id: str, size: int, chunk_size: int, seed: int
) -> None:
    payload = _payload(size, seed)
    buffer, offsets = codec.frame_track_data(track_id, payload, chunk_size)
    assert buffer.dtype == np.uint8 and offsets.dtype == np.int64
    chunks = [payload[i : i + chunk_size] for i in range(0, size, chunk_size)]
    assert len(offsets) == len(chunks) + 1
    assert offsets[0] == 0 and offsets[-1] == len(buffer)
    for i, chunk in enumerate(chunks):
        frame = buffer[offsets[i] : offsets[i + 1]].tobytes()
        assert frame == _pb_track_data(track_id, chunk)


def test_frame_track_data_short_last_chunk(codec: SimpleNamespace) -> None:
    buffer, offsets = codec.frame_track_data("t", bytes(range(10)), 4)
    frames = [buffer[a:b].tobytes() for a, b in itertools.pairwise(offsets)]
    assert frames == [
        codec.encode_track_data("t", bytes(range(0, 4))),
        codec.encode_track_data("t", bytes(range(4, 8))),
        codec.encode_track_data("t", bytes(range(8, 10))),
    ]


def test_frame_track_data_empty_payload(codec: SimpleNamespace) -> None:
    buffer, offsets = codec.frame_track_data("t", b"", 640)
    assert len(buffer) == 0 and offsets.tolist() == [0]


@pytest.mark.parametrize("chunk_size", [0, -1, -(2**70)])
def test_frame_track_data_rejects_non_positive_chunk_size(
    codec: SimpleNamespace, chunk_size: int
) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        codec.frame_track_data("t", b"abc", chunk_size)


@pytest.mark.parametrize("chunk_size", [2.0, "3", None])
def test_frame_track_data_rejects_non_int_chunk_size(
    codec: SimpleNamespace, chunk_size: object
) -> None:
    with pytest.raises(TypeError):
        codec.frame_track_data("t", b"abc", chunk_size)
    with pytest.raises(TypeError):
        codec.frame_track_data("t", b"", chunk_size)


def test_frame_track_data_huge_chunk_size_gives_one_frame(codec: SimpleNamespace) -> None:
    buffer, offsets = codec.frame_track_data("t", b"abc", 2**70)
    assert buffer.tobytes() == codec.encode_track_data("t", b"abc")
    assert offsets.tolist() == [0, len(buffer)]
