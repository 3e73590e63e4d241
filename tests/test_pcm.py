"""PCM16 kernels and the public fishjam_fast.pcm API.

The kernel tests run one body against both implementations (the native extension and
the NumPy reference ``_pcm_py``), compared with an element-by-element oracle written
here in plain Python, and the framing with the reference codec's ``frame_track_data``.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fishjam_fast import _pcm, _pcm_py, pcm
from fishjam_fast._codec_py import frame_track_data
from fishjam_fast._proto.agent_pb2 import AgentRequest

EXPECT_NATIVE = os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _native() -> ModuleType | None:
    try:
        from fishjam_fast import _ext
    except ImportError:
        return None
    return _ext if hasattr(_ext, "frame_pcm16") else None


@pytest.fixture(scope="module", params=["native", "numpy"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The kernels: fishjam_fast._ext's or the NumPy reference's."""
    if request.param == "numpy":
        return _pcm_py
    native = _native()
    if native is None:
        if EXPECT_NATIVE:
            pytest.fail("the native extension with the PCM kernels did not load")
        pytest.skip("native extension not built")
    return native


# ---------------------------------------------------------------- the oracle


def oracle_pcm16(samples: np.ndarray[Any, Any]) -> bytes:
    """PCM16 LE of ``samples`` in C order, one value at a time, in plain Python."""
    values = np.asarray(samples).reshape(-1)  # C order, whatever the layout
    out = []
    for x in values.tolist():
        if values.dtype.kind == "i":
            out.append(x)
            continue
        if not abs(x) <= 2.0:  # NaN and infinities too (tests/test_audio_guard.py)
            raise ValueError("refused")
        if values.dtype.itemsize == 4:  # the product rounds to float32, as NumPy's does
            with np.errstate(over="ignore"):
                v = float(np.float32(x) * np.float32(32767))
        else:
            v = x * 32767.0
        if v >= 32767:
            out.append(32767)
        elif v <= -32768:
            out.append(-32768)
        else:
            out.append(round(v))  # Python rounds half to even, as np.rint
    return struct.pack(f"<{len(out)}h", *out)


def oracle_float32(data: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.array([v / 32768 for v in struct.unpack(f"<{len(data) // 2}h", data)], np.float32)


# ---------------------------------------------------------------- strategies

# values at the edges: the range, beyond it up to the 2.0 guard, and exact .5 after
# scaling (values past 2.0, NaN and infinities are refused: tests/test_audio_guard.py)
_EDGES = [0.0, -0.0, 1.0, -1.0, 1.5, -1.5, 2.0, -2.0, 1e-30]
_EDGES += [32768 / 32767, -32768 / 32767, -32768.5 / 32767, 32766.5 / 32767]
_EDGES += [(k + 0.5) / 32767 for k in (-32768, -3, -2, -1, 0, 1, 2, 3, 100, 32766)]
_EDGES += [k / 32767 for k in (-32768, -32767, 32767, 12345)]
_INT_EDGES = [-32768, -32767, -1, 0, 1, 255, 256, -256, 32767]

_DTYPES = ["<i2", ">i2", "<f4", ">f4", "<f8", ">f8"]


def _elements(dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
    if dtype.kind == "i":
        return st.one_of(st.integers(-32768, 32767), st.sampled_from(_INT_EDGES))
    width = 8 * dtype.itemsize
    with np.errstate(over="ignore"):
        edges = [float(dtype.type(e)) for e in _EDGES]  # exactly representable
    return st.one_of(
        st.floats(-1.0, 1.0, width=width),
        st.floats(-2.0, 2.0, width=width),
        st.sampled_from(edges),
    )


@st.composite
def sample_arrays(draw: st.DrawFn, max_len: int = 300) -> np.ndarray[Any, Any]:
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    n = draw(
        st.one_of(st.sampled_from([0, 1, 7, 8, 9, 16, 479, 480, 481]), st.integers(0, max_len))
    )
    shape = draw(st.sampled_from([(n,), (n, 1), (n, 2), (n, 3)]))
    return draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))


