"""Bad input to the agent API is refused before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fishjam_fast import Agent, OutgoingAudioTrackOptions, TrackEncoding
from fishjam_fast._options import track_params
from fishjam_fast.transport.base import websocket_url

pytestmark = pytest.mark.usefixtures("transport")


@pytest.mark.parametrize(
    ("fishjam_url", "expected"),
    [
        ("http://127.0.0.1:5002", "ws://127.0.0.1:5002/socket/agent/websocket"),
        (
            "https://fishjam.io/api/v1/connect/abc",
            "wss://fishjam.io/api/v1/connect/abc/socket/agent/websocket",
        ),
        ("https://fishjam.io/", "wss://fishjam.io/socket/agent/websocket"),
        # only the scheme is rewritten (the plain SDK would turn this path into "wss")
        ("http://host/https-proxy", "ws://host/https-proxy/socket/agent/websocket"),
        ("wss://host", "wss://host/socket/agent/websocket"),
    ],
)
def test_websocket_url_keeps_prefix_and_rewrites_only_the_scheme(
    fishjam_url: str, expected: str
) -> None:
    assert websocket_url(fishjam_url) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:5002", "ftp://host"])
def test_websocket_url_rejects_other_schemes(bad: str) -> None:
    with pytest.raises(ValueError, match=r"fishjam_url|scheme"):
        websocket_url(bad)


def test_ssl_context_with_plain_url_is_refused() -> None:
    import ssl

    with pytest.raises(ValueError, match="ssl"):
        Agent("a", "r", "t", "http://127.0.0.1:1", ssl=ssl.create_default_context())


def test_default_options_match_the_plain_sdk() -> None:
    plain = pytest.importorskip("fishjam.agent")
    ours, theirs = OutgoingAudioTrackOptions(), plain.OutgoingAudioTrackOptions()
    assert (ours.encoding, ours.sample_rate, ours.channels, ours.metadata) == (
        theirs.encoding,
        theirs.sample_rate,
        theirs.channels,
        theirs.metadata,
    )


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            OutgoingAudioTrackOptions(sample_rate=44100),
            ValueError,
            "44100 Hz: Fishjam takes 16000 or 24000",
        ),
        (OutgoingAudioTrackOptions(sample_rate=8000), ValueError, "8000"),
        (
            OutgoingAudioTrackOptions(
                encoding=TrackEncoding.TRACK_ENCODING_PCM16, sample_rate=48000
            ),
            ValueError,
            "48000",
        ),
        (OutgoingAudioTrackOptions(channels=3), ValueError, "channel count 3"),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(channels=0), ValueError, "channel count 0"),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(encoding=7), ValueError, "unsupported encoding 7"),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(sample_rate="16000"), TypeError, "sample_rate must be an int"),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(channels=True), TypeError, "channels must be an int"),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(metadata={"f": object()}), TypeError, "JSON-encodable"),
        (OutgoingAudioTrackOptions(metadata={"nan": float("nan")}), ValueError, "NaN or Inf"),
        (OutgoingAudioTrackOptions(metadata=[float("-inf")]), ValueError, "NaN or Inf"),
        (OutgoingAudioTrackOptions(metadata={"x": 1.5, "y": [None, "z"]}), None, None),
    ],
)
def test_track_options_validation(
    options: Any, error: type[Exception] | None, match: str | None
) -> None:
    if error is None:
        track_params(options)
        return
    with pytest.raises(error, match=match):
        track_params(options)


def test_opus_takes_its_own_rates() -> None:
    opus = TrackEncoding.TRACK_ENCODING_OPUS
    assert (
        track_params(OutgoingAudioTrackOptions(encoding=opus, sample_rate=48000)).sample_rate
        == 48000
    )  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Opus sample rate 44100"):
        track_params(OutgoingAudioTrackOptions(encoding=opus, sample_rate=44100))  # type: ignore[arg-type]


def test_duck_typed_options_are_read_by_attribute() -> None:
    @dataclass
    class Foreign:
        encoding: int = 1
        sample_rate: int = 24000
        channels: int = 2
        metadata: Any = None

    params = track_params(Foreign())
    assert (params.encoding, params.sample_rate, params.channels, params.metadata_json) == (
        1,
        24000,
        2,
        "null",
    )


def test_gemini_output_settings_of_the_plain_sdk_are_accepted() -> None:
    gemini = pytest.importorskip("fishjam.integrations.gemini")  # the test extra installs it
    settings = gemini.GeminiIntegration.GEMINI_OUTPUT_AUDIO_SETTINGS
    params = track_params(settings)
    assert (params.encoding, params.sample_rate, params.channels) == (1, 24000, 1)
