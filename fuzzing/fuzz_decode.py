"""Fuzz harness of the native codec (atheris), cross-checked against the fallback.

The ServerMessage decoder (server notifications) is checked against google.protobuf,
its fallback: it may raise AgentProtocolError only, it may refuse what upb accepts (it is
stricter: groups, varints past 64 bits, deep nesting), and what it accepts upb accepts
with the same result.

Decoding may raise AgentProtocolError only; encoding TypeError/ValueError only; and
wherever both implementations accept an input they must agree exactly (decode: same
result; errors: same message). Run it (see README.md in this folder):

    bash fuzzing/build.sh && bash fuzzing/run.sh -max_total_time=600

``test_one_input`` needs no atheris: tests/test_fuzz_smoke.py calls it directly.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Any

try:
    import atheris
except ImportError:  # the smoke test runs without it
    atheris = None

# coverage feedback: atheris instruments the Python code imported here (the reference
# codec); the extension's C edges count when fuzzing/build.sh compiled it for libFuzzer
with atheris.instrument_imports(include=["fishjam_fast"]) if atheris else nullcontext():
    from fishjam_fast import _codec_py as fallback
    from fishjam_fast import _ext as native
    from fishjam_fast import _notifications_py as notifications_fallback
    from fishjam_fast._proto.agent_pb2 import AgentRequest
    from fishjam_fast.errors import AgentProtocolError


class BytesProvider:
    """The few FuzzedDataProvider methods used here, for running without atheris."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def ConsumeIntInRange(self, low: int, high: int) -> int:
        span = high - low + 1
        size = (span.bit_length() + 7) // 8
        raw = self._data[self._pos : self._pos + size]
        self._pos += len(raw)
        return low + int.from_bytes(raw, "little") % span

    def ConsumeBytes(self, count: int) -> bytes:
        raw = self._data[self._pos : self._pos + count]
        self._pos += len(raw)
        return raw

    def ConsumeUnicode(self, count: int) -> str:
        # surrogates included on purpose: encoders must reject them cleanly
        return "".join(chr(self.ConsumeIntInRange(0, 0x10FFFF)) for _ in range(count))

    def ConsumeRemainingBytes(self) -> bytes:
        raw = self._data[self._pos :]
        self._pos = len(self._data)
        return raw


def _call(function: Any, *args: Any) -> tuple[str, Any]:
    """('ok', result) or ('error', exception class) for the encoders' documented errors."""
    try:
        return "ok", function(*args)
    except (TypeError, ValueError) as exc:
        return "error", type(exc)


def _check_decode(frame: bytes) -> None:
    try:
        result = native.decode_response(frame)
    except AgentProtocolError as exc:
        try:
            fallback.decode_response(frame)
        except AgentProtocolError as reference:
            assert str(exc) == str(reference), (frame, str(exc), str(reference))
            return
        raise AssertionError(f"only the native decoder rejects {frame!r}: {exc}") from None
    reference = fallback.decode_response(frame)
    assert repr(result) == repr(reference), (frame, result, reference)
    assert type(result).__name__ == type(reference).__name__


def _check_notifications(frame: bytes) -> None:
    try:
        result = native.decode_server_message(frame)
    except AgentProtocolError:
        return  # stricter than upb where upb is lax: nothing to compare
    try:
        reference = notifications_fallback.decode_server_message(frame)
    except AgentProtocolError as exc:
        raise AssertionError(f"only google.protobuf rejects {frame!r}: {exc}") from None
    assert repr(result) == repr(reference), (frame, result, reference)


def _check_encoders(fdp: Any) -> None:
    track_id = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 8))
    data = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
    chunk_size = fdp.ConsumeIntInRange(-1, 64)
    ints = [fdp.ConsumeIntInRange(-(2**33), 2**33) for _ in range(4)]
    pairs = [
        (
            _call(native.encode_track_data, track_id, data),
            _call(fallback.encode_track_data, track_id, data),
        ),
        (
            _call(lambda: native.TrackDataEncoder(track_id).encode(data)),
            _call(lambda: fallback.TrackDataEncoder(track_id).encode(data)),
        ),
        (
            _call(native.encode_auth_request, track_id),
            _call(fallback.encode_auth_request, track_id),
        ),
        (
            _call(native.encode_capture_image, track_id),
            _call(fallback.encode_capture_image, track_id),
        ),
        (
            _call(native.encode_add_track, track_id, track_id, *ints),
            _call(fallback.encode_add_track, track_id, track_id, *ints),
        ),
    ]
    for got, expected in pairs:
        assert got == expected, (track_id, data, ints, got, expected)
    status, frame = pairs[0][0]
    if status == "ok":  # the reference parser reads back what was written
        message = AgentRequest.FromString(frame)
        assert (message.track_data.track_id, message.track_data.data) == (track_id, data)
    got = _call(native.frame_track_data, track_id, data, chunk_size)
    expected = _call(fallback.frame_track_data, track_id, data, chunk_size)
    assert got[0] == expected[0], (got, expected)
    if got[0] == "ok":
        assert got[1][0].tobytes() == expected[1][0].tobytes()
        assert got[1][1].tolist() == expected[1][1].tolist()
    else:
        assert got[1] == expected[1]


def test_one_input(data: bytes) -> None:
    """One fuzz input: its first byte picks the decoder (odd: 3 for notifications) or
    the encoders (even)."""
    if not data:
        return
    if data[0] & 3 == 3:
        _check_notifications(data[1:])
    elif data[0] & 1:
        _check_decode(data[1:])
    else:
        provider = atheris.FuzzedDataProvider(data[1:]) if atheris else BytesProvider(data[1:])
        _check_encoders(provider)


def main() -> None:
    if atheris is None:
        sys.exit("pip install atheris (or fishjam-fast[fuzz]) to fuzz")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
