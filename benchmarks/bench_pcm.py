"""PCM16 packing: 10 s of 24 kHz mono float32 audio into 20 ms track_data frames.

Every figure has its baselines in the same group, measured in the same run; compare
minimum times (``--benchmark-columns=min``):

- ``native_frame_pcm``: fishjam_fast.pcm.frame_pcm on the native kernels (one pass,
  one buffer).
- ``numpy_fallback_frame_pcm16``: the same with the NumPy reference kernels
  (``_pcm_py``, vectorized framing): what runs when the extension is not built.
- ``numpy_reference_per_chunk_protobuf``: the NumPy way a careful user would write:
  clip/scale/astype, then one google.protobuf encode per chunk.
- ``plain_sdk_betterproto_per_chunk``: what the plain SDK does: bytes per chunk, one
  betterproto ``bytes(AgentRequest(track_data=...))`` per chunk.
- ``np_copyto_input`` / ``np_copyto_output``: the memory-bandwidth ceiling: a plain
  copy of as many bytes as the conversion reads (the float32 input), or writes (the
  framed output).

Run: ``pytest benchmarks/bench_pcm.py --benchmark-only --benchmark-columns=min,mean``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from fishjam_fast import _pcm, _pcm_py, pcm
from fishjam_fast._proto.agent_pb2 import AgentRequest as PbAgentRequest

SAMPLE_RATE = 24_000
CHUNK_MS = 20
SAMPLES_PER_CHUNK = SAMPLE_RATE * CHUNK_MS // 1000  # 480
TRACK_ID = "6f1c2a9e0b7d4c3f8e5a1b2c3d4e5f60"  # a uuid4().hex, as the plain SDK makes
GROUP = "pcm: float32 10 s 24 kHz mono -> 20 ms track_data frames"


@pytest.fixture(scope="module")
def audio() -> np.ndarray[Any, np.dtype[np.float32]]:
    rng = np.random.default_rng(0)
    t = np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE
    x = 0.6 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def numpy_reference(x: np.ndarray[Any, Any]) -> list[bytes]:
    pcm16 = np.clip(np.rint(x * np.float32(32767)), -32768, 32767).astype("<i2").tobytes()
    size = 2 * SAMPLES_PER_CHUNK
    frames = []
    for start in range(0, len(pcm16), size):
        message = PbAgentRequest()
        message.track_data.track_id = TRACK_ID
        message.track_data.data = pcm16[start : start + size]
        frames.append(message.SerializeToString())
    return frames


def plain_sdk(x: np.ndarray[Any, Any]) -> list[bytes]:
    from fishjam.events._protos.fishjam import AgentRequest, AgentRequestTrackData

    pcm16 = np.clip(np.rint(x * np.float32(32767)), -32768, 32767).astype("<i2").tobytes()
    size = 2 * SAMPLES_PER_CHUNK
    return [
        bytes(AgentRequest(track_data=AgentRequestTrackData(track_id=TRACK_ID, data=chunk)))
        for chunk in (pcm16[start : start + size] for start in range(0, len(pcm16), size))
    ]


def test_all_ways_give_the_same_frames(audio: np.ndarray[Any, Any]) -> None:
    buffer, offsets = pcm.frame_pcm(TRACK_ID, audio, SAMPLE_RATE, chunk_ms=CHUNK_MS)
    frames = [buffer[a:b].tobytes() for a, b in pairwise(offsets)]
    assert frames == numpy_reference(audio)
    assert frames == plain_sdk(audio[: 20 * SAMPLES_PER_CHUNK]) + frames[20:]
    fb, fo = _pcm_py.frame_pcm16(TRACK_ID, audio, 1, SAMPLES_PER_CHUNK)
    assert fb.tobytes() == buffer.tobytes() and fo.tolist() == offsets.tolist()


@pytest.mark.benchmark(group=GROUP)
def test_native_frame_pcm(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    if not _pcm.NATIVE:
        pytest.skip("native extension not built")
    benchmark(pcm.frame_pcm, TRACK_ID, audio, SAMPLE_RATE, 1, CHUNK_MS)


@pytest.mark.benchmark(group=GROUP)
def test_numpy_fallback_frame_pcm16(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    benchmark(_pcm_py.frame_pcm16, TRACK_ID, audio, 1, SAMPLES_PER_CHUNK)


@pytest.mark.benchmark(group=GROUP)
def test_numpy_reference_per_chunk_protobuf(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    benchmark(numpy_reference, audio)


@pytest.mark.benchmark(group=GROUP)
def test_plain_sdk_betterproto_per_chunk(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    benchmark.pedantic(plain_sdk, args=(audio,), rounds=5, iterations=1)


@pytest.mark.benchmark(group=GROUP)
def test_np_copyto_input(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    out = np.empty_like(audio)
    benchmark(np.copyto, out, audio)


@pytest.mark.benchmark(group=GROUP)
def test_np_copyto_output(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    buffer, _ = _pcm_py.frame_pcm16(TRACK_ID, audio, 1, SAMPLES_PER_CHUNK)
    out = np.empty_like(buffer)
    benchmark(np.copyto, out, buffer)


# smaller groups: the pieces, and the per-call cost that OutgoingTrack.send_chunk pays

ONE_CHUNK = "pcm: one 20 ms chunk (480 float32) -> PCM16 bytes"


@pytest.mark.benchmark(group=ONE_CHUNK)
def test_native_to_pcm16_one_chunk(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    if not _pcm.NATIVE:
        pytest.skip("native extension not built")
    benchmark(pcm.to_pcm16, audio[:SAMPLES_PER_CHUNK])


@pytest.mark.benchmark(group=ONE_CHUNK)
def test_numpy_to_pcm16_one_chunk(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    chunk = audio[:SAMPLES_PER_CHUNK]
    benchmark(
        lambda: np.clip(np.rint(chunk * np.float32(32767)), -32768, 32767).astype("<i2").tobytes()
    )


READ = "pcm: 10 s 24 kHz PCM16 -> float32"


@pytest.mark.benchmark(group=READ)
def test_native_pcm16_to_float32(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    if not _pcm.NATIVE:
        pytest.skip("native extension not built")
    data = pcm.to_pcm16(audio)
    benchmark(pcm.pcm16_to_float32, data)


@pytest.mark.benchmark(group=READ)
def test_numpy_pcm16_to_float32(benchmark: Any, audio: np.ndarray[Any, Any]) -> None:
    data = pcm.to_pcm16(audio)
    benchmark(lambda: np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768)