def relayout(a: np.ndarray[Any, Any], how: str) -> np.ndarray[Any, Any]:
    """The same values as ``a`` in another memory layout."""
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "transposed":
        return np.ascontiguousarray(a.T).T if a.ndim == 2 else a
    if how == "reversed":
        return a[::-1].copy()[::-1]
    if how == "strided":
        wide = np.zeros((2 * a.shape[0], *a.shape[1:]), dtype=a.dtype)
        wide[::2] = a
        return wide[::2]
    if how == "column":  # every other column of a wider 2-D array
        if a.ndim == 1:
            return a
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), dtype=a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]
    if how == "unaligned":
        raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
        view = raw[1:].view(a.dtype).reshape(a.shape)
        view[...] = a
        return view
    return a


_LAYOUTS = ["c", "fortran", "transposed", "reversed", "strided", "column", "unaligned"]


# ---------------------------------------------------------------- kernels


def test_native_pcm_loaded_where_expected() -> None:
    if EXPECT_NATIVE:
        assert _pcm.NATIVE, "the native PCM kernels did not load"
        assert _pcm.frame_pcm16.__module__ == "fishjam_fast._ext"
    else:
        assert _pcm.NATIVE == (_pcm.frame_pcm16.__module__ == "fishjam_fast._ext")


def test_no_extensions_variable_forces_numpy_kernels() -> None:
    code = "import fishjam_fast._pcm as p; print(p.NATIVE, p.frame_pcm16.__module__)"
    env = dict(os.environ, FISHJAM_FAST_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "fishjam_fast._pcm_py"]


@SETTINGS
@given(a=sample_arrays(), how=st.sampled_from(_LAYOUTS))
@pytest.mark.slow  # a property test
def test_pcm16_bytes_matches_oracle(impl: ModuleType, a: np.ndarray[Any, Any], how: str) -> None:
    expected = oracle_pcm16(a)
    x = relayout(a, how)
    assert impl.pcm16_bytes(x) == expected
    # into a caller's buffer: uint8 array, little-endian int16 array, bytearray
    out = np.full(2 * a.size, 0xAB, dtype=np.uint8)
    assert impl.pcm16_into(x, out) == 2 * a.size
    assert out.tobytes() == expected
    out16 = np.empty(a.size, dtype="<i2")
    impl.pcm16_into(x, out16)
    assert out16.tobytes() == expected
    buf = bytearray(2 * a.size)
    impl.pcm16_into(x, buf)
    assert bytes(buf) == expected


def test_float_semantics_spelled_out(impl: ModuleType) -> None:
    # products that are exact in float32 and float64 (ties are left to the oracle tests)
    x = [1.0, -1.0, 1.25, -1.25, 2.0, -2.0, -0.0, 0.5, -0.5, 1e-9]
    expected = [32767, -32767, 32767, -32768, 32767, -32768, 0, 16384, -16384, 0]
    for dtype in (np.float32, np.float64):
        got = np.frombuffer(impl.pcm16_bytes(np.array(x, dtype=dtype)), dtype="<i2")
        assert got.tolist() == expected, dtype


def test_long_input_crosses_blocks(impl: ModuleType) -> None:
    rng = np.random.default_rng(7)
    for dtype in ("<f4", ">f8", "<i2", ">i2"):
        raw = rng.uniform(-1.1, 1.1, (3001, 2))
        a = (raw * 30000).astype(dtype) if dtype.endswith("i2") else raw.astype(dtype)
        for how in ("c", "fortran", "strided", "unaligned"):
            assert impl.pcm16_bytes(relayout(a, how)) == oracle_pcm16(a), (dtype, how)


def test_bytes_input_is_pcm16_as_is(impl: ModuleType) -> None:
    data = bytes(range(10))
    assert impl.pcm16_bytes(data) is data
    assert impl.pcm16_bytes(bytearray(data)) == data
    assert impl.pcm16_bytes(memoryview(data)) == data


