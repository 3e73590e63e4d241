"""NumPy audio over the agent API, against the local Fishjam."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fishjam_fast import Agent, OutgoingAudioTrackOptions, TrackEncoding
from fishjam_fast.local import AudioSource, LocalFishjam
from fishjam_fast.pcm import to_pcm16

pytestmark = pytest.mark.usefixtures("transport")


TIMEOUT = 10.0


async def _connect(fj: LocalFishjam, rate: int = 24000) -> tuple[str, Agent]:
    room = await fj.create_room()
    peer = await fj.add_agent(room, sample_rate=rate)
    return room, Agent(peer.id, room, peer.token, fj.url)


async def test_send_pcm_ten_seconds_arrives_as_exact_chunks(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _connect(fj)
    rate = 24000
    t = np.arange(10 * rate + 123) / rate  # 10 s and a short last chunk
    samples = (0.6 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=rate))
        sent = await track.send_pcm(samples)
        recording = await fj.wait_track(agent.id, 0, TIMEOUT)
        expected = to_pcm16(samples)
        await fj.wait_bytes(recording, len(expected), TIMEOUT)
    per_chunk = rate // 50 * 2
    assert sent == 501 == recording.chunk_count
    assert [len(c) for c in recording.chunks] == [per_chunk] * 500 + [246]
    assert b"".join(recording.chunks) == expected
    assert session.stats.messages_sent == 1 + 1 + 501  # auth, add_track, chunks


async def test_send_pcm_stereo_int16_and_chunk_ms(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _connect(fj)
    stereo = np.arange(-16000, 16000, dtype=np.int16).reshape(-1, 2)  # 16000 frames
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000, channels=2))
        assert await track.send_pcm(stereo, chunk_ms=100) == 10
        recording = await fj.wait_track(agent.id, 0, TIMEOUT)
        await fj.wait_bytes(recording, stereo.nbytes, TIMEOUT)
    assert [len(c) for c in recording.chunks] == [6400] * 10
    assert b"".join(recording.chunks) == stereo.astype("<i2").tobytes()


async def test_send_chunk_takes_arrays(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _connect(fj)
    swapped = np.array([1, -2, 32767, -32768], dtype=">i2")
    floats = np.array([0.0, 1.0, -1.0, 2.0, -0.0, 0.5], dtype=np.float64)[::-1]  # strided
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
        await track.send_chunk(swapped)
        await track.send_chunk(floats)
        # refused before anything is sent; the track carries on
        with pytest.raises(ValueError, match=r"but 1 is NaN \(the first at index 1\)"):
            await track.send_chunk(np.array([0.5, np.nan, 0.0]))
        await track.send_chunk(np.zeros(0, dtype=np.int16))
        recording = await fj.wait_track(agent.id, 0, TIMEOUT)
        await fj.wait_for(lambda: recording.chunk_count == 3, TIMEOUT)
    assert recording.chunks[0] == np.array([1, -2, 32767, -32768], "<i2").tobytes()
    assert recording.chunks[1] == np.array([16384, 0, 32767, -32767, 32767, 0], "<i2").tobytes()
    assert recording.chunks[2] == b""


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (np.zeros(4, dtype=np.int32), TypeError, "dtype int32"),
        (np.zeros((4, 2), dtype=np.int16), ValueError, "2 channels, but channels=1"),
        (np.zeros((2, 2, 2), dtype=np.float32), ValueError, "3-d"),
        (np.array(["a"], dtype=object), TypeError, "dtype object"),
    ],
)
async def test_bad_arrays_are_refused_before_sending(
    local_fishjam: LocalFishjam, data: np.ndarray, error: type[Exception], match: str
) -> None:
    fj = local_fishjam
    _, agent = await _connect(fj)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
        with pytest.raises(error, match=match):
            await track.send_chunk(data)
        with pytest.raises(error, match=match):
            await track.send_pcm(data)
        await track.send_chunk(b"\x01\x00")  # a marker: nothing went before it
        recording = await fj.wait_track(agent.id, 0, TIMEOUT)
        await fj.wait_for(lambda: recording.chunk_count == 1, TIMEOUT)
    assert recording.chunks == [b"\x01\x00"]


async def test_arrays_on_opus_tracks_are_refused(local_fishjam: LocalFishjam) -> None:
    _, agent = await _connect(local_fishjam)
    async with agent.connect() as session:
        opus = OutgoingAudioTrackOptions(
            encoding=TrackEncoding.TRACK_ENCODING_OPUS, sample_rate=48000
        )  # type: ignore[arg-type]
        track = await session.add_track(opus)
        with pytest.raises(TypeError, match="PCM16 tracks"):
            await track.send_chunk(np.zeros(4, dtype=np.int16))
        with pytest.raises(TypeError, match="PCM16 tracks"):
            await track.send_pcm(b"\0\0")


async def test_received_pcm_is_a_view_and_samples_a_copy(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _connect(fj, rate=16000)
    source = np.arange(-3200, 3200, 2, dtype=np.int16)  # 3200 samples = 10 chunks
    async with agent.connect() as session:
        await fj.add_speaking_peer(room, AudioSource.from_array(source, 16000), realtime=False)
        heard = []
        async for message in session.receive():
            pcm = message.pcm
            assert pcm.dtype == np.dtype("<i2") and pcm.shape == (320,)
            assert not pcm.flags.writeable and np.shares_memory(
                pcm, np.frombuffer(message.data, np.uint8)
            )
            samples = message.samples()
            assert samples.dtype == np.float32 and samples.flags.writeable
            np.testing.assert_array_equal(samples, pcm.astype(np.float32) / 32768)
            heard.append(pcm)
            if len(heard) == 10:
                break
    np.testing.assert_array_equal(np.concatenate(heard), source)
