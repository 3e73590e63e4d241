"""Automatic reconnection over real loopback against the local Fishjam: a session that
loses its connection abnormally comes back with the same token and the same tracks
before any audio, while its receive() loop and its senders carry on; normal closes,
refused tokens, a spent budget and disconnect() end it as documented."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack

import pytest

from fishjam_fast import (
    Agent,
    AgentAuthError,
    AgentConnectionError,
    OutgoingAudioTrackOptions,
    ReconnectPolicy,
)
from fishjam_fast.local import LocalFishjam
from tests.raw_agent import RawAgent
from tests.reconnect_app import TIMEOUT, App, agents, audio_flows, check_connections, chunk_for

pytestmark = pytest.mark.usefixtures("transport")

# fast attempts: the tests wait for them
QUICK = ReconnectPolicy(budget=10.0, first_delay=0.02, max_delay=0.2)

FAULTS = ("tcp_drop", "close_1011", "going_away_1001", "restart")


async def _inject(fj: LocalFishjam, peer_id: str, fault: str) -> int:
    """Ends the agent's connection abnormally; returns the close code it should see."""
    if fault == "tcp_drop":
        fj.drop_agent(peer_id)
        return 1006
    if fault == "close_1011":
        await fj.close_agent(peer_id, 1011, "internal error")
        return 1011
    if fault == "going_away_1001":
        await fj.close_agent(peer_id, 1001, "going away")
        return 1001
    await fj.restart(downtime=0.2)
    return 1006


@pytest.mark.parametrize("fault", FAULTS)
async def test_abnormal_end_reconnects_with_the_same_token_and_tracks(
    local_fishjam: LocalFishjam, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    fj = local_fishjam
    caplog.set_level(logging.DEBUG, logger="fishjam_fast")
    [agent] = await agents(fj, 1, reconnect=QUICK)
    await fj.add_speaking_peer(agent.room_id, loop=True)
    async with AsyncExitStack() as stack:
        app = await App(agent).start(stack)
        session = app.session
        record = fj.agent(agent.id)
        await fj.wait_for(lambda: app.received > 0 and app.sent > 0, TIMEOUT)
        tracks_before = list(record.tracks.values())

        code = await _inject(fj, agent.id, fault)
        await fj.wait_for(lambda: session.stats.reconnects == 1, TIMEOUT)
        assert session.state == "connected" and not session.closed
        received, sent = app.received, app.sent
        # audio flows again both ways, on the same track objects
        await fj.wait_for(lambda: app.received > received and app.sent > sent + 2, TIMEOUT)
        await fj.wait_for(lambda: audio_flows(record, app), TIMEOUT)
        assert all(r.connection_index == 1 for r in record.tracks.values())
        assert [r.track_id for r in record.tracks.values()] == [t.track_id for t in tracks_before]
        check_connections(record, app, agent._token)
        assert app.errors == []
        assert [(c.previous, c.state) for c in app.changes] == [
            ("connected", "reconnecting"),
            ("reconnecting", "connected"),
        ]
        drop = app.changes[0].cause
        assert isinstance(drop, AgentConnectionError) and drop.code == code
        assert app.changes[1].cause is None
        await app.stop()
    assert session.state == "closed" and app.errors == []
    assert session.stats.reconnects == 1 and session.stats.reconnect_attempts >= 1
    # one line per agent and event at DEBUG (WARNING and INFO get the process's
    # aggregated line: tests/test_outage_log.py)
    logs = [
        r.getMessage()
        for r in caplog.records
        if r.name == "fishjam_fast" and r.getMessage().startswith(f"agent {agent.id}:")
    ]
    assert [r.levelno for r in caplog.records if r.getMessage() in logs] == [logging.DEBUG] * 2
    assert f"code {code}" in logs[0] and "reconnecting" in logs[0]
    assert "reconnected after" in logs[1] and "2 tracks re-added" in logs[1]


@pytest.mark.parametrize(
    ("how", "code", "reason"),
    [("kick", 1000, "Peer removed"), ("delete_room", 1000, "Room stopped"), ("1008", 1008, "x")],
)
async def test_normal_close_and_protocol_errors_end_the_session(
    local_fishjam: LocalFishjam, how: str, code: int, reason: str
) -> None:
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=QUICK)
    async with agent.connect() as session:
        states: list[str] = []
        session.on_state_change(lambda change: states.append(change.state))
        if how == "kick":
            await fj.kick(agent.id)
        elif how == "delete_room":
            await fj.delete_room(agent.room_id)
        else:
            await fj.close_agent(agent.id, code, reason)
        if code == 1000:
            async with asyncio.timeout(TIMEOUT):
                assert [m async for m in session.receive()] == []
        else:
            with pytest.raises(AgentConnectionError) as info:
                async with asyncio.timeout(TIMEOUT):
                    _ = [m async for m in session.receive()]
            assert (info.value.code, info.value.reason) == (code, reason)
        assert (session.close_code, session.close_reason) == (code, reason)
        assert states == ["closed"] and session.state == "closed"
        assert session.stats.reconnect_attempts == 0
    assert len(fj.agent(agent.id).auth_attempts) == 1


