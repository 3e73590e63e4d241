"""The local server's playout model, read per agent track at any instant, and arrival
times for pacing checks (real loopback, raw websockets client).

The bounds below are exact consequences of the model, not timing limits: the server
cannot have played more than the time since the first arrival, nor less than that when
its queue never ran dry (one frame of rounding).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from fishjam_fast.local import LocalFishjam
from fishjam_fast.local.records import ENCODING_OPUS
from tests.raw_agent import TIMEOUT, RawAgent

FRAME = 1 / 16000  # one sample at 16 kHz mono: the playhead's rounding


async def _agent(fj: LocalFishjam) -> tuple[str, RawAgent]:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    return peer.id, await RawAgent.connect(fj.agent_socket_url, peer.token)


async def test_played_and_held_seconds_follow_real_time(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    peer_id, agent = await _agent(fj)
    await agent.add_track("t")
    await agent.send("t", bytes(32000))  # one second at 16 kHz mono, in one chunk
    track = await fj.wait_track(peer_id, 0, TIMEOUT)
    await fj.wait_bytes(track, 32000, TIMEOUT)
    arrived = track.arrivals[0].at
    assert track.arrivals[0][1:] == (32000, 1.0) and track.max_held_seconds == 1.0
    for _ in range(5):
        before = time.monotonic()
        played, held = fj.track_playout(peer_id, "t")
        after = time.monotonic()
        assert played + held == pytest.approx(
            1.0, abs=1e-12
        )  # nothing dropped yet: all of it is one or the other
        if held == 0:
            break
        assert before - arrived - FRAME <= played <= after - arrived
        await asyncio.sleep(0.05)
    await fj.wait_for(lambda: track.held_seconds == 0, TIMEOUT)
    assert track.playout() == (1.0, 0.0) and track.played_seconds == 1.0
    await agent.close()


async def test_interrupt_drops_what_is_held(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    peer_id, agent = await _agent(fj)
    await agent.add_track("t", sample_rate=24000, channels=2)  # 96000 bytes per second
    await agent.send("t", bytes(96000))
    track = await fj.wait_track(peer_id, 0, TIMEOUT)
    await fj.wait_bytes(track, 96000, TIMEOUT)
    await asyncio.sleep(0.1)
    await agent.interrupt("t")
    before = time.monotonic()
    await fj.wait_for(lambda: track.interrupt_count, TIMEOUT)
    played, held = track.playout()
    assert held == 0 and track.bytes_queued == 0
    assert played + track.bytes_dropped / 96000 == pytest.approx(1.0, abs=1e-12)
    assert 0 < played <= before - track.arrivals[0].at + 1  # generous: did not play it all
    # audio after the interrupt starts on arrival: held is exactly what was just sent
    await agent.send("t", bytes(9600))
    await fj.wait_bytes(track, 96000 + 9600, TIMEOUT)
    assert track.arrivals[-1].held == 0.1 and track.max_held_seconds == 1.0
    await agent.close()


async def test_arrivals_show_how_far_ahead_the_sender_is(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    peer_id, agent = await _agent(fj)
    await agent.add_track("t")
    for _ in range(10):  # a burst: 10 chunks of 100 ms as fast as possible
        await agent.send("t", bytes(3200))
    track = await fj.wait_track(peer_id, 0, TIMEOUT)
    await fj.wait_bytes(track, 32000, TIMEOUT)
    arrivals = list(track.arrivals)
    assert [a.nbytes for a in arrivals] == [3200] * 10
    first = arrivals[0].at
    for i, a in enumerate(arrivals):
        sent = 0.1 * (i + 1)
        # held = what was sent so far minus what has played, which is at most the time
        # since the first arrival (exactly that while the queue never runs dry)
        assert sent - (a.at - first) - FRAME <= a.held <= sent
    assert track.max_held_seconds == max(a.held for a in arrivals)
    assert all(b.at >= a.at for a, b in itertools.pairwise(arrivals))
    await agent.close()


async def test_disconnect_drops_what_is_held(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    peer_id, agent = await _agent(fj)
    await agent.add_track("t")
    await agent.send("t", bytes(32000))
    track = await fj.wait_track(peer_id, 0, TIMEOUT)
    await fj.wait_bytes(track, 32000, TIMEOUT)
    fj.drop_agent(peer_id)
    played, held = track.playout()
    assert held == 0 and 0 <= played < 1.0 and track.ended
    await asyncio.sleep(0.02)
    assert track.playout() == (played, 0.0)  # the clock stopped with the connection


async def test_opus_is_not_paced(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    peer_id, agent = await _agent(fj)
    await agent.add_track("o", sample_rate=48000, encoding=ENCODING_OPUS)
    for _ in range(3):
        await agent.send("o", bytes(60))
    track = await fj.wait_track(peer_id, 0, TIMEOUT)
    await fj.wait_bytes(track, 180, TIMEOUT)
    assert fj.track_playout(peer_id, "o") == (0.0, 0.0)
    assert track.bytes_played == 180 and track.max_held_seconds == 0.0
    assert [a.held for a in track.arrivals] == [0.0, 0.0, 0.0]
    await agent.close()


async def test_arrivals_need_recording_but_max_held_does_not() -> None:
    async with LocalFishjam(record_chunks=False, record_requests=False) as fj:
        peer_id, agent = await _agent(fj)
        await agent.add_track("t")
        await agent.send("t", bytes(16000))
        track = await fj.wait_track(peer_id, 0, TIMEOUT)
        await fj.wait_bytes(track, 16000, TIMEOUT)
        assert len(track.arrivals) == 0 and track.max_held_seconds == 0.5
        played, held = track.playout()
        assert played + held == pytest.approx(0.5, abs=1e-12)
        await agent.close()


async def test_codec_parameters_left_at_zero_play_as_16k_mono(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    peer_id, agent = await _agent(fj)
    await agent.add_track("t", sample_rate=0, channels=0)
    await agent.send("t", bytes(3200))
    track = await fj.wait_track(peer_id, 0, TIMEOUT)
    await fj.wait_bytes(track, 3200, TIMEOUT)
    assert track.bytes_per_second == 32000 and track.arrivals[0].held == 0.1
    await agent.close()
