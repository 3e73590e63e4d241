"""Records that must stay bounded however long a server runs (a soak with recording off
grew the server from 78 to 193 MB when every echo round trip was kept)."""

from __future__ import annotations

import asyncio
import math
import statistics

import pytest

from fishjam_fast._proto import agent_pb2
from fishjam_fast.local import LatencySample, LocalFishjam
from fishjam_fast.local.records import LATENCY_SAMPLE_SIZE
from tests.raw_agent import TIMEOUT, RawAgent

EVENT_LOOPS = ("asyncio",)  # the records do not depend on the loop


def test_latency_sample_keeps_exact_aggregates_in_fixed_memory() -> None:
    sample = LatencySample(capacity=100, seed=1)
    assert sample.count == 0 and math.isnan(sample.mean) and sample.samples == []
    for i in range(50):
        sample.add(i / 1000)
    assert sample.samples == [i / 1000 for i in range(50)]  # all kept while it fits
    for i in range(50, 100_000):
        sample.add(i / 1000)
    assert len(sample.samples) == 100 and sample.count == 100_000
    assert (sample.min, sample.max) == (0.0, 99.999)
    assert sample.mean == sum(i / 1000 for i in range(100_000)) / 100_000
    assert set(sample.samples) <= {i / 1000 for i in range(100_000)}
    # uniform over the whole stream, not the first or last values (fixed seed)
    assert 35 < statistics.median(sample.samples) < 65
    assert min(sample.samples) < 20 and max(sample.samples) > 80


@pytest.mark.slow  # a long run
async def test_echo_round_trips_stay_bounded_over_a_long_run() -> None:
    rounds = LATENCY_SAMPLE_SIZE + 200
    async with LocalFishjam(record_chunks=False, record_requests=False) as fj:
        room = await fj.create_room()
        peer = await fj.add_agent(room)
        agent = await RawAgent.connect(fj.agent_socket_url, peer.token)
        await agent.add_track("echo")
        # one chunk per round, echoed before the next: every round trip is matched
        speaker = await fj.add_speaking_peer(room, start=False, realtime=False, chunks=1)
        rec = fj.agent(peer.id).connections[0]
        for i in range(rounds):
            fj.start_speaking(speaker)
            frame = agent_pb2.AgentResponse()
            frame.ParseFromString(await asyncio.wait_for(agent.ws.recv(), TIMEOUT))
            await agent.send("echo", frame.track_data.data)
            await fj.wait_for(lambda n=i + 1: rec.echo.count == n, TIMEOUT, interval=0.0005)
        assert rec.echo.count == rounds and rec.track_data_sent == rounds
        assert len(rec.echo_latencies) == LATENCY_SAMPLE_SIZE
        assert 0 <= rec.echo.min <= rec.echo.mean <= rec.echo.max < TIMEOUT
        await agent.close()