@pytest.mark.slow  # waits while reconnecting
async def test_sends_wait_while_reconnecting_then_go_out_after_the_tracks(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=QUICK)
    options = OutgoingAudioTrackOptions(sample_rate=24000)
    async with agent.connect() as session:
        track = await session.add_track(options)
        reader = asyncio.create_task(_drain(session))
        restart = asyncio.create_task(fj.restart(downtime=0.5))
        await fj.wait_for(lambda: session.state == "reconnecting", TIMEOUT)
        # while the server is down the chunk cannot go anywhere: the call waits
        send = asyncio.create_task(track.send_chunk(chunk_for(options, 20)))
        pcm = asyncio.create_task(track.send_pcm(bytes(24000 * 2), chunk_ms=20))  # 1 s
        await asyncio.sleep(0.1)
        assert not fj.listening and not send.done() and not pcm.done()
        await restart
        async with asyncio.timeout(TIMEOUT):
            await send
            assert await pcm == 50
        assert session.state == "connected" and session.stats.reconnects == 1
        record = fj.agent(agent.id)
        new = record.tracks[track.id]
        await fj.wait_bytes(new, 960 + 24000 * 2, TIMEOUT)
        log = record.connections[1].track_log
        assert log[0].kind == "add_track" and log[0].track_id == track.id
        assert record.connections[1].data_without_track == 0
        assert not reader.done()
    assert await reader == []


async def test_playout_clock_starts_again_after_a_drop(local_fishjam: LocalFishjam) -> None:
    """The server dropped what it held with the old connection: the track's model of
    its queue is emptied, and a wait_for_playout() in progress returns."""
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=QUICK)
    async with agent.connect() as session:
        reader = asyncio.create_task(_drain(session))
        track = await session.add_track(OutgoingAudioTrackOptions(), max_queued=30.0)
        await track.send_pcm(bytes(16000 * 2 * 20))  # 20 s, all queued at once
        assert track.queued_duration > 19.0
        playout = asyncio.create_task(track.wait_for_playout())
        fj.drop_agent(agent.id)
        await fj.wait_for(lambda: session.stats.reconnects == 1, TIMEOUT)
        assert track.queued_duration == 0.0
        async with asyncio.timeout(TIMEOUT):  # long before the 20 s it waited for
            await playout
        await track.send_pcm(bytes(16000 * 2))  # paced sends go on from empty
        assert 0.9 < track.queued_duration <= 1.0
        assert not reader.done()


async def test_a_waiting_request_image_fails_and_is_not_resent(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=QUICK)
    async with agent.connect() as session:
        reader = asyncio.create_task(_drain(session))
        request = asyncio.create_task(session.request_image("no-such-track", timeout=60.0))
        await fj.wait_requests(agent.id, 2, TIMEOUT)  # auth_request, capture_image
        fj.drop_agent(agent.id)
        with pytest.raises(AgentConnectionError) as info:
            async with asyncio.timeout(TIMEOUT):  # long before its own 60 s
                await request
        assert info.value.code == 1006 and "not re-sent" in str(info.value)
        await fj.wait_for(lambda: session.stats.reconnects == 1, TIMEOUT)
        record = fj.agent(agent.id)
        await fj.wait_connected(agent.id, TIMEOUT)
        assert record.connections[1].kinds() == ["auth_request"]  # no capture again
        # the session works: a new request is sent on the new connection
        with pytest.raises(TimeoutError):
            await session.request_image("no-such-track", timeout=0.05)
        assert record.connections[1].kinds() == ["auth_request", "capture_image"]
        assert not reader.done()


async def test_captures_while_reconnecting_fail_at_once(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=QUICK)
    async with agent.connect() as session:
        restart = asyncio.create_task(fj.restart(downtime=0.3))
        reader = asyncio.create_task(_drain(session))
        await fj.wait_for(lambda: session.state == "reconnecting", TIMEOUT)
        for call in (
            lambda: session.capture_image("t"),
            lambda: session.request_image("t", timeout=60.0),
        ):
            with pytest.raises(AgentConnectionError, match="reconnecting") as info:
                await call()
            assert info.value.code == 1006
        await restart
        await fj.wait_for(lambda: session.state == "connected", TIMEOUT)
        assert not reader.done()


