"""The float guard: float samples beyond 2.0 in magnitude, infinite or NaN are refused.

int16-range audio passed as float (values in the thousands) used to be clipped silently
(half the samples at full scale), and NaN was sent as silence. Both kernels (native and
the NumPy reference) detect it in the conversion pass and raise the same ValueError,
whose message names what was wrong (NaN, an infinity, or int16-range values) and where;
values just past 1.0 are still clipped.
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


@pytest.mark.parametrize("bad", [2.0001, -2.5, 32767.0, -32768.0])
def test_every_magnitude_past_two_is_refused(impl: ModuleType, bad: float) -> None:
    for dtype in (np.float32, np.float64):
        a = np.array([0.0] * 9 + [bad] + [0.5] * 9, dtype=dtype)
        with pytest.raises(ValueError, match=r"Scale it first: samples / 32768"):
            impl.pcm16_bytes(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f4", ">f8"])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 600, 1027])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_nan_is_refused_and_named(impl: ModuleType, dtype: Any, n: int, where: str) -> None:
    # in the SIMD body and the scalar tail, whole arrays and strided views; NaN used
    # to be sent as silence
    at = {"first": 0, "middle": n // 2, "last": n - 1}[where]
    a = np.full(n, 0.25, dtype=dtype)
    a[at] = np.nan
    if n > 2:
        a[(at + 2) % n] = np.nan  # a second one, after the first or before it
    first = min(at, (at + 2) % n) if n > 2 else at
    nans = 2 if n > 2 else 1
    said = f"but {nans} {'is' if nans == 1 else 'are'} NaN (the first at index {first})"
    for x in (a, np.repeat(a, 2)[::2]):
        for call in _calls(impl, x):
            with pytest.raises(ValueError, match="must be numbers in") as info:
                call()
            assert said in str(info.value)
            assert "np.nan_to_num(samples, nan=0.0)" in str(info.value)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_infinity_has_its_own_message(impl: ModuleType, sign: float) -> None:
    # not the int16-range message: an infinity is no scaling mistake
    for dtype in (np.float32, np.float64):
        a = np.full(40, 0.5, dtype=dtype)
        a[[3, 17, 30]] = sign * np.inf
        a[20] = 1234.0  # after the first infinity: the first refused value decides
        for call in _calls(impl, a):
            with pytest.raises(ValueError) as info:
                call()
            message = str(info.value)
            assert message.startswith("float samples must be finite, in [-1, 1], but 3 are")
            assert f"(the first, {'+' if sign > 0 else '-'}inf, at index 3)" in message
            assert "int16" not in message and "32768" not in message


def test_the_first_refused_value_decides_and_two_d_says_row_and_channel(
    impl: ModuleType,
) -> None:
    a = np.zeros((10, 2), dtype=np.float32)
    a[4, 1] = 5000.0
    a[6, 0] = np.nan
    with pytest.raises(ValueError) as info:
        impl.frame_pcm16("t", a, 2, 3)
    assert str(info.value) == MESSAGE
    a[4, 1] = 0.0
    with pytest.raises(ValueError, match=r"but 1 is NaN \(the first at index \(6, 0\)\)"):
        impl.pcm16_bytes(a)
    with pytest.raises(ValueError, match=r"at index \(6, 0\)"):
        impl.pcm16_bytes(np.asfortranarray(a))  # C order whatever the memory order


def test_nan_beside_a_bad_value_does_not_hide_it(impl: ModuleType) -> None:
    for dtype in (np.float32, np.float64):
        a = np.full(64, 0.0, dtype=dtype)
        a[40] = 5.0
        a[50] = np.nan
        with pytest.raises(ValueError, match="Scale it first"):
            impl.pcm16_bytes(a)
        a[40] = 0.0
        with pytest.raises(ValueError, match="NaN"):
            impl.pcm16_bytes(a)
        a[50] = 0.0
        assert impl.pcm16_bytes(a) == bytes(128)


def _calls(impl: ModuleType, x: np.ndarray[Any, Any]) -> list[Any]:
    """Every float -> PCM16 entry point of ``impl`` on ``x``, to call."""
    return [
        lambda: impl.pcm16_bytes(x),
        lambda: impl.pcm16_into(x, bytearray(2 * x.size)),
        lambda: impl.frame_pcm16("t", x, 1, 5),
    ]


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
    with np.errstate(invalid="ignore"):
        refused = ~(np.abs(a) <= 2.0)
    if not refused.any():
        assert isinstance(outcomes[0], bytes)
        return
    first = a[np.argmax(refused)]
    kind = "NaN" if np.isnan(first) else "infinite" if np.isinf(first) else "Scale it first"
    assert isinstance(outcomes[0], str) and kind in outcomes[0]


def test_public_functions_refuse_too() -> None:
    for bad, said in ((16000.0, r"must be in \[-1, 1\]"), (np.nan, "NaN"), (np.inf, "infinite")):
        a = np.array([0.1, bad], dtype=np.float32)
        with pytest.raises(ValueError, match=said):
            pcm.to_pcm16(a)
        with pytest.raises(ValueError, match=said):
            pcm.to_pcm16_into(a, bytearray(4))
        with pytest.raises(ValueError, match=said):
            pcm.chunk_pcm(a, 16000)
        with pytest.raises(ValueError, match=said):
            pcm.frame_pcm("t", a, 16000)
    # the fix the message shows works
    assert pcm.to_pcm16(np.array([16384.0], np.float32) / 32768) == (16384).to_bytes(2, "little")
