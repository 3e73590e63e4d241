"""fishjam_fast.pcm.Resampler (on soxr) and the send_pcm stream state (PcmStream)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import soxr

from fishjam_fast import _pcm, pcm
from fishjam_fast._core.pcm_stream import PcmStream
from fishjam_fast.pcm import Resampler


def _sine(freq: float, rate: int, seconds: float, level: float = 0.5) -> np.ndarray[Any, Any]:
    t = np.arange(int(rate * seconds)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_frequency(x: np.ndarray[Any, Any], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * rate / x.size)


def _random_pieces(x: np.ndarray[Any, Any], seed: int, most: int) -> list[np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, x.shape[0], size=x.shape[0] // max(1, most // 2)))
    return np.split(x, cuts)  # includes empty pieces and single samples


# ---------------------------------------------------------------- Resampler


@pytest.mark.parametrize("quality", ["quick", "low", "medium", "high", "very_high"])
@pytest.mark.parametrize(("rate_in", "rate_out"), [(44100, 24000), (48000, 16000), (22050, 24000)])
def test_equals_soxr_for_the_same_input(quality: str, rate_in: int, rate_out: int) -> None:
    x = np.random.default_rng(3).uniform(-0.9, 0.9, rate_in // 3).astype(np.float32)
    r = Resampler(rate_in, rate_out, quality=quality)  # type: ignore[arg-type]
    ours = np.concatenate((r.push(x), r.flush()))
    soxr_name = {"quick": "QQ", "low": "LQ", "medium": "MQ", "high": "HQ", "very_high": "VHQ"}
    theirs = soxr.resample(x, rate_in, rate_out, quality=soxr_name[quality])
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("rate_in", "rate_out"), [(44100, 24000), (48000, 16000)])
def test_sines_keep_frequency_and_level(rate_in: int, rate_out: int) -> None:
    for freq in (440.0, 1000.0, 3000.0):
        r = Resampler(rate_in, rate_out)
        y = np.concatenate((r.push(_sine(freq, rate_in, 1.0)), r.flush()))
        assert abs(y.size - rate_out) <= 1
        assert _dominant_frequency(y, rate_out) == pytest.approx(freq, abs=2.0)
        middle = y[rate_out // 10 : -rate_out // 10]  # away from the filter's edges
        rms = float(np.sqrt(np.mean(middle.astype(np.float64) ** 2)))
        assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_pieces_of_any_size_give_the_same_samples() -> None:
    x = np.random.default_rng(5).uniform(-1, 1, 44100).astype(np.float32)
    whole = Resampler(44100, 24000)
    expected = np.concatenate((whole.push(x), whole.flush()))
    r = Resampler(44100, 24000)
    got = np.concatenate([r.push(p) for p in _random_pieces(x, 1, 3000)] + [r.flush()])
    np.testing.assert_array_equal(got, expected)


def test_stereo_int16_and_interleaved() -> None:
    x = (np.random.default_rng(2).uniform(-0.5, 0.5, (4800, 2)) * 32767).astype(np.int16)
    r = Resampler(48000, 16000, channels=2)
    y = np.concatenate((r.push(x), r.flush()))
    assert y.dtype == np.int16 and y.shape[1] == 2
    np.testing.assert_array_equal(y, soxr.resample(x, 48000, 16000))
    r2 = Resampler(48000, 16000, channels=2)
    y2 = np.concatenate((r2.push(x.reshape(-1)), r2.flush()))
    np.testing.assert_array_equal(y2, y)


def test_flush_ends_the_stream_and_the_next_push_starts_anew() -> None:
    x = _sine(440, 44100, 0.1)
    r = Resampler(44100, 24000)
    first = np.concatenate((r.push(x), r.flush()))
    assert not r.streaming
    again = np.concatenate((r.push(x), r.flush()))
    np.testing.assert_array_equal(first, again)
    assert r.flush().size == 0  # nothing open: empty


def test_reset_drops_the_state() -> None:
    x = _sine(440, 44100, 0.1)
    r = Resampler(44100, 24000)
    r.push(x[:1000])
    r.reset()
    assert not r.streaming
    fresh = Resampler(44100, 24000)
    np.testing.assert_array_equal(
        np.concatenate((r.push(x), r.flush())), np.concatenate((fresh.push(x), fresh.flush()))
    )


def test_repr_and_properties() -> None:
    r = Resampler(44100, 16000, channels=2, quality="medium")
    assert repr(r) == "Resampler(44100, 16000, channels=2, quality='medium')"
    assert (r.input_rate, r.output_rate, r.channels, r.quality) == (44100, 16000, 2, "medium")


@pytest.mark.parametrize("rate", [0, -16000, 999, 768_001, 10**12])
def test_bad_rates_are_refused(rate: int) -> None:
    with pytest.raises(ValueError, match="between 1000 and 768000 Hz"):
        Resampler(rate, 24000)
    with pytest.raises(ValueError, match="output_rate"):
        Resampler(24000, rate)


@pytest.mark.parametrize("rate", [44100.0, "44100", True, None])
def test_rates_must_be_ints(rate: Any) -> None:
    with pytest.raises(TypeError, match="input_rate must be an int"):
        Resampler(rate, 24000)


@pytest.mark.parametrize(
    ("channels", "error"), [(0, ValueError), (65, ValueError), (1.0, TypeError)]
)
def test_bad_channels_are_refused(channels: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="channels"):
        Resampler(44100, 24000, channels=channels)


def test_bad_quality_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown quality 'HQ'"):
        Resampler(44100, 24000, quality="HQ")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="quality must be a str"):
        Resampler(44100, 24000, quality=3)  # type: ignore[arg-type]


def test_bad_samples_are_refused() -> None:
    r = Resampler(44100, 24000, channels=2)
    with pytest.raises(ValueError, match=r"have 3 channels, but this Resampler has channels=2"):
        r.push(np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match="do not split into 2 channels"):
        r.push(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="shape"):
        r.push(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(TypeError, match="int32"):
        r.push(np.zeros(4, np.int32))
    with pytest.raises(TypeError, match="NumPy array"):
        r.push(b"\x00\x00\x00\x00")  # type: ignore[arg-type]
    r.push(np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="started with float32 samples, got int16"):
        r.push(np.zeros((4, 2), np.int16))


def test_big_endian_input_is_taken() -> None:
    x = _sine(440, 44100, 0.05).astype(np.float64)
    a, b = Resampler(44100, 24000), Resampler(44100, 24000)
    np.testing.assert_array_equal(
        np.concatenate((a.push(x.astype(">f8")), a.flush())),
        np.concatenate((b.push(x), b.flush())),
    )


# ---------------------------------------------------------------- PcmStream


def _frame_payloads(stream: PcmStream, piece: Any, rate: int | None, final: bool) -> list[bytes]:
    """The PCM16 payload of every chunk the blocks of ``piece`` frame into."""
    out = []
    for block in stream.blocks(piece, 480, rate, final):
        out.extend(pcm.chunk_pcm(block, 24000, stream.channels))
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("channels", [1, 2])
def test_stream_pieces_give_whole_chunks_and_one_calls_samples(seed: int, channels: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (44100 + 333, channels)).astype(np.float32)
    if channels == 1:
        x = x[:, 0]
    one_call = _frame_payloads(PcmStream(24000, channels), x, 44100, True)
    stream = PcmStream(24000, channels)
    pieces = _random_pieces(x, seed, 2000)
    chunks: list[bytes] = []
    for piece in pieces:
        got = _frame_payloads(stream, piece, 44100, False)
        assert all(len(c) == 960 * channels for c in got)  # whole 20 ms chunks only
        chunks += got
    chunks += _frame_payloads(stream, x[:0], 44100, True)
    assert b"".join(chunks) == b"".join(one_call)
    assert chunks == one_call  # and cut at the same places
    assert not stream.open


def test_stream_without_resampling_carries_short_chunks() -> None:
    x = (np.arange(1000) % 300).astype(np.int16)
    stream = PcmStream(24000, 1)
    assert stream.blocks(x[:100], 480, None, False) == []
    assert stream.carried_frames == 100 and stream.open
    payloads = _frame_payloads(stream, x[100:990].tobytes(), 24000, False)  # bytes work too
    assert [len(p) for p in payloads] == [960, 960] and stream.carried_frames == 30
    payloads += _frame_payloads(stream, x[990:], None, True)
    assert [len(p) for p in payloads] == [960, 960, 80]
    assert b"".join(payloads) == x.astype("<i2").tobytes()


def test_stream_rate_change_midway_is_refused() -> None:
    stream = PcmStream(24000, 1)
    stream.blocks(_sine(440, 44100, 0.05), 480, 44100, False)
    with pytest.raises(ValueError, match="sample_rate=44100 is in progress"):
        stream.blocks(_sine(440, 48000, 0.05), 480, 48000, False)
    with pytest.raises(ValueError, match="sample_rate=44100 is in progress"):
        stream.blocks(_sine(440, 24000, 0.05), 480, None, False)
    stream.reset()
    assert not stream.open
    stream.blocks(_sine(440, 48000, 0.05), 480, 48000, True)  # a new stream may
    assert not stream.open


@pytest.mark.parametrize("rate", [0, -44100, 10**9])
def test_stream_bad_rate(rate: int) -> None:
    with pytest.raises(ValueError, match="sample_rate must be between"):
        PcmStream(24000, 1).blocks(_sine(440, 24000, 0.01), 480, rate, True)


def test_stream_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="channels"):
        PcmStream(24000, 1).blocks(np.zeros((100, 2), np.float32), 480, 44100, True)


def test_resampled_int16_scale_floats_are_refused() -> None:
    loud = _sine(440, 44100, 0.1, level=20000.0)
    with pytest.raises(ValueError, match="samples / 32768"):
        for block in PcmStream(24000, 1).blocks(loud, 480, 44100, True):
            _pcm.frame_pcm16("t", block, 1, 480)
