"""Codec micro-benchmarks: native vs the plain SDK (betterproto) vs google.protobuf.

The hot messages: a 640-byte track_data (20 ms of 16 kHz mono PCM16), encoded as the
agent sends it and decoded as it receives it. Every decode yields usable Python
objects of all fields (peer_id, track id/type/metadata, data bytes). Run:

    pytest benchmarks/bench_codec.py --benchmark-only

benchmarks/conftest.py prints each group's min-time ratios after the table.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import betterproto
import pytest
from fishjam.events._protos.fishjam import AgentRequest as BpRequest
from fishjam.events._protos.fishjam import AgentRequestTrackData as BpTrackData
from fishjam.events._protos.fishjam import AgentResponse as BpResponse

from fishjam_fast import _codec_py
from fishjam_fast._proto.agent_pb2 import AgentRequest as PbRequest
from fishjam_fast._proto.agent_pb2 import AgentResponse as PbResponse

native: Any
try:
    from fishjam_fast import _ext as native
except ImportError:  # pragma: no cover
    native = None

TRACK_ID = "0f4e1c2b9a8d4c3e8f7a6b5c4d3e2f1a"  # uuid4().hex, as the SDK makes them
PAYLOAD = os.urandom(640)
FRAME = _codec_py.encode_track_data(TRACK_ID, PAYLOAD)


def _incoming_frame(peer: str = "8d0a0e2e-4a1b-4c8e-9d6f-2b7f3c1a5e90") -> bytes:
    message = PbResponse()
    message.track_data.peer_id = peer
    message.track_data.track.id = f"{peer}:7c1d"
    message.track_data.track.type = 2  # type: ignore[assignment]
    message.track_data.track.metadata = '{"type":"microphone"}'
    message.track_data.data = PAYLOAD
    return message.SerializeToString()


INCOMING = _incoming_frame()
# 64 peers in turn: more than the native decoder's cache of recent strings holds, so
# every string is decoded anew (the worst case for it; one peer is the common case)
MANY_PEERS = [_incoming_frame(f"8d0a0e2e-4a1b-4c8e-9d6f-{i:012x}") for i in range(64)]
needs_native = pytest.mark.skipif(native is None, reason="native extension unavailable")


def _run(benchmark: Any, function: Any, *args: Any, slow: bool = False) -> Any:
    """Times ``function(*args)`` per call: the mean of a fixed number of iterations per
    round (a single sub-microsecond call is below the timer's resolution); the
    report's min is then the best round."""
    iterations, rounds = (20, 30) if slow else (500, 100)
    return benchmark.pedantic(
        function, args=args, iterations=iterations, rounds=rounds, warmup_rounds=2
    )


# -- encode -----------------------------------------------------------------------------


@needs_native
def test_encode_native_encoder(benchmark: Any) -> None:
    benchmark.group = "encode track_data 640 B"
    encoder = native.TrackDataEncoder(TRACK_ID)
    assert _run(benchmark, encoder.encode, PAYLOAD) == FRAME


@needs_native
def test_encode_native_function(benchmark: Any) -> None:
    benchmark.group = "encode track_data 640 B"
    assert _run(benchmark, native.encode_track_data, TRACK_ID, PAYLOAD) == FRAME


def test_encode_google_protobuf(benchmark: Any) -> None:
    benchmark.group = "encode track_data 640 B"

    def encode(track_id: str, data: bytes) -> bytes:
        return PbRequest(
            track_data=PbRequest.TrackData(track_id=track_id, data=data)
        ).SerializeToString()

    assert _run(benchmark, encode, TRACK_ID, PAYLOAD) == FRAME


def test_encode_betterproto_sdk(benchmark: Any) -> None:
    benchmark.group = "encode track_data 640 B"

    def encode(track_id: str, data: bytes) -> bytes:  # what OutgoingTrack.send_chunk builds
        return bytes(BpRequest(track_data=BpTrackData(track_id=track_id, data=data)))

    assert _run(benchmark, encode, TRACK_ID, PAYLOAD, slow=True) == FRAME


# -- decode -----------------------------------------------------------------------------

Fields = tuple[str, str, int, str, bytes]


def _decode_native(frame: bytes) -> Fields:
    message = native.decode_response(frame)
    track = message.track
    return message.peer_id, track.id, track.type, track.metadata, message.data


def _decode_google_protobuf(frame: bytes) -> Fields:
    message = PbResponse.FromString(frame)
    if message.WhichOneof("content") != "track_data":
        raise AssertionError
    data = message.track_data
    track = data.track
    return data.peer_id, track.id, track.type, track.metadata, data.data


def _decode_betterproto(frame: bytes) -> Fields:  # what the plain Agent.receive does
    _, message = betterproto.which_one_of(BpResponse().parse(frame), "content")
    track = message.track
    return message.peer_id, track.id, track.type, track.metadata, message.data


EXPECTED = _decode_google_protobuf(INCOMING)


@needs_native
def test_decode_native(benchmark: Any) -> None:
    benchmark.group = "decode track_data 640 B"
    assert _run(benchmark, _decode_native, INCOMING) == EXPECTED


def test_decode_google_protobuf(benchmark: Any) -> None:
    benchmark.group = "decode track_data 640 B"
    assert _run(benchmark, _decode_google_protobuf, INCOMING) == EXPECTED


def test_decode_betterproto_sdk(benchmark: Any) -> None:
    benchmark.group = "decode track_data 640 B"
    assert _run(benchmark, _decode_betterproto, INCOMING, slow=True) == EXPECTED


# -- reading the fields of a decoded message ----------------------------------------------
# The native classes publish their fields the way Cython does (`cdef public`: getset
# descriptors, which CPython 3.11 does not specialize); the fallback's are __slots__
# dataclasses (member descriptors, LOAD_ATTR_SLOT). What the difference costs per read:


def _read_fields(message: Any) -> Fields:
    track = message.track
    return message.peer_id, track.id, track.type, track.metadata, message.data


@needs_native
def test_read_fields_native(benchmark: Any) -> None:
    benchmark.group = "read 5 fields of a decoded track_data"
    assert _run(benchmark, _read_fields, native.decode_response(INCOMING)) == EXPECTED


def test_read_fields_google_protobuf(benchmark: Any) -> None:
    benchmark.group = "read 5 fields of a decoded track_data"
    message = PbResponse.FromString(INCOMING).track_data
    assert _run(benchmark, _read_fields, message) == EXPECTED


def _cycling(decode: Any) -> Any:
    frames = itertools.cycle(MANY_PEERS)
    return lambda: decode(next(frames))


@needs_native
def test_decode_64_peers_native(benchmark: Any) -> None:
    benchmark.group = "decode track_data 640 B, 64 peers in turn"
    _run(benchmark, _cycling(_decode_native))


def test_decode_64_peers_google_protobuf(benchmark: Any) -> None:
    benchmark.group = "decode track_data 640 B, 64 peers in turn"
    _run(benchmark, _cycling(_decode_google_protobuf))


def test_decode_64_peers_betterproto_sdk(benchmark: Any) -> None:
    benchmark.group = "decode track_data 640 B, 64 peers in turn"
    _run(benchmark, _cycling(_decode_betterproto), slow=True)


# -- bulk framing -------------------------------------------------------------------------

SECOND = os.urandom(32000)  # 1 s of 16 kHz mono, in 640-byte chunks


@needs_native
def test_frame_1s_native_bulk(benchmark: Any) -> None:
    benchmark.group = "frame 1 s (50 x 640 B)"
    _buffer, offsets = benchmark(native.frame_track_data, TRACK_ID, SECOND, 640)
    assert len(offsets) == 51


@needs_native
def test_frame_1s_native_per_chunk(benchmark: Any) -> None:
    benchmark.group = "frame 1 s (50 x 640 B)"
    encode = native.TrackDataEncoder(TRACK_ID).encode
    view = memoryview(SECOND)
    benchmark(lambda: [encode(view[i : i + 640]) for i in range(0, 32000, 640)])


def test_frame_1s_betterproto_sdk(benchmark: Any) -> None:
    benchmark.group = "frame 1 s (50 x 640 B)"
    benchmark(
        lambda: [
            bytes(BpRequest(track_data=BpTrackData(track_id=TRACK_ID, data=SECOND[i : i + 640])))
            for i in range(0, 32000, 640)
        ]
    )
