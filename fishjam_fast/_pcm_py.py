"""The reference PCM16 kernels in plain NumPy.

They are the pure-Python fallback of the native kernels (``src_ext/pcm.pyx``) and what
the tests compare those against: the same functions, semantics and exceptions.

Semantics:

- float32/float64 -> PCM16: ``x * 32767`` in the input's precision, rounded to the
  nearest integer with ties to even (``np.rint``), clipped to [-32768, 32767]. Input
  whose magnitude exceeds 2.0 is refused with ``ValueError(FLOAT_RANGE_ERROR)`` (it is
  int16-range audio passed as float), and so are NaN and infinities, with messages of
  their own (:func:`_float_refusal`): none of them is audio.
- int16 (either byte order) -> PCM16: the same values, little-endian.
- PCM16 -> float32: ``value / 32768``, so the result lies in [-1, 1 - 2**-15].

Samples are visited in C order: an ``(n, channels)`` array gives interleaved PCM16.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from typing_extensions import Buffer

_LE16 = np.dtype("<i2")
_ACCEPTED = "int16, float32 or float64"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _source(samples: object) -> npt.NDArray[Any]:
    """Checks ``samples`` as the native kernels do; returns an array of its values."""
    if isinstance(samples, np.ndarray):
        if samples.dtype.kind == "i" and samples.dtype.itemsize == 2:
            pass
        elif samples.dtype.kind == "f" and samples.dtype.itemsize in (4, 8):
            pass
        else:
            raise TypeError(f"samples must be an {_ACCEPTED} array, got dtype {samples.dtype}")
        if samples.ndim not in (1, 2):
            raise ValueError(
                f"samples must have shape (n,) or (n, channels), got shape {samples.shape}"
            )
        return samples
    try:
        view = memoryview(samples)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is None or not view.c_contiguous:
        raise TypeError(
            f"samples must be a NumPy array ({_ACCEPTED}) or a C-contiguous bytes-like "
            f"object of PCM16, got {type(samples).__name__}"
        )
    if view.nbytes % 2:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {view.nbytes}")
    return np.frombuffer(view, dtype=np.uint8).view(_LE16)


FLOAT_RANGE_ERROR = (
    "float samples must be in [-1, 1] (values up to 2.0 in magnitude are clipped), "
    "but these exceed 2.0: int16-range audio stored as float? Scale it first: "
    "samples / 32768"
)
"""The message of the ValueError for float input beyond 2.0 (the native one's too)."""

FLOAT_LIMIT = 2.0
"""Float samples whose magnitude exceeds this are refused rather than clipped."""


def _float_refusal(values: npt.NDArray[Any]) -> str:
    """The message of the ValueError for float ``values`` that hold a refused value.

    The first refused value in C order decides: NaN, an infinity (each message gives
    its index and how many of that kind there are), or a finite value beyond 2.0
    (:data:`FLOAT_RANGE_ERROR`). The native kernels raise the same text.
    """
    flat = values.reshape(-1)  # C order (a copy if it must be)
    with np.errstate(invalid="ignore"):
        first = int(np.argmax(~(np.abs(flat) <= FLOAT_LIMIT)))
    found = float(flat[first])
    where = (
        str(first)
        if values.ndim == 1
        else f"({first // values.shape[1]}, {first % values.shape[1]})"
    )
    if np.isnan(found):
        nans = int(np.count_nonzero(np.isnan(flat)))
        return (
            f"float samples must be numbers in [-1, 1], but {nans} "
            f"{'is' if nans == 1 else 'are'} NaN (the first at index {where}): find what "
            "produced it (0/0, an uninitialized buffer?) or replace it: "
            "np.nan_to_num(samples, nan=0.0)"
        )
    if np.isinf(found):
        infs = int(np.count_nonzero(np.isinf(flat)))
        return (
            f"float samples must be finite, in [-1, 1], but {infs} "
            f"{'is' if infs == 1 else 'are'} infinite (the first, "
            f"{'-' if found < 0 else '+'}inf, at index {where}): find what produced it "
            "(an overflow, a division by 0?) or clip: np.clip(samples, -1.0, 1.0)"
        )
    return FLOAT_RANGE_ERROR


def _encode(values: npt.NDArray[Any]) -> npt.NDArray[np.int16]:
    """The values as a C-ordered little-endian int16 array (maybe ``values`` itself)."""
    if values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            # one pass, as before NaN was refused: the comparison is False for NaN
            if not np.all(np.abs(values) <= FLOAT_LIMIT):
                raise ValueError(_float_refusal(values))
        with np.errstate(over="ignore"):
            scaled = values * values.dtype.type(32767)
            np.rint(scaled, out=scaled)
            np.clip(scaled, -32768, 32767, out=scaled)
        values = scaled
    return np.ascontiguousarray(values, dtype=_LE16).reshape(-1)


def pcm16_bytes(samples: object) -> bytes:
    """Encodes samples as PCM16 little-endian bytes (see the module docstring)."""
    if type(samples) is bytes:
        if len(samples) % 2:
            raise ValueError(f"PCM16 data must have an even number of bytes, got {len(samples)}")
        return samples
    return _encode(_source(samples)).tobytes()


def pcm16_into(samples: object, out: object) -> int:
    """Writes samples as PCM16 little-endian into ``out``; returns the bytes written.

    ``out`` is a writable C-contiguous buffer of exactly ``2 * samples.size`` bytes.
    """
    if isinstance(out, np.ndarray):
        if not (
            out.dtype in (np.dtype(np.uint8), np.dtype(np.int8))
            or (out.dtype.kind == "i" and out.dtype.itemsize == 2 and out.dtype == _LE16)
        ):
            raise TypeError(
                f"out must be a uint8, int8 or little-endian int16 array, got dtype {out.dtype}"
            )
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
    encoded = _encode(_source(samples))
    try:
        target = memoryview(out).cast("B")  # type: ignore[arg-type]
        if target.readonly:
            raise TypeError("read-only")
    except TypeError as exc:
        raise TypeError(
            "out must be a writable C-contiguous buffer (bytearray, memoryview, "
            f"NumPy array), got {type(out).__name__}: {exc}"
        ) from None
    needed = encoded.nbytes
    if target.nbytes != needed:
        raise ValueError(
            f"out holds {target.nbytes} bytes, but {encoded.size} samples need {needed}"
        )
    np.frombuffer(target, dtype=np.uint8)[:] = encoded.view(np.uint8)
    return needed


def pcm16_to_float32(data: Buffer) -> npt.NDArray[np.float32]:
    """Decodes PCM16 little-endian bytes to a new 1-D float32 array, ``value / 32768``."""
    try:
        view = memoryview(data)
    except TypeError:
        view = None
    if view is None or not view.c_contiguous:
        raise TypeError(f"data must be a C-contiguous bytes-like object, got {type(data).__name__}")
    if view.nbytes % 2:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {view.nbytes}")
    values = np.frombuffer(view, dtype=np.uint8).view(_LE16)
    result = values.astype(np.float32)
    result *= np.float32(1 / 32768)  # a power of two: the same as dividing, exactly
    return result


def frame_pcm16(
    track_id: str, samples: object, channels: int, samples_per_chunk: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Encodes and frames samples as consecutive ``track_data`` messages.

    Each ``AgentRequest{track_data{track_id, data}}`` carries ``samples_per_chunk *
    channels`` samples (the last one what is left). Byte-identical to
    ``_codec_py.frame_track_data(track_id, pcm16_bytes(samples), 2 * samples_per_chunk
    * channels)``.

    Returns:
        ``(buffer, offsets)``: a new uint8 array, and ``len(frames) + 1`` int64
        offsets: frame ``i`` is ``buffer[offsets[i]:offsets[i + 1]]``.
    """
    if not isinstance(track_id, str):
        raise TypeError(f"track_id must be str, not {type(track_id).__name__}")
    if samples_per_chunk < 1:
        raise ValueError(f"samples_per_chunk must be at least 1, got {samples_per_chunk}")
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    if samples_per_chunk > (sys.maxsize // 4) // channels:
        raise ValueError(f"samples_per_chunk {samples_per_chunk} is too large")
    values = _source(samples)
    if values.ndim == 2 and values.shape[1] != channels:
        raise ValueError(
            f"samples have {values.shape[1]} channels (shape (n, {values.shape[1]})), "
            f"but channels={channels}"
        )
    if values.size % channels:
        raise ValueError(
            f"{values.size} samples do not split evenly into {channels} interleaved channels"
        )
    pcm = _encode(values).view(np.uint8)
    chunk = 2 * samples_per_chunk * channels
    track = track_id.encode("utf-8")
    id_field = b"\x0a" + _varint(len(track)) + track if track else b""

    def header(payload: int) -> npt.NDArray[np.uint8]:
        inner = id_field + b"\x12" + _varint(payload)
        head = b"\x22" + _varint(len(inner) + payload) + inner
        return np.frombuffer(head, dtype=np.uint8)

    full, last = divmod(pcm.size, chunk)
    full_header = header(chunk)
    full_frame = full_header.size + chunk
    last_header = header(last) if last else full_header[:0]
    total = full * full_frame + (last_header.size + last if last else 0)
    buffer = np.empty(total, dtype=np.uint8)
    # every full frame is the same header followed by its chunk: fill them as rows
    rows = buffer[: full * full_frame].reshape(full, full_frame)
    rows[:, : full_header.size] = full_header
    rows[:, full_header.size :] = pcm[: full * chunk].reshape(full, chunk)
    if last:
        tail = buffer[full * full_frame :]
        tail[: last_header.size] = last_header
        tail[last_header.size :] = pcm[full * chunk :]
    offsets = np.arange(full + 1 + (1 if last else 0), dtype=np.int64) * full_frame
    if last:
        offsets[-1] = total
    return buffer, offsets
