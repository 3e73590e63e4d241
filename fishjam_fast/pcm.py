"""NumPy audio to and from Fishjam's PCM16 wire format, natively where it can.

Fishjam's agent audio is PCM16: signed 16-bit little-endian integers, channels
interleaved. This module converts NumPy samples to it and reads it back:

- Writing (:func:`to_pcm16`, :func:`to_pcm16_into`, :func:`chunk_pcm`,
  :func:`frame_pcm`) takes int16 arrays (either byte order) as they are, and float32 or
  float64 arrays in [-1, 1] scaled by 32767, rounded to the nearest integer with ties to
  even (like ``np.rint``), clipped to [-32768, 32767]. So +1.0 is 32767 and -1.0 is
  -32767, and values just past 1.0 (up to 2.0 in magnitude) are clipped. Float input
  whose magnitude exceeds 2.0 is refused with a ``ValueError``: that is int16-range
  audio passed as float; scale it, ``x / 32768``. NaN and infinities are refused too
  (``ValueError`` naming them, where the first one is and how many there are): none of
  them is a sample value, and sending NaN as silence would hide the bug that made it.
  The check is part of the conversion pass (no extra pass over the data).
- Reading (:func:`pcm16_to_float32`, :func:`incoming_samples`) divides by 32768: the
  result lies in [-1, 1 - 2**-15], and -32768 maps to exactly -1.0. (The usual
  convention of audio libraries; writing and reading back is therefore not the identity:
  a value ``v`` returns as ``rint(v * 32767 / 32768)``, at most 1 away.)
- Shapes: ``(n,)`` is mono, or already-interleaved samples when ``channels`` says so;
  ``(n, channels)`` is interleaved row by row. Any strides and memory order work
  (slices, transposes, Fortran order); they cost one extra pass.

- Resampling: :class:`Resampler` converts a stream between sample rates (soxr), for
  audio you process before sending; ``OutgoingTrack.send_pcm(sample_rate=...)`` keeps
  one per track.

The kernels are native (``fishjam_fast._ext``) when the extension is built, else the
NumPy reference ``fishjam_fast._pcm_py``; both give identical bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _pcm
from ._checks import check_int
from ._resample import Resampler

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "Resampler",
    "chunk_pcm",
    "frame_pcm",
    "from_pcm16",
    "incoming_pcm_view",
    "incoming_samples",
    "pcm16_to_float32",
    "to_pcm16",
    "to_pcm16_into",
]

_LE16 = np.dtype("<i2")
_ACCEPTED = (
    "bytes-like PCM16 (bytes, bytearray, memoryview) or a NumPy array of int16, "
    "float32 or float64 with shape (n,) or (n, channels)"
)


def _check_positive(name: str, value: object) -> int:
    number = check_int(name, value)
    if number < 1:
        raise ValueError(f"{name} must be a positive integer, got {number}")
    return number


def _check_track_id(track_id: object) -> str:
    if not isinstance(track_id, str):
        raise TypeError(f"track_id must be str, not {type(track_id).__name__}")
    return track_id


def _bytes_view(data: object, what: str) -> memoryview:
    """A C-contiguous view of a bytes-like object, with an even number of bytes."""
    if isinstance(data, str):
        raise TypeError(f"{what} must be bytes-like, got str (encode audio, not text)")
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{what} must be a bytes-like object (bytes, bytearray, memoryview), "
            f"got {type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous, got a strided {type(data).__name__}")
    if view.nbytes % 2:
        raise ValueError(
            f"PCM16 {what} must have an even number of bytes (2 per sample), got {view.nbytes}"
        )
    return view


def _prepare(samples: object, channels: int | None) -> tuple[Any, int]:
    """Validates ``samples``: returns what the kernels take, and the channel count."""
    if channels is not None:
        channels = _check_positive("channels", channels)
    if isinstance(samples, np.ndarray):
        dtype = samples.dtype
        if not (
            (dtype.kind == "i" and dtype.itemsize == 2)
            or (dtype.kind == "f" and dtype.itemsize in (4, 8))
        ):
            raise TypeError(f"samples must be {_ACCEPTED}; got an array of dtype {dtype}")
        if samples.ndim == 2:
            width = samples.shape[1]
            if width == 0:
                raise ValueError(f"samples of shape {samples.shape} have no channel")
            if channels is not None and width != channels:
                raise ValueError(
                    f"samples of shape {samples.shape} have {width} channels, "
                    f"but channels={channels}"
                )
            return samples, width
        if samples.ndim != 1:
            raise ValueError(
                f"samples must have shape (n,) or (n, channels), got a {samples.ndim}-d "
                f"array of shape {samples.shape}"
            )
        channels = channels or 1
        if samples.size % channels:
            raise ValueError(
                f"{samples.size} interleaved samples do not split into {channels} channels"
            )
        return samples, channels
    if isinstance(samples, np.generic):
        raise TypeError(f"samples must be {_ACCEPTED}; got a NumPy scalar {samples!r}")
    if isinstance(samples, str):
        raise TypeError(f"samples must be {_ACCEPTED}; got str")
    try:
        memoryview(samples)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"samples must be {_ACCEPTED}; got {type(samples).__name__}") from None
    view = _bytes_view(samples, "samples")
    channels = channels or 1
    if view.nbytes % (2 * channels):
        raise ValueError(
            f"{view.nbytes} bytes of PCM16 do not hold whole frames of {channels} channels "
            f"({2 * channels} bytes each)"
        )
    return (samples if type(samples) is bytes else view), channels


def _samples_per_chunk(sample_rate: object, chunk_ms: object) -> int:
    rate = _check_positive("sample_rate", sample_rate)
    ms = _check_positive("chunk_ms", chunk_ms)
    per_chunk, rest = divmod(rate * ms, 1000)
    if rest:
        raise ValueError(
            f"chunk_ms={ms} at sample_rate={rate} is {rate * ms / 1000} samples per "
            "channel; choose a duration that gives a whole number"
        )
    return per_chunk


def to_pcm16(samples: Buffer | npt.NDArray[Any], channels: int | None = None) -> bytes:
    """Encodes audio samples as PCM16 little-endian bytes, the wire format.

    Args:
        samples: a NumPy array of int16 (either byte order), float32 or float64 (in
            [-1, 1]; see the module docstring for scaling, rounding and clipping), of
            shape ``(n,)`` or ``(n, channels)``, any strides; or a bytes-like object
            that already holds PCM16 little-endian, taken as it is.
        channels: the channel count to check the samples against; ``None`` accepts the
            array's (``(n, c)`` has ``c``, ``(n,)`` has 1). A 1-D array with
            ``channels=c`` is taken as already interleaved.

    Returns:
        New ``bytes`` (the very object when ``samples`` is ``bytes``).

    Raises:
        TypeError: ``samples`` is neither bytes-like nor an array of an accepted dtype
            (int32, uint8, bool, complex, object... are refused), or ``channels`` is
            not an int.
        ValueError: an odd number of bytes, a shape other than ``(n,)`` or
            ``(n, channels)``, a channel count that does not match, or float samples
            beyond 2.0 in magnitude (int16-range data: scale it, ``x / 32768``),
            infinite or NaN.
    """
    prepared, _ = _prepare(samples, channels)
    if isinstance(prepared, memoryview):
        return prepared.tobytes()
    return _pcm.pcm16_bytes(prepared)


def to_pcm16_into(
    samples: Buffer | npt.NDArray[Any], out: Buffer, channels: int | None = None
) -> int:
    """Encodes samples as PCM16 little-endian straight into a buffer you provide.

    For example into the payload slot of a preallocated message buffer.

    Args:
        samples: as for :func:`to_pcm16`.
        out: a writable C-contiguous buffer (bytearray, memoryview, or a uint8, int8 or
            little-endian int16 NumPy array) of exactly ``2 * samples.size`` bytes. It
            must not overlap ``samples``.
        channels: as for :func:`to_pcm16`.

    Returns:
        The number of bytes written, ``2 * samples.size``.

    Raises:
        TypeError: as for :func:`to_pcm16`, or ``out`` is not a writable buffer of an
            accepted kind.
        ValueError: as for :func:`to_pcm16`, or ``out`` has the wrong size or is
            read-only.
    """
    prepared, _ = _prepare(samples, channels)
    return _pcm.pcm16_into(prepared, out)


def from_pcm16(data: Buffer, channels: int = 1) -> npt.NDArray[np.int16]:
    """Reads PCM16 little-endian bytes as int16 samples, without copying.

    Args:
        data: bytes-like PCM16 (bytes, bytearray, memoryview), C-contiguous.
        channels: interleaved channels in ``data``.

    Returns:
        A read-only VIEW of ``data`` (no copy; it keeps ``data`` alive), dtype ``<i2``
        (``np.int16`` on little-endian machines), shape ``(n,)`` when ``channels`` is
        1, else ``(n, channels)``. Call ``.copy()`` for an array of your own, for
        instance before ``data`` (a bytearray) is reused.

    Raises:
        TypeError: ``data`` is not bytes-like, or ``channels`` is not an int.
        ValueError: an odd number of bytes, or one that does not hold whole frames of
            ``channels`` samples; a non-contiguous buffer; ``channels`` < 1.
    """
    channels = _check_positive("channels", channels)
    view = _bytes_view(data, "data")
    if view.nbytes % (2 * channels):
        raise ValueError(
            f"{view.nbytes} bytes of PCM16 do not hold whole frames of {channels} channels "
            f"({2 * channels} bytes each)"
        )
    samples = np.frombuffer(view, dtype=np.uint8).view(_LE16)
    samples.flags.writeable = False
    if channels > 1:
        samples = samples.reshape(-1, channels)
    return samples


def pcm16_to_float32(data: Buffer, channels: int = 1) -> npt.NDArray[np.float32]:
    """Decodes PCM16 little-endian bytes to float32 samples, ``value / 32768``.

    Args:
        data: bytes-like PCM16 (bytes, bytearray, memoryview), C-contiguous.
        channels: interleaved channels in ``data``.

    Returns:
        A new, writable float32 array (an owned copy) in [-1, 1 - 2**-15], shape
        ``(n,)`` when ``channels`` is 1, else ``(n, channels)``.

    Raises:
        TypeError, ValueError: as for :func:`from_pcm16`.
    """
    channels = _check_positive("channels", channels)
    view = _bytes_view(data, "data")
    if view.nbytes % (2 * channels):
        raise ValueError(
            f"{view.nbytes} bytes of PCM16 do not hold whole frames of {channels} channels "
            f"({2 * channels} bytes each)"
        )
    samples = _pcm.pcm16_to_float32(view)
    if channels > 1:
        samples = samples.reshape(-1, channels)
    return samples


def incoming_pcm_view(data: Buffer) -> npt.NDArray[np.int16]:
    """The samples of one incoming mono track-data chunk, without copying.

    Meant for ``IncomingTrackData.pcm``: Fishjam delivers peers' audio to agents as
    mono PCM16 (wire-protocol.md).

    Args:
        data: the chunk's bytes.

    Returns:
        A read-only int16 VIEW of ``data`` (no copy), shape ``(samples,)``.

    Raises:
        TypeError: ``data`` is not bytes-like.
        ValueError: ``data`` has an odd number of bytes.
    """
    return from_pcm16(data, 1)


def incoming_samples(data: Buffer) -> npt.NDArray[np.float32]:
    """The samples of one incoming mono track-data chunk as float32, ``value / 32768``.

    Meant for ``IncomingTrackData.samples()``.

    Args:
        data: the chunk's bytes.

    Returns:
        A new float32 array (an owned copy), shape ``(samples,)``, in [-1, 1).

    Raises:
        TypeError: ``data`` is not bytes-like.
        ValueError: ``data`` has an odd number of bytes.
    """
    return pcm16_to_float32(data, 1)


def chunk_pcm(
    samples: Buffer | npt.NDArray[Any],
    sample_rate: int,
    channels: int = 1,
    chunk_ms: int = 20,
) -> list[bytes]:
    """Encodes samples as PCM16 and cuts them into chunks of ``chunk_ms`` each.

    Args:
        samples: as for :func:`to_pcm16`.
        sample_rate: samples per second per channel (16000 or 24000 for Fishjam).
        channels: channels in ``samples``; a 2-D array must have this many columns.
        chunk_ms: milliseconds per chunk; ``sample_rate * chunk_ms / 1000`` must be
            a whole number.

    Returns:
        A list of new ``bytes``, each ``2 * channels * sample_rate * chunk_ms / 1000``
        bytes long except the last, which holds what is left (no padding); empty
        input gives an empty list.

    Raises:
        TypeError, ValueError: as for :func:`to_pcm16`; also ``sample_rate`` or
            ``chunk_ms`` not a positive int, or not giving whole samples per chunk.
    """
    per_chunk = _samples_per_chunk(sample_rate, chunk_ms)
    prepared, channels = _prepare(samples, channels)
    pcm = prepared.tobytes() if isinstance(prepared, memoryview) else _pcm.pcm16_bytes(prepared)
    size = 2 * per_chunk * channels
    return [pcm[start : start + size] for start in range(0, len(pcm), size)]


def frame_pcm(
    track_id: str,
    samples: Buffer | npt.NDArray[Any],
    sample_rate: int,
    channels: int = 1,
    chunk_ms: int = 20,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Encodes samples and frames them as ready-to-send ``track_data`` messages.

    One pass, one buffer: each frame is a whole ``AgentRequest{track_data{track_id,
    data}}`` protobuf message (one WebSocket binary message) carrying ``chunk_ms`` of
    audio; the last carries what is left.

    Args:
        track_id: the outgoing track's id.
        samples: as for :func:`to_pcm16`.
        sample_rate: samples per second per channel.
        channels: channels in ``samples``; a 2-D array must have this many columns.
        chunk_ms: milliseconds per frame; ``sample_rate * chunk_ms / 1000`` must be a
            whole number.

    Returns:
        ``(buffer, offsets)``: ``buffer`` is a new uint8 array (an owned copy) holding
        every frame back to back; ``offsets`` is a new int64 array of
        ``len(frames) + 1`` entries: frame ``i`` is ``buffer[offsets[i]:offsets[i+1]]``
        (slicing gives views of ``buffer``; send them as they are).

    Raises:
        TypeError, ValueError: as for :func:`chunk_pcm`; ``track_id`` not a str.
    """
    _check_track_id(track_id)
    return _frame_samples(track_id, samples, channels, _samples_per_chunk(sample_rate, chunk_ms))


def _frame_samples(
    track_id: str, samples: Buffer | npt.NDArray[Any], channels: int, samples_per_chunk: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """:func:`frame_pcm` for callers whose ``track_id``, ``channels`` and chunk size are
    already valid (an :class:`~fishjam_fast.OutgoingTrack`): validates the samples
    only, once, then runs the kernel (whose own checks guard its memory access)."""
    prepared, channels = _prepare(samples, channels)
    return _pcm.frame_pcm16(track_id, prepared, channels, samples_per_chunk)