@SETTINGS
@given(data=st.binary(max_size=600).filter(lambda b: len(b) % 2 == 0))
def test_pcm16_to_float32_matches_oracle(impl: ModuleType, data: bytes) -> None:
    got = impl.pcm16_to_float32(data)
    assert got.dtype == np.float32 and got.shape == (len(data) // 2,)
    np.testing.assert_array_equal(got, oracle_float32(data))
    np.testing.assert_array_equal(got, np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768)


def test_pcm16_to_float32_range(impl: ModuleType) -> None:
    data = struct.pack("<3h", -32768, 0, 32767)
    assert impl.pcm16_to_float32(data).tolist() == [-1.0, 0.0, 32767 / 32768]


# ---------------------------------------------------------------- framing


def _check_frames(
    buffer: np.ndarray[Any, Any],
    offsets: np.ndarray[Any, Any],
    track_id: str,
    pcm16: bytes,
    chunk: int,
) -> None:
    ref_buffer, ref_offsets = frame_track_data(track_id, pcm16, chunk)
    assert buffer.dtype == np.uint8 and offsets.dtype == np.int64
    assert offsets.tolist() == ref_offsets.tolist()
    assert buffer.tobytes() == ref_buffer.tobytes()
    frames = len(offsets) - 1
    for i in sorted({0, frames // 2, frames - 1}) if frames else []:
        message = AgentRequest.FromString(buffer[offsets[i] : offsets[i + 1]].tobytes())
        assert message.WhichOneof("content") == "track_data"
        assert message.track_data.track_id == track_id
        assert message.track_data.data == pcm16[i * chunk : (i + 1) * chunk]


_TRACK_IDS = ["", "t", "0123456789abcdef0123456789abcdef", "ü-🎵", "x" * 200]


@SETTINGS
@given(
    a=sample_arrays(max_len=400),
    how=st.sampled_from(_LAYOUTS),
    track_id=st.one_of(st.sampled_from(_TRACK_IDS), st.text(max_size=20)),
    samples_per_chunk=st.one_of(st.sampled_from([1, 2, 160, 480]), st.integers(1, 100)),
)
@pytest.mark.slow  # a property test
def test_frame_pcm16_matches_reference_codec(
    impl: ModuleType, a: np.ndarray[Any, Any], how: str, track_id: str, samples_per_chunk: int
) -> None:
    channels = a.shape[1] if a.ndim == 2 else 1
    buffer, offsets = impl.frame_pcm16(track_id, relayout(a, how), channels, samples_per_chunk)
    _check_frames(buffer, offsets, track_id, oracle_pcm16(a), 2 * samples_per_chunk * channels)


@pytest.mark.parametrize("samples_per_chunk", [63, 64, 8191, 8192, 10000])
def test_frame_pcm16_multibyte_varints(impl: ModuleType, samples_per_chunk: int) -> None:
    # payloads of 126/128 bytes and 16382/16384 bytes: 1-, 2- and 3-byte length varints
    a = np.linspace(-1, 1, 25_000, dtype=np.float32)
    pcm16 = oracle_pcm16(a)
    for track_id in ("", "a" * 127, "b" * 128):
        buffer, offsets = impl.frame_pcm16(track_id, a, 1, samples_per_chunk)
        _check_frames(buffer, offsets, track_id, pcm16, 2 * samples_per_chunk)


def test_frame_pcm16_bytes_and_interleaved(impl: ModuleType) -> None:
    a = np.arange(-600, 600, dtype=np.int16).reshape(-1, 2)
    pcm16 = a.tobytes()
    for samples in (a, a.reshape(-1), pcm16, bytearray(pcm16), memoryview(pcm16)):
        buffer, offsets = impl.frame_pcm16("track", samples, 2, 160)
        _check_frames(buffer, offsets, "track", pcm16, 640)


def test_frame_pcm16_empty(impl: ModuleType) -> None:
    for samples in (np.zeros(0, np.float32), np.zeros((0, 2), np.int16), b""):
        buffer, offsets = impl.frame_pcm16("t", samples, 2, 480)
        assert buffer.size == 0 and offsets.tolist() == [0]


# ---------------------------------------------------------------- kernel errors


def test_kernel_rejects_wrong_dtype(impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="int32"):
        impl.pcm16_bytes(np.zeros(4, np.int32))


def test_kernel_rejects_3d(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"\(2, 2, 2\)"):
        impl.frame_pcm16("t", np.zeros((2, 2, 2), np.float32), 2, 10)


def test_kernel_rejects_odd_bytes(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="3"):
        impl.pcm16_bytes(bytearray(3))
    with pytest.raises(ValueError, match="3"):
        impl.pcm16_to_float32(b"abc")


def test_kernel_rejects_non_buffer(impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="list"):
        impl.pcm16_bytes([0.0, 1.0])
    with pytest.raises(TypeError, match="list"):
        impl.pcm16_to_float32([1, 2])


def test_kernel_frame_rejects_channel_mismatch(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="channels=3"):
        impl.frame_pcm16("t", np.zeros((4, 2), np.float32), 3, 10)
    with pytest.raises(ValueError, match="5 samples"):
        impl.frame_pcm16("t", np.zeros(5, np.float32), 2, 10)


def test_kernel_frame_rejects_bad_counts(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="samples_per_chunk"):
        impl.frame_pcm16("t", np.zeros(4, np.float32), 1, 0)
    with pytest.raises(ValueError, match="channels"):
        impl.frame_pcm16("t", np.zeros(4, np.float32), 0, 10)


def test_kernel_frame_rejects_non_str_track_id(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.frame_pcm16(b"t", np.zeros(4, np.float32), 1, 10)


def test_kernel_into_rejects_wrong_size(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="7 bytes"):
        impl.pcm16_into(np.zeros(4, np.float32), bytearray(7))


def test_kernel_into_rejects_read_only(impl: ModuleType) -> None:
    out = np.zeros(8, np.uint8)
    out.flags.writeable = False
    with pytest.raises((TypeError, ValueError), match="read-only"):
        impl.pcm16_into(np.zeros(4, np.float32), out)
    with pytest.raises(TypeError, match="bytes"):
        impl.pcm16_into(np.zeros(4, np.float32), bytes(8))


def test_kernel_into_rejects_wrong_out_dtype(impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="float32"):
        impl.pcm16_into(np.zeros(4, np.float32), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match=">i2"):
        impl.pcm16_into(np.zeros(4, np.float32), np.zeros(4, ">i2"))


# ---------------------------------------------------------------- public API


@SETTINGS
@given(a=sample_arrays(), how=st.sampled_from(_LAYOUTS))
@pytest.mark.slow  # a property test
def test_to_pcm16_matches_oracle(a: np.ndarray[Any, Any], how: str) -> None:
    channels = a.shape[1] if a.ndim == 2 else 1
    expected = oracle_pcm16(a)
    assert pcm.to_pcm16(relayout(a, how)) == expected
    assert pcm.to_pcm16(relayout(a, how), channels) == expected
    out = bytearray(len(expected))
    assert pcm.to_pcm16_into(relayout(a, how), out, channels) == len(expected)
    assert out == expected


def test_to_pcm16_bytes_like() -> None:
    data = b"\x01\x00\x02\x00"
    assert pcm.to_pcm16(data) is data
    assert pcm.to_pcm16(bytearray(data), channels=2) == data
    assert pcm.to_pcm16(memoryview(data)) == data


def test_to_pcm16_flat_interleaved() -> None:
    a = np.arange(8, dtype=np.int16)
    assert pcm.to_pcm16(a, channels=2) == pcm.to_pcm16(a.reshape(4, 2)) == a.tobytes()


def test_from_pcm16_is_a_read_only_view() -> None:
    data = bytearray(struct.pack("<4h", 1, -2, 32767, -32768))
    view = pcm.from_pcm16(data)
    assert view.dtype == np.dtype("<i2") and view.shape == (4,)
    assert view.tolist() == [1, -2, 32767, -32768]
    assert np.shares_memory(view, np.frombuffer(data, dtype=np.uint8))
    assert view.base is not None
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 5
    data[0] = 9  # a view: it sees changes to the bytes
    assert view[0] == 9
    stereo = pcm.from_pcm16(data, channels=2)
    assert stereo.shape == (2, 2) and stereo.tolist() == [[9, -2], [32767, -32768]]
    assert not stereo.flags.writeable


def test_incoming_pcm_view_and_samples() -> None:
    data = struct.pack("<3h", -32768, 16384, 32767)
    view = pcm.incoming_pcm_view(data)
    assert view.tolist() == [-32768, 16384, 32767] and not view.flags.writeable
    assert np.shares_memory(view, np.frombuffer(data, dtype=np.uint8))
    samples = pcm.incoming_samples(data)
    assert samples.dtype == np.float32 and samples.flags.writeable and samples.flags.owndata
    assert samples.tolist() == [-1.0, 0.5, 32767 / 32768]
    assert not np.shares_memory(samples, view)


def test_pcm16_to_float32_channels() -> None:
    data = struct.pack("<4h", 0, 16384, -16384, -32768)
    assert pcm.pcm16_to_float32(data, channels=2).tolist() == [[0.0, 0.5], [-0.5, -1.0]]


@pytest.mark.parametrize("n", [0, 1, 479, 480, 481, 960, 24_000])
def test_chunk_pcm(n: int) -> None:
    a = np.linspace(-1, 1, n, dtype=np.float32)
    chunks = pcm.chunk_pcm(a, 24_000)
    assert b"".join(chunks) == oracle_pcm16(a)
    assert all(len(c) == 960 for c in chunks[:-1])
    assert len(chunks) == -(-n // 480)
    assert all(type(c) is bytes for c in chunks)


def test_chunk_pcm_stereo() -> None:
    a = np.zeros((500, 2), np.int16)
    chunks = pcm.chunk_pcm(a, 16_000, channels=2, chunk_ms=10)
    assert [len(c) for c in chunks] == [640, 640, 640, 80]


@pytest.mark.parametrize("channels", [1, 2])
def test_frame_pcm_matches_reference_codec(channels: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(-1.2, 1.2, (24_000 * 2 + 17, channels)).astype(np.float32)
    if channels == 1:
        a = a[:, 0]
    buffer, offsets = pcm.frame_pcm("track-1", a, 24_000, channels=channels)
    _check_frames(buffer, offsets, "track-1", oracle_pcm16(a), 960 * channels)
    assert len(offsets) == 102


# ---------------------------------------------------------------- public API errors


@pytest.mark.parametrize(
    ("samples", "named"),
    [
        (np.zeros(4, np.int32), "int32"),
        (np.zeros(4, np.uint8), "uint8"),
        (np.zeros(4, np.uint16), "uint16"),
        (np.zeros(4, np.float16), "float16"),
        (np.zeros(4, np.complex64), "complex64"),
        (np.zeros(4, bool), "bool"),
        (np.zeros(4, object), "object"),
        ([0.0, 0.5], "list"),
        ("abcd", "str"),
        (None, "NoneType"),
        (0.5, "float"),
        (np.float32(0.5), "scalar"),
    ],
)
def test_to_pcm16_rejects_type(samples: object, named: str) -> None:
    with pytest.raises(TypeError, match=named) as info:
        pcm.to_pcm16(samples)  # type: ignore[arg-type]
    assert "int16, float32 or float64" in str(info.value)


def test_to_pcm16_rejects_3d() -> None:
    with pytest.raises(ValueError, match=r"3-d array of shape \(2, 2, 2\)"):
        pcm.to_pcm16(np.zeros((2, 2, 2), np.float32))


def test_to_pcm16_rejects_0d() -> None:
    with pytest.raises(ValueError, match="0-d"):
        pcm.to_pcm16(np.array(0.5, np.float32))


def test_to_pcm16_rejects_channel_mismatch() -> None:
    with pytest.raises(ValueError, match=r"shape \(4, 2\) have 2 channels, but channels=1"):
        pcm.to_pcm16(np.zeros((4, 2), np.float32), channels=1)


def test_to_pcm16_rejects_uneven_interleaving() -> None:
    with pytest.raises(ValueError, match="5 interleaved samples"):
        pcm.to_pcm16(np.zeros(5, np.float32), channels=2)


def test_to_pcm16_rejects_zero_width() -> None:
    with pytest.raises(ValueError, match=r"\(4, 0\)"):
        pcm.to_pcm16(np.zeros((4, 0), np.float32))


def test_to_pcm16_rejects_odd_bytes() -> None:
    with pytest.raises(ValueError, match="got 5"):
        pcm.to_pcm16(b"\x00" * 5)


def test_to_pcm16_rejects_bytes_not_whole_frames() -> None:
    with pytest.raises(ValueError, match=r"6 bytes .* 2 channels"):
        pcm.to_pcm16(b"\x00" * 6, channels=2)


def test_to_pcm16_rejects_strided_buffer() -> None:
    with pytest.raises(ValueError, match="C-contiguous"):
        pcm.to_pcm16(memoryview(b"\x00" * 8)[::2])


@pytest.mark.parametrize(
    ("channels", "error"), [(0, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError)]
)
def test_rejects_bad_channels(channels: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="channels"):
        pcm.to_pcm16(np.zeros(4, np.float32), channels)  # type: ignore[arg-type]
    with pytest.raises(error, match="channels"):
        pcm.from_pcm16(b"\x00" * 4, channels)  # type: ignore[arg-type]


def test_from_pcm16_rejects_odd_bytes() -> None:
    with pytest.raises(ValueError, match=r"even number of bytes.*got 3"):
        pcm.from_pcm16(b"abc")
    with pytest.raises(ValueError, match="got 3"):
        pcm.incoming_pcm_view(b"abc")
    with pytest.raises(ValueError, match="got 3"):
        pcm.incoming_samples(b"abc")


def test_from_pcm16_rejects_partial_frames() -> None:
    with pytest.raises(ValueError, match=r"6 bytes .* 2 channels"):
        pcm.from_pcm16(b"\x00" * 6, channels=2)


def test_from_pcm16_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="list"):
        pcm.from_pcm16([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        pcm.incoming_pcm_view("ab")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sample_rate", "chunk_ms", "error", "named"),
    [
        (0, 20, ValueError, "sample_rate"),
        (-16000, 20, ValueError, "sample_rate"),
        (16000.0, 20, TypeError, "sample_rate"),
        (16000, 0, ValueError, "chunk_ms"),
        (16000, -20, ValueError, "chunk_ms"),
        (11025, 20, ValueError, "220.5 samples"),
    ],
)
def test_frame_pcm_rejects_timing(
    sample_rate: Any, chunk_ms: Any, error: type[Exception], named: str
) -> None:
    a = np.zeros(100, np.float32)
    with pytest.raises(error, match=named):
        pcm.frame_pcm("t", a, sample_rate, chunk_ms=chunk_ms)
    with pytest.raises(error, match=named):
        pcm.chunk_pcm(a, sample_rate, chunk_ms=chunk_ms)


def test_frame_pcm_rejects_non_str_track_id() -> None:
    with pytest.raises(TypeError, match="track_id must be str, not bytes"):
        pcm.frame_pcm(b"t", np.zeros(4, np.float32), 16000)  # type: ignore[arg-type]


def test_frame_pcm_rejects_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="channels=1"):
        pcm.frame_pcm("t", np.zeros((4, 2), np.float32), 16000)


def test_to_pcm16_into_rejects_wrong_size() -> None:
    with pytest.raises(ValueError, match="out holds 6 bytes"):
        pcm.to_pcm16_into(np.zeros(4, np.float32), bytearray(6))