async def test_track_added_or_removed_while_reconnecting(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=QUICK)
    async with agent.connect() as session:
        reader = asyncio.create_task(_drain(session))
        kept = await session.add_track(OutgoingAudioTrackOptions())
        gone = await session.add_track(OutgoingAudioTrackOptions(metadata={"n": 2}))
        restart = asyncio.create_task(fj.restart(downtime=0.3))
        await fj.wait_for(lambda: session.state == "reconnecting", TIMEOUT)
        await gone.remove()  # returns at once: the new connection never gets it
        assert gone.removed
        added = asyncio.create_task(session.add_track(OutgoingAudioTrackOptions(channels=2)))
        await restart
        async with asyncio.timeout(TIMEOUT):
            new = await added
        await new.send_chunk(bytes(4))
        await kept.send_chunk(bytes(2))
        record = fj.agent(agent.id)
        await fj.wait_for(lambda: record.connections[1].track_log[-1].kind == "track_data")
        log = [(e.kind, e.track_id) for e in record.connections[1].track_log]
        assert log[:2] == [("add_track", kept.id), ("add_track", new.id)]
        assert ("add_track", gone.id) not in log and ("remove_track", gone.id) not in log
        assert record.connections[1].data_without_track == 0
        assert not reader.done()


async def test_revoked_token_raises_auth_error_without_a_retry_storm(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=QUICK)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        reader = asyncio.create_task(_drain(session))
        fj.revoke_token(agent._token)
        dropped = time.monotonic()
        fj.drop_agent(agent.id)
        with pytest.raises(AgentAuthError) as info:
            async with asyncio.timeout(TIMEOUT):
                await reader
        assert time.monotonic() - dropped < QUICK.budget
        assert info.value.reason == "invalid token"
        assert session.state == "closed" and session.closed
        attempts = fj.agent(agent.id).auth_attempts
        assert [(a.accepted, a.reason) for a in attempts] == [(True, ""), (False, "invalid token")]
        assert session.stats.reconnect_attempts == 1 and session.stats.reconnects == 0
        with pytest.raises(AgentConnectionError):
            await track.send_chunk(bytes(2))
    await asyncio.sleep(0.3)  # and nothing tries again
    assert len(fj.agent(agent.id).auth_attempts) == 2


