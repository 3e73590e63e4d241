"""The float guard: float samples beyond 2.0 in magnitude are refused, not clipped.

int16-range audio passed as float (values in the thousands) used to be clipped silently
(half the samples at full scale). Both kernels (native and the NumPy reference) detect
it in the conversion pass and raise the same ValueError; values just past 1.0 are still
clipped.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fishjam_fast import _pcm_py, pcm

EXPECT_NATIVE = os.environ.get("FISHJAM_FAST_EXPECT_NATIVE") == "1"
MESSAGE = _pcm_py.FLOAT_RANGE_ERROR


@pytest.fixture(scope="module", params=["native", "numpy"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The kernels: fishjam_fast._ext's or the NumPy reference's."""
    if request.param == "numpy":
        return _pcm_py
    try:
        from fishjam_fast import _ext
    except ImportError:
        if EXPECT_NATIVE:
            pytest.fail("the native extension did not load")
        pytest.skip("native extension not built")
    return _ext


def _all_kernels(impl: ModuleType, a: np.ndarray[Any, Any]) -> list[Any]:
    """Runs every float -> PCM16 entry point on ``a``; their results (or raises)."""
    channels = a.shape[1] if a.ndim == 2 else 1
    out = np.zeros(2 * a.size, dtype=np.uint8)
    return [
        impl.pcm16_bytes(a),
        impl.pcm16_into(a, out),
        impl.frame_pcm16("t", a, channels, 7),
    ]


def test_message_says_range_and_scaling() -> None:
    assert "[-1, 1]" in MESSAGE and "samples / 32768" in MESSAGE and "2.0" in MESSAGE


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f4", ">f8"])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 600, 1027])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_int16_scale_float_is_refused(impl: ModuleType, dtype: Any, n: int, where: str) -> None:
    # positions in the SIMD body and in the scalar tail of the kernels, whole arrays
    # and strided views (gathered in blocks)
    a = np.full(n, 0.25, dtype=dtype)
    a[{"first": 0, "middle": n // 2, "last": n - 1}[where]] = 1234.0
    for x in (a, np.repeat(a, 2)[::2], a.reshape(-1, 1)):
        for kernel in ("pcm16_bytes", "pcm16_into", "frame_pcm16"):
            with pytest.raises(ValueError) as info:
                if kernel == "pcm16_bytes":
                    impl.pcm16_bytes(x)
                elif kernel == "pcm16_into":
                    impl.pcm16_into(x, bytearray(2 * x.size))
                else:
                    impl.frame_pcm16("t", x, 1, 5)
            assert str(info.value) == MESSAGE


@pytest.mark.parametrize("bad", [2.0001, -2.5, 32767.0, -32768.0, np.inf, -np.inf])
def test_every_magnitude_past_two_is_refused(impl: ModuleType, bad: float) -> None:
    for dtype in (np.float32, np.float64):
        a = np.array([0.0] * 9 + [bad] + [np.nan] * 9, dtype=dtype)
        with pytest.raises(ValueError, match=r"Scale it first: samples / 32768"):
            impl.pcm16_bytes(a)


def test_nan_beside_a_bad_value_does_not_hide_it(impl: ModuleType) -> None:
    # NaN never enters the running maximum (SSE max returns its second operand)
    for dtype in (np.float32, np.float64):
        a = np.full(64, np.nan, dtype=dtype)
        a[40] = 5.0
        with pytest.raises(ValueError):
            impl.pcm16_bytes(a)
        a[40] = np.nan
        assert impl.pcm16_bytes(a) == bytes(128)


def test_just_past_one_is_still_clipped(impl: ModuleType) -> None:
    for dtype in (np.float32, np.float64):
        a = np.array([1.0001, -1.0001, 1.5, -1.5, 1.99, -1.99, 2.0, -2.0] * 3, dtype=dtype)
        got = np.frombuffer(_all_kernels(impl, a)[0], dtype="<i2")
        assert got.tolist() == [32767, -32768] * 12


def test_int16_input_is_never_refused(impl: ModuleType) -> None:
    a = np.array([32767, -32768, 1234], dtype=np.int16)
    assert impl.pcm16_bytes(a) == a.astype("<i2").tobytes()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 200),
    data=st.data(),
    width=st.sampled_from([32, 64]),
)
def test_native_and_reference_agree_on_refusal(n: int, data: st.DataObject, width: int) -> None:
    dtype = np.float32 if width == 32 else np.float64
    values = data.draw(
        st.lists(
            st.floats(allow_nan=True, allow_infinity=True, width=width), min_size=n, max_size=n
        )
    )
    a = np.array(values, dtype=dtype)
    outcomes = []
    for module in (_pcm_py, pcm._pcm):
        try:
            outcomes.append(module.pcm16_bytes(a))
        except ValueError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    refused = bool(np.any(np.abs(a[~np.isnan(a)]) > 2.0))
    assert (outcomes[0] == MESSAGE) == refused


def test_public_functions_refuse_too() -> None:
    a = np.array([0.1, 16000.0], dtype=np.float32)
    for call in (
        lambda: pcm.to_pcm16(a),
        lambda: pcm.to_pcm16_into(a, bytearray(4)),
        lambda: pcm.chunk_pcm(a, 16000),
        lambda: pcm.frame_pcm("t", a, 16000),
    ):
        with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
            call()
    # the fix the message shows works
    assert pcm.to_pcm16(np.array([16384.0], np.float32) / 32768) == (16384).to_bytes(2, "little")
