"""Soak: many agents, every connection dropped again and again at random moments.

In full (the issue's case: 100 agents, each connection dropped 10 times over a minute)
on uvloop with the default transport (picows); shortened (20 agents, 3 drops each over
6 s) on asyncio and on the websockets transport, to keep CI's cost sane.
``FISHJAM_FAST_SOAK=full`` runs it in full on every loop and transport.

Every agent runs an application as users write them (a sender on two tracks with
different parameters, a ``receive()`` loop); the agents of one room hear a speaking
peer. A drop is injected only once the previous one was recovered from and audio
flowed on the new connection, so every drop is one outage and ``stats.reconnects``
must equal the number of drops exactly.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from fishjam_fast import ReconnectPolicy
from fishjam_fast.local import LocalFishjam
from fishjam_fast.local.records import AgentRecord
from tests.reconnect_app import App, agents, audio_flows, check_connections

pytestmark = pytest.mark.slow  # a minute of drops and reconnections (6 s each on the other loops)

FULL = (100, 10, 60.0)  # agents, drops per agent, seconds
SHORT = (20, 3, 6.0)

# how soon audio is back after a reconnection is a figure of benchmarks/bench_reconnect.py
# ("audio after accept"), not a bound here: wall-clock limits fail on a loaded machine


def _size(transport: str) -> tuple[int, int, float]:
    loop = asyncio.get_running_loop()
    if os.environ.get("FISHJAM_FAST_SOAK") == "full" or (
        type(loop).__module__.startswith("uvloop") and transport == "picows"
    ):
        return FULL
    return SHORT


async def test_every_connection_dropped_again_and_again(transport: str) -> None:
    n, drops, window = _size(transport)
    # record_requests off: the track log is kept anyway and memory stays flat
    fj = await LocalFishjam(record_requests=False).start()
    try:
        # stable_after=0: the drops here are the test's, each one outage by design
        # (ReconnectPolicy's default would chain drops < 5 s apart into one outage)
        made = await agents(fj, n, reconnect=ReconnectPolicy(budget=20.0, stable_after=0))
        await fj.add_speaking_peer(made[0].room_id, loop=True)
        async with AsyncExitStack() as stack:
            # 2 ms chunks every 50 ms: the traffic of a real agent would only load the
            # shared CI machine; what is checked is order, tokens and recovery
            apps = [await App(agent, ms=2, interval=0.05).start(stack) for agent in made]
            rng = random.Random(11)
            await asyncio.gather(
                *(_drop_repeatedly(fj, app, rng.random, drops, window) for app in apps)
            )
            for agent, app in zip(made, apps, strict=True):
                record = fj.agent(agent.id)
                # the last drop may not be noticed yet: wait for its recovery
                await fj.wait_for(
                    lambda r=record, a=app: (
                        a.session.stats.reconnects >= drops and audio_flows(r, a)
                    ),
                    10.0,
                )
                assert app.errors == [], agent.id
                assert app.session.stats.reconnects == drops
                assert len(record.connections) == drops + 1
                check_connections(record, app, agent._token)
                _check_audio_back_on_every_connection(record)
            assert all(app.received > 0 for app in apps[:10])  # the speaking room
            for app in apps:
                await app.stop()
        assert all(app.errors == [] and app.session.state == "closed" for app in apps)
    finally:
        await fj.stop()


async def _drop_repeatedly(
    fj: LocalFishjam, app: App, random01: Callable[[], float], drops: int, window: float
) -> None:
    """Drops ``app``'s connection ``drops`` times at random moments of ``window``."""
    moments = sorted(window * random01() for _ in range(drops))
    record = fj.agent(app.agent.id)
    start = time.monotonic()
    for done, moment in enumerate(moments):
        await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
        await fj.wait_for(
            lambda done=done: app.session.stats.reconnects == done and audio_flows(record, app),
            20.0,
            0.02,
        )
        fj.drop_agent(app.agent.id)


def _check_audio_back_on_every_connection(record: AgentRecord) -> None:
    """On every connection after the first, each track's audio came again, none of it
    before the server accepted that connection's authentication (check_connections
    checked that every track was re-added on every connection)."""
    accepted = [a.at for a in record.auth_attempts if a.accepted]
    for recording in record.track_history:
        index = recording.connection_index
        if index == 0:
            continue
        assert recording.chunk_count > 0 and recording.arrivals, (index, "no audio")
        assert recording.arrivals[0].at >= accepted[index], (index, "audio before accept")
