"""Audio windows (issue 21): ``session.on_audio``, ``session.audio()``, ``TrackAudio``
and ``track.send_pcm_nowait``, on both transports and both loops, against the local
Fishjam (scripted peers' frames sent as they are, ``send_raw``) and its records of what
the agent sent. Bit-exact: a track's windows, less their zero-padded tails, are the
concatenation of its chunks. Timing bounds are benchmarks/bench_windows.py's."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from fishjam_fast import (
    Agent,
    AgentConnectionError,
    AgentError,
    AgentWouldBlockError,
    OutgoingAudioTrackOptions,
    ReconnectPolicy,
    TrackAudio,
    _codec,
)
from fishjam_fast._proto import agent_pb2
from fishjam_fast.local import LocalFishjam
from tests import hostile
from tests.conftest import native_extension
from tests.wire import field_len

pytestmark = pytest.mark.usefixtures("transport")

TIMEOUT = 5.0
QUICK = ReconnectPolicy(budget=10.0, first_delay=0.02, max_delay=0.2)


@pytest.fixture(autouse=True)
def _native() -> None:
    native_extension()  # windows are native only: skipped (or failed) without it


async def _agent(fj: LocalFishjam, **options: Any) -> Agent:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    return Agent(peer.id, room, peer.token, fj.url, **options)


def _noise(frames: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (frames,) if channels == 1 else (frames, channels)
    return rng.integers(-32768, 32767, size=shape, dtype=np.int16)


class Collector:
    """An on_audio callback keeping copies, by (peer, track)."""

    def __init__(self) -> None:
        self.windows: list[list[TrackAudio]] = []
        self.by_track: dict[tuple[str, str], list[TrackAudio]] = defaultdict(list)

    def __call__(self, window: list[TrackAudio]) -> None:
        kept = []
        for item in window:
            copy = TrackAudio(
                item.peer_id, item.track_id, item.sample_rate, item.pcm.copy(),
                item.start, item.missing,
            )  # fmt: skip
            kept.append(copy)
            self.by_track[item.peer_id, item.track_id].append(copy)
        self.windows.append(kept)

    def received(self, key: tuple[str, str]) -> bytes:
        return b"".join(item.received.tobytes() for item in self.by_track[key])

    def frames(self, key: tuple[str, str]) -> int:
        return sum(len(item.pcm) - item.missing for item in self.by_track[key])


# -- bit-exact -----------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (24000, 1), (16000, 2), (24000, 2)])
async def test_windows_are_the_concatenation_of_each_tracks_chunks(
    local_fishjam: LocalFishjam, rate: int, channels: int, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    window_ms = 100
    window = rate * window_ms // 1000
    chunk = rate // 50  # 20 ms
    peers = [("alice", "a1"), ("bob", "b1"), ("bob", "b2")]
    # 23 chunks for alice (4.6 windows: the last one padded), 15 for bob's b1 with a
    # gap of 7 chunks in the middle, 10 for b2 whose chunks are 3 times 20 ms long
    plans = {
        ("alice", "a1"): [chunk] * 23,
        ("bob", "b1"): [chunk] * 8 + [0] * 7 + [chunk] * 7,
        ("bob", "b2"): [3 * chunk] * 10,
    }
    audio = {
        key: _noise(sum(plan), channels, seed) for seed, (key, plan) in enumerate(plans.items())
    }
    async with agent.connect() as session:
        got = Collector()
        windows = session.on_audio(got, window_ms, sample_rate=rate, channels=channels)
        assert windows is not None
        offsets = dict.fromkeys(peers, 0)
        for step in range(max(len(p) for p in plans.values())):
            for key in peers:
                plan = plans[key]
                if step >= len(plan):
                    continue
                if plan[step] == 0:  # the gap: nothing for a while
                    continue
                start = offsets[key]
                piece = audio[key][start : start + plan[step]]
                offsets[key] += plan[step]
                await fj.send_raw(agent.id, hostile.track_data(piece.tobytes(), *key))
            await asyncio.sleep(0.02 if step in (9, 10, 11) else 0)  # real time in the gap
        total = {key: sum(plan) for key, plan in plans.items()}
        await fj.wait_for(lambda: all(got.frames(k) == total[k] for k in peers), TIMEOUT)
        for key in peers:
            assert got.received(key) == audio[key].tobytes(), key
            for item in got.by_track[key]:
                assert item.sample_rate == rate
                assert item.pcm.dtype == np.int16
                assert item.pcm.shape == ((window,) if channels == 1 else (window, channels))
                assert not item.pcm[len(item.pcm) - item.missing :].any()  # zeros
        # the last windows were padded (their peers stopped mid-window): counted
        assert got.by_track["alice", "a1"][-1].missing == 5 * window - 23 * chunk
        assert windows.missing_frames == sum(
            item.missing for items in got.by_track.values() for item in items
        )
        assert windows.chunks == 23 + 15 + 10
        assert windows.overflow_frames == windows.refused_chunks == 0
        # starts: consecutive windows of a run are a window apart
        starts = [item.start for item in got.by_track["alice", "a1"]]
        assert np.allclose(np.diff(starts), window_ms / 1000)
        assert session.stats.messages_received >= 48


async def test_on_audio_leaves_images_to_receive_and_stops(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        got = Collector()
        windows = session.on_audio(got, 20)
        assert windows is not None
        image = agent_pb2.AgentResponse(
            track_image=agent_pb2.AgentResponse.TrackImage(track_id="cam", data=b"jpeg")
        ).SerializeToString()
        await fj.send_raw(agent.id, hostile.track_data(b"\x01\x00" * 320))
        await fj.send_raw(agent.id, image)
        message = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert message.track_id == "cam"
        await fj.wait_for(lambda: len(got.windows) == 1, TIMEOUT)
        assert got.windows[0][0].missing == 0 and got.windows[0][0].pcm[0] == 1
        with pytest.raises(AgentError, match="already hands audio on in windows"):
            session.on_audio(got)
        session.on_audio(None)  # audio goes to receive() again
        await fj.send_raw(agent.id, hostile.track_data(b"\x02\x00"))
        message = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert message.data == b"\x02\x00"


async def test_audio_iterator_owns_its_windows_and_ends_with_the_session(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    samples = _noise(1600 * 3, 1, 7)
    async with agent.connect() as session:
        stream = session.audio(100, coalesce=False)
        for start in range(0, len(samples), 320):
            await fj.send_raw(agent.id, hostile.track_data(samples[start : start + 320].tobytes()))
        windows = [await asyncio.wait_for(anext(stream), TIMEOUT) for _ in range(3)]
        pcm = np.concatenate([w[0].pcm for w in windows])
        assert pcm.tobytes() == samples.tobytes()
        assert all(w[0].pcm.base is None or w[0].pcm.flags.owndata for w in windows)
        # half a window, then the server closes: it is handed on padded, then the end
        await fj.send_raw(agent.id, hostile.track_data(samples[:800].tobytes()))
        await fj.close_agent(agent.id, 1000, "bye")
        [last] = await asyncio.wait_for(anext(stream), TIMEOUT)
        assert last.missing == 800 and last.received.tobytes() == samples[:800].tobytes()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(stream), TIMEOUT)


async def test_audio_in_async_with_stops_the_windows_at_its_end(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        async with session.audio(20) as stream:
            await fj.send_raw(agent.id, hostile.track_data(b"\x01\x00" * 320))
            async for window in stream:
                assert window[0].pcm[0] == 1
                break
        await fj.send_raw(agent.id, hostile.track_data(b"\x02\x00"))  # to receive() again
        message = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert message.data == b"\x02\x00"
        session.on_audio(print)  # windows can start again


async def test_audio_iterator_raises_when_the_connection_is_lost(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    agent = await _agent(fj, reconnect=False)
    async with agent.connect() as session:
        stream = session.audio(100)
        fj.drop_agent(agent.id)
        with pytest.raises(AgentConnectionError):
            await asyncio.wait_for(anext(stream), TIMEOUT)


async def test_windows_stay_across_a_reconnection(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj, reconnect=QUICK)
    async with agent.connect() as session:
        got = Collector()
        session.on_audio(got, 20)
        await fj.send_raw(agent.id, hostile.track_data(b"\x01\x00" * 320))
        await fj.wait_for(lambda: len(got.windows) == 1, TIMEOUT)
        fj.drop_agent(agent.id)
        await fj.wait_for(lambda: session.stats.reconnects == 1, TIMEOUT)
        await fj.wait_connected(agent.id, TIMEOUT)
        await fj.send_raw(agent.id, hostile.track_data(b"\x02\x00" * 320))
        await fj.wait_for(lambda: len(got.windows) == 2, TIMEOUT)
        assert got.windows[1][0].pcm[0] == 2


async def test_a_callbacks_exception_is_reported_and_windows_go_on(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, c: errors.append(c))
    async with agent.connect() as session:
        seen: list[int] = []

        def callback(window: list[TrackAudio]) -> None:
            seen.append(int(window[0].pcm[0]))
            if len(seen) == 1:
                raise RuntimeError("the application's bug")

        session.on_audio(callback, 20)
        for value in (1, 2):
            await fj.send_raw(agent.id, hostile.track_data(bytes([value, 0]) * 320))
        await fj.wait_for(lambda: len(seen) == 2, TIMEOUT)
        assert seen == [1, 2]
        assert "on_audio callback" in errors[0]["message"]


async def test_windows_a_callback_keeps_are_never_changed_after_it(
    local_fishjam: LocalFishjam,
) -> None:
    """The list and items of a window are reused only when the callback kept neither:
    a kept list, or a kept item, still holds what it held during its call."""
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        lists: list[tuple[list[TrackAudio], list[tuple[str, float, int]]]] = []
        items: list[tuple[TrackAudio, tuple[str, float, int]]] = []
        calls = [0]

        def callback(window: list[TrackAudio]) -> None:
            calls[0] += 1
            seen = [(item.peer_id, item.start, int(item.pcm[0])) for item in window]
            if calls[0] % 3 == 0:  # keeps the list
                lists.append((window, seen))
            elif calls[0] % 3 == 1:  # keeps an item, not the list
                items.append((window[-1], seen[-1]))

        session.on_audio(callback, 20)
        for value in range(1, 13):  # a 20 ms window of each peer, one after the other
            for peer in ("p", "q"):
                data = bytes([value + (peer == "q") * 100, 0]) * 320
                await fj.send_raw(agent.id, hostile.track_data(data, peer))
            await asyncio.sleep(0.005)
        await fj.wait_for(lambda: calls[0] == 24, TIMEOUT)
        assert len(lists) == 8 and len(items) == 8
        for window, seen in lists:  # (pcm is a view of the ring: only its content moves on)
            assert [(i.peer_id, i.start) for i in window] == [(p, t) for p, t, _ in seen]
        for item, (peer, start, _) in items:
            assert (item.peer_id, item.start) == (peer, start)
        assert len({id(window) for window, _ in lists}) == 8
        assert len({id(item) for item, _ in items}) == 8


async def test_send_pcm_nowait_checks_chunk_ms_and_removal(local_fishjam: LocalFishjam) -> None:
    agent = await _agent(local_fishjam)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        sent = session.stats.messages_sent
        assert track.send_pcm_nowait(np.zeros(1600, np.int16), chunk_ms=40) == pytest.approx(0.1)
        assert session.stats.messages_sent - sent == 3  # 40 ms frames: 640 + 640 + 320
        for wrong in (20.0, True, 5, 1001):
            with pytest.raises(ValueError, match="chunk_ms"):
                track.send_pcm_nowait(np.zeros(320, np.int16), chunk_ms=wrong)  # type: ignore[arg-type]
        await session.remove_track(track)
        with pytest.raises(AgentError, match="removed"):
            track.send_pcm_nowait(np.zeros(320, np.int16))


# -- hostile input -------------------------------------------------------------------


async def test_chunks_of_broken_sample_frames_are_dropped_and_counted(
    local_fishjam: LocalFishjam, caplog: pytest.LogCaptureFixture
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    good = _noise(640, 2, 3)
    async with agent.connect() as session:
        got = Collector()
        windows = session.on_audio(got, 20, channels=2)
        assert windows is not None
        await fj.send_raw(agent.id, hostile.track_data(good[:320].tobytes()))
        await fj.send_raw(agent.id, hostile.track_data(b"\x01\x02\x03"))  # not whole
        await fj.send_raw(agent.id, hostile.track_data(b"\x01\x02"))  # half a stereo frame
        await fj.send_raw(agent.id, hostile.track_data(good[320:].tobytes()))
        await fj.wait_for(lambda: len(got.windows) == 2, TIMEOUT)
        assert got.received(("p", "t")) == good.tobytes()
        assert windows.refused_chunks == 2
        assert "not whole 4-byte sample frames" in caplog.text


async def test_a_peer_changing_rate_stays_bit_exact(local_fishjam: LocalFishjam) -> None:
    """The wire has no rate: a peer whose chunks change length (16 kHz-sized, then
    24 kHz-sized 20 ms chunks) still arrives sample for sample."""
    fj = local_fishjam
    agent = await _agent(fj)
    audio = _noise(320 * 10 + 480 * 10, 1, 11)
    async with agent.connect() as session:
        got = Collector()
        session.on_audio(got, 20, sample_rate=16000)
        offset = 0
        for size in [320] * 10 + [480] * 10:
            await fj.send_raw(agent.id, hostile.track_data(audio[offset : offset + size].tobytes()))
            offset += size
        await fj.wait_for(lambda: got.frames(("p", "t")) == len(audio), TIMEOUT)
        assert got.received(("p", "t")) == audio.tobytes()


async def test_a_chunk_longer_than_the_ring_keeps_its_end(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    flood = _noise(16000 * 2, 1, 5)  # 2 s in one chunk; the ring holds 200 ms
    async with agent.connect() as session:
        got = Collector()
        windows = session.on_audio(got, 100, max_buffered_ms=200)
        assert windows is not None
        await fj.send_raw(agent.id, hostile.track_data(flood.tobytes()))
        await fj.wait_for(lambda: len(got.windows) == 2, TIMEOUT)
        assert got.received(("p", "t")) == flood[-3200:].tobytes()
        assert windows.overflow_frames == len(flood) - 3200


async def test_a_flood_is_bounded(local_fishjam: LocalFishjam) -> None:
    """Windows are dropped, oldest first, when a ring is full; memory stays fixed."""
    fj = local_fishjam
    agent = await _agent(fj)
    audio = _noise(1600 * 40, 1, 9)
    async with agent.connect() as session:
        got = Collector()
        windows = session.on_audio(got, 100, max_buffered_ms=200)
        assert windows is not None
        ring = windows._assembler
        # the frames reach the socket faster than the loop hands windows on only if
        # they come in one read: 40 windows' chunks in one message each of 5 windows
        for start in range(0, len(audio), 8000):
            await fj.send_raw(agent.id, hostile.track_data(audio[start : start + 8000].tobytes()))
        await fj.wait_for(
            lambda: got.frames(("p", "t")) + windows.overflow_frames == len(audio), TIMEOUT
        )
        assert windows.overflow_frames >= 8000 - 3200  # each 5-window chunk lost 3
        assert ring.track_count() == 1
        # what came through is whole windows of the audio, in order
        received = np.frombuffer(got.received(("p", "t")), np.int16).reshape(-1, 1600)
        whole = audio.reshape(-1, 1600)
        indices = [int(np.flatnonzero((whole == w).all(axis=1))[0]) for w in received]
        assert indices == sorted(indices)


async def test_too_many_tracks_are_refused_and_counted(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        got = Collector()
        windows = session.on_audio(got, 20, max_tracks=2)
        assert windows is not None
        for index in range(5):  # each track keeps a partial window pending
            await fj.send_raw(agent.id, hostile.track_data(b"\x01\x00" * 100, track_id=f"t{index}"))
        await fj.wait_for(lambda: windows.chunks == 5, TIMEOUT)
        assert windows.refused_tracks == 3 and windows.tracks == 2


async def test_frames_read_the_way_the_decoder_reads_them(local_fishjam: LocalFishjam) -> None:
    """Field order, repeated fields, unknown fields, another oneof member: the rings
    take what the decoder would have decoded as track_data, and nothing else."""
    fj = local_fishjam
    agent = await _agent(fj)
    pcm = b"\x05\x00" * 320
    track = field_len(2, field_len(1, b"t") + b"\x10\x02")  # track{id, type}
    variants = [
        # data first, peer last, an unknown varint field
        field_len(2, field_len(3, pcm) + b"\x20\x07" + track + field_len(1, b"p")),
        # track_data after an image member: the last member wins
        field_len(3, field_len(1, b"cam")) + hostile.track_data(pcm),
        # unknown top-level field after it
        hostile.track_data(pcm) + b"\x28\x01",
    ]
    async with agent.connect() as session:
        got = Collector()
        session.on_audio(got, 20)
        for frame in variants:
            assert type(_codec.decode_response(frame)).__name__ == "IncomingTrackData"
            await fj.send_raw(agent.id, frame)
        # an image after track_data in one frame: an image (the decoder's reading)
        image_last = hostile.track_data(pcm) + field_len(3, field_len(1, b"cam"))
        await fj.send_raw(agent.id, image_last)
        message = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert message.track_id == "cam"
        await fj.wait_for(lambda: len(got.windows) == 3, TIMEOUT)
        assert got.received(("p", "t")) == pcm * 3
        # malformed: left to the decoder, counted as skipped
        await fj.send_raw(agent.id, b"\x12\x05\x0a")
        await fj.wait_for(lambda: session.stats.frames_skipped == 1, TIMEOUT)


async def test_options_are_checked(local_fishjam: LocalFishjam) -> None:
    agent = await _agent(local_fishjam)
    async with agent.connect() as session:
        with pytest.raises(ValueError, match="between 10 and 2000"):
            session.on_audio(print, 5)
        with pytest.raises(ValueError, match="unsupported sample rate"):
            session.on_audio(print, 100, sample_rate=44100)
        with pytest.raises(ValueError, match="whole number of samples"):
            session.on_audio(print, 10.01)
        with pytest.raises(TypeError, match="callable or None"):
            session.on_audio(42)  # type: ignore[arg-type]


# -- send_pcm_nowait -----------------------------------------------------------------


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (24000, 2)])
async def test_send_pcm_nowait_sends_what_send_chunk_sends(
    local_fishjam: LocalFishjam, rate: int, channels: int
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    chunk = rate // 50
    samples = _noise(5 * chunk + chunk // 2, channels, 21)  # 5.5 chunks: the last shorter
    async with agent.connect() as session:
        options = OutgoingAudioTrackOptions(sample_rate=rate, channels=channels)  # type: ignore[arg-type]
        awaited = await session.add_track(options)
        nowait = await session.add_track(options)
        for start in range(0, len(samples), chunk):
            await awaited.send_chunk(samples[start : start + chunk].tobytes())
        sent = session.stats.messages_sent
        seconds = nowait.send_pcm_nowait(samples)
        assert seconds == pytest.approx(len(samples) / rate)
        assert session.stats.messages_sent - sent == 6
        assert nowait._clock.sent_seconds == pytest.approx(awaited._clock.sent_seconds)
        record = fj.agent(agent.id)
        await fj.wait_for(
            lambda: sum(r.HasField("track_data") for r in record.requests) == 12, TIMEOUT
        )
        frames = [r for r in record.requests if r.HasField("track_data")]
        mine = [r.track_data.data for r in frames if r.track_data.track_id == nowait.id]
        theirs = [r.track_data.data for r in frames if r.track_data.track_id == awaited.id]
        assert mine == theirs
        # byte for byte the frame send_chunk makes (the codec's)
        first = next(r for r in frames if r.track_data.track_id == nowait.id)
        assert first.SerializeToString() == _codec.encode_track_data(
            nowait.id, samples[:chunk].tobytes()
        )


async def test_send_pcm_nowait_honours_max_queued(local_fishjam: LocalFishjam) -> None:
    agent = await _agent(local_fishjam)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions(), max_queued=0.25)
        assert track.send_pcm_nowait(np.zeros(3200, np.int16)) == pytest.approx(0.2)
        sent = session.stats.messages_sent
        with pytest.raises(AgentWouldBlockError, match="max_queued"):
            track.send_pcm_nowait(np.zeros(3200, np.int16))
        assert session.stats.messages_sent == sent  # nothing went out
        assert 0.15 < track.queued_duration <= 0.2
        dropped = await track.interrupt()
        assert dropped > 0.1
        track.send_pcm_nowait(np.zeros(3200, np.float32))  # room again after the interrupt
        with pytest.raises(ValueError, match="even number of bytes"):
            track.send_pcm_nowait(b"\x01\x02\x03")