async def test_token_provider_supplies_a_fresh_token(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    asked: list[str] = []

    async def refresh() -> str:
        token = fj.refresh_token(agent.id)  # what the REST refresh_token returns
        asked.append(token)
        return token

    [agent] = await agents(fj, 1, reconnect=QUICK, token_provider=refresh)
    old = agent._token
    async with AsyncExitStack() as stack:
        app = await App(agent).start(stack)
        fj.revoke_token(old)
        fj.drop_agent(agent.id)
        await fj.wait_for(lambda: app.session.stats.reconnects == 1, TIMEOUT)
        [new] = asked
        attempts = [(a.token, a.accepted) for a in fj.agent(agent.id).auth_attempts]
        assert attempts == [(old, True), (old, False), (new, True)]
        fj.drop_agent(agent.id)  # the fresh token is the one used from now on
        await fj.wait_for(lambda: app.session.stats.reconnects == 2, TIMEOUT)
        attempts = [(a.token, a.accepted) for a in fj.agent(agent.id).auth_attempts]
        assert attempts[3:] == [(new, True)] and asked == [new]
        await app.stop()
    assert app.errors == []


async def test_token_provider_token_refused_too(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam

    async def bad_token() -> str:
        return "not-a-token"

    [agent] = await agents(fj, 1, reconnect=QUICK, token_provider=bad_token)
    async with agent.connect() as session:
        fj.revoke_token(agent._token)
        fj.drop_agent(agent.id)
        with pytest.raises(AgentAuthError, match="invalid token"):
            async with asyncio.timeout(TIMEOUT):
                await _drain(session)
    assert len(fj.state.auth_attempts) == 3  # accepted, revoked, the provider's


async def test_transient_refusal_is_retried(local_fishjam: LocalFishjam) -> None:
    """The server still holds the old connection ("peer already connected"): not an
    authentication failure, the next attempt may succeed."""
    fj = local_fishjam
    policy = ReconnectPolicy(budget=10.0, first_delay=0.05, max_delay=0.1, jitter=0.0)
    [agent] = await agents(fj, 1, reconnect=policy)
    async with agent.connect() as session:
        reader = asyncio.create_task(_drain(session))
        fj.drop_agent(agent.id)
        squatter = await RawAgent.connect(fj.agent_socket_url, agent._token)
        record = fj.agent(agent.id)
        await fj.wait_for(lambda: not record.auth_attempts[-1].accepted, TIMEOUT)
        assert record.auth_attempts[-1].reason == "peer already connected"
        await squatter.close()
        await fj.wait_for(lambda: session.stats.reconnects == 1, TIMEOUT)
        assert session.stats.reconnect_attempts >= 2 and not reader.done()


@pytest.mark.slow  # waits out the budget (1 s a case)
async def test_spent_budget_raises_connection_error_after_the_budget() -> None:
    policy = ReconnectPolicy(budget=1.0, first_delay=0.05, max_delay=0.2)
    fj = await LocalFishjam().start()
    try:
        [agent] = await agents(fj, 1, reconnect=policy)
        async with agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            reader = asyncio.create_task(_drain(session))
            sender = asyncio.create_task(_send_forever(track))
            await asyncio.sleep(0.05)
            stopped = time.monotonic()
            await fj.stop()  # for good: closes with 1001, then refuses connections
            for task in (reader, sender):
                with pytest.raises(AgentConnectionError) as info:
                    async with asyncio.timeout(policy.budget + TIMEOUT):
                        await task
                error = info.value
                assert "could not reconnect within 1 s" in str(error)
                assert "Connect call failed" in str(error) or "refused" in str(error)
            elapsed = time.monotonic() - stopped
            assert elapsed >= policy.budget  # not before the budget is spent
            assert session.state == "closed" and session.stats.reconnects == 0
            assert session.stats.reconnect_attempts > 2
    finally:
        await fj.stop()


@pytest.mark.slow  # waits for a reconnection in progress (1 s a case)
async def test_disconnect_while_reconnecting_returns_promptly_and_stops() -> None:
    fj = await LocalFishjam().start()
    try:
        [agent] = await agents(fj, 1)  # the default policy: 30 s budget
        async with agent.connect() as session:
            reader = asyncio.create_task(_drain(session))
            track = await session.add_track(OutgoingAudioTrackOptions())
            sender = asyncio.create_task(_send_forever(track))
            await fj.stop()
            await fj.wait_for(lambda: session.stats.reconnect_attempts >= 1, TIMEOUT)
            assert session.state == "reconnecting"
            started = time.monotonic()
            async with asyncio.timeout(TIMEOUT):
                await session.disconnect()
            took = time.monotonic() - started
            attempts = session.stats.reconnect_attempts
            assert session.state == "closed" and session.close_code == 1000
            async with asyncio.timeout(TIMEOUT):
                assert await reader == []  # ends cleanly, as after any disconnect()
            with pytest.raises(AgentConnectionError) as info:
                await sender
            assert info.value.code == 1000
            await asyncio.sleep(1.0)  # longer than the first delays of the backoff
            assert session.stats.reconnect_attempts == attempts
        assert took < 2.0  # sanity: the attempts were cancelled, not waited out
    finally:
        await fj.stop()


async def test_reconnect_off_and_bad_options(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    [agent] = await agents(fj, 1, reconnect=False)
    async with agent.connect() as session:
        fj.drop_agent(agent.id)
        with pytest.raises(AgentConnectionError) as info:
            async with asyncio.timeout(TIMEOUT):
                await _drain(session)
        assert info.value.code == 1006 and session.stats.reconnect_attempts == 0
    with pytest.raises(TypeError, match="reconnect must be True, False or a ReconnectPolicy"):
        Agent("a", "r", "t", fj.url, reconnect="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token_provider must be an async callable"):
        Agent("a", "r", "t", fj.url, token_provider="token")  # type: ignore[arg-type]


@pytest.mark.slow  # a server restart per case
async def test_restart_brings_every_agent_back(local_fishjam: LocalFishjam) -> None:
    """Local server restarted with its state kept (a deploy): every agent comes back."""
    fj = local_fishjam
    made = await agents(fj, 20, reconnect=QUICK)
    async with AsyncExitStack() as stack:
        apps = [await App(agent).start(stack) for agent in made]
        await fj.wait_for(lambda: all(app.sent for app in apps), TIMEOUT)
        await fj.restart(downtime=0.3)
        await fj.wait_for(lambda: all(app.session.stats.reconnects == 1 for app in apps), TIMEOUT)
        for agent, app in zip(made, apps, strict=True):
            record = fj.agent(agent.id)
            await fj.wait_for(lambda r=record, a=app: audio_flows(r, a), TIMEOUT)
            check_connections(record, app, agent._token)
        for app in apps:
            await app.stop()
    assert all(app.errors == [] for app in apps)


async def _drain(session: object) -> list[object]:
    return [m async for m in session.receive()]  # type: ignore[attr-defined]


async def _send_forever(track: object) -> None:
    while True:
        await track.send_chunk(bytes(640))  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
