"""What automatic-reconnect tests need from the local server: reconnecting with the same
token, re-added tracks, TCP drops of one or every agent, restarts that keep state,
revoked and refreshed tokens, and the records that count it all (real loopback)."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from fishjam import FishjamClient

from fishjam_fast.local import LocalFishjam, TrackEvent
from tests.raw_agent import TIMEOUT, RawAgent

CHUNK = bytes(640)  # 20 ms at 16 kHz mono


async def _room_with_agents(fj: LocalFishjam, n: int) -> tuple[str, list[tuple[str, str]]]:
    room = await fj.create_room()
    peers = [await fj.add_agent(room) for _ in range(n)]
    return room, [(p.id, p.token) for p in peers]


def _abnormal(exc: websockets.ConnectionClosed) -> bool:
    """Ended without a close frame from the server (the client reports 1006)."""
    return exc.rcvd is None


async def test_reconnect_with_same_token_replaces_tracks(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, [(peer_id, token)] = await _room_with_agents(fj, 1)
    first = await RawAgent.connect(fj.agent_socket_url, token)
    await first.add_track("t1", sample_rate=24000, channels=2)
    await first.send("t1", bytes(96000))  # one second held by the server
    old = await fj.wait_track(peer_id, 0, TIMEOUT)
    await fj.wait_bytes(old, 96000, TIMEOUT)

    fj.drop_agent(peer_id)
    assert fj.connection(peer_id) is None  # detached at once: may reconnect right away
    assert old.ended and not old.removed and old.bytes_queued == 0 and old.bytes_dropped > 0
    assert _abnormal(await first.wait_closed())

    second = await RawAgent.connect(fj.agent_socket_url, token)  # no delay needed
    await second.send("t1", CHUNK)  # data before the track is back: not played
    await second.add_track("t1", sample_rate=24000, channels=2)
    await second.send("t1", CHUNK)
    record = fj.agent(peer_id)
    new = await fj.wait_for(lambda: record.tracks["t1"] is not old and record.tracks["t1"])
    await fj.wait_bytes(new, 640, TIMEOUT)
    assert new.connection_index == 1 and not new.ended and new.total_bytes == 640
    assert (new.sample_rate, new.channels) == (24000, 2)
    assert record.track(0) is new and record.track_history == [old, new]
    assert record.recordings("t1") == [old, new]
    assert old.total_bytes == 96000 + 640  # the early chunk reached the ended recording
    assert [a.token for a in record.auth_attempts] == [token, token]
    assert all(a.accepted and a.reason == "" for a in record.auth_attempts)
    assert [c.token for c in record.connections] == [token, token]
    log = record.connections[1].track_log
    assert [(e.kind, e.track_id) for e in log] == [("add_track", "t1"), ("track_data", "t1")]
    assert log[0] == TrackEvent(2, "add_track", "t1")  # auth 0, early data 1, add 2
    assert record.connections[1].data_without_track == 1
    assert record.connections[0].data_without_track == 0
    await second.close()


async def test_track_log_without_request_recording() -> None:
    async with LocalFishjam(record_requests=False, record_chunks=False) as fj:
        _, [(peer_id, token)] = await _room_with_agents(fj, 1)
        agent = await RawAgent.connect(fj.agent_socket_url, token)
        await agent.add_track("a")
        await agent.add_track("b")
        for _ in range(3):
            await agent.send("b", CHUNK)
            await agent.send("a", CHUNK)
        rec = fj.agent(peer_id)
        await fj.wait_requests(peer_id, 9, TIMEOUT)
        assert rec.requests == []
        assert rec.connections[0].track_log == [
            TrackEvent(1, "add_track", "a"),
            TrackEvent(2, "add_track", "b"),
            TrackEvent(3, "track_data", "b"),
            TrackEvent(4, "track_data", "a"),
        ]
        await agent.close()


async def test_a_live_connection_blocks_a_second_one(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, [(peer_id, token)] = await _room_with_agents(fj, 1)
    agent = await RawAgent.connect(fj.agent_socket_url, token)
    assert await RawAgent.refused(fj.agent_socket_url, token) == (1000, "peer already connected")
    attempts = fj.agent(peer_id).auth_attempts
    assert [(a.accepted, a.reason) for a in attempts] == [
        (True, ""),
        (False, "peer already connected"),
    ]
    await agent.close()


async def test_drop_all_agents(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, peers = await _room_with_agents(fj, 5)
    agents = [await RawAgent.connect(fj.agent_socket_url, token) for _, token in peers]
    silent = await websockets.connect(fj.agent_socket_url)  # never authenticates
    await fj.wait_for(lambda: fj.sockets.open_count == 6, TIMEOUT)
    assert fj.drop_all_agents() == 6
    for agent in agents:
        assert _abnormal(await agent.wait_closed())
    assert _abnormal(await RawAgent(silent).wait_closed())
    assert all(fj.connection(peer_id) is None for peer_id, _ in peers)
    again = [await RawAgent.connect(fj.agent_socket_url, token) for _, token in peers]
    assert all(len(fj.agent(peer_id).connections) == 2 for peer_id, _ in peers)
    for agent in again:
        await agent.close()
    await fj.wait_for(lambda: fj.sockets.open_count == 0, TIMEOUT)
    assert fj.drop_all_agents() == 0


async def test_restart_keeps_rooms_peers_and_tokens(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, peers = await _room_with_agents(fj, 3)
    speaker = await fj.add_speaking_peer(room, loop=True, realtime=True)
    agents = [await RawAgent.connect(fj.agent_socket_url, token) for _, token in peers]
    port, url = fj.port, fj.url

    restart = asyncio.create_task(fj.restart(downtime=0.3))
    for agent in agents:
        assert _abnormal(await agent.wait_closed())
    await fj.wait_for(lambda: not fj.listening, TIMEOUT)
    with pytest.raises(OSError):  # refused while it is down
        await RawAgent.connect(fj.agent_socket_url, peers[0][1])
    await asyncio.wait_for(restart, TIMEOUT)
    assert (fj.port, fj.url, fj.restarts, fj.running, fj.listening) == (port, url, 1, True, True)

    again = [await RawAgent.connect(fj.agent_socket_url, token) for _, token in peers]
    for agent in again:  # the speaking peer kept speaking through the restart
        assert len(await asyncio.wait_for(agent.ws.recv(), TIMEOUT)) > 640
    client = FishjamClient(fj.url, fj.management_token)
    listed = await asyncio.to_thread(client.get_room, room)
    assert {p.id for p in listed.peers} == {p for p, _ in peers} | {speaker.peer_id}
    for peer_id, token in peers:
        assert [a.token for a in fj.agent(peer_id).auth_attempts] == [token, token]
    for agent in again:
        await agent.close()


async def test_restart_refuses_bad_use() -> None:
    fj = LocalFishjam()
    with pytest.raises(RuntimeError, match="not running"):
        await fj.restart()
    async with fj:
        with pytest.raises(ValueError, match="downtime"):
            await fj.restart(-1.0)
        with pytest.raises(ValueError, match="downtime"):
            fj.restart_soon(-1.0)
        assert fj.restart_soon() == 1
        await fj.wait_for(lambda: fj.restarts == 1, TIMEOUT)
    assert not fj.running and not fj.listening


async def test_revoked_token_is_refused_and_refresh_gives_a_new_one(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    room, [(peer_id, token)] = await _room_with_agents(fj, 1)
    agent = await RawAgent.connect(fj.agent_socket_url, token)
    assert fj.revoke_token(token) == peer_id
    await agent.add_track("t")  # the live connection stays
    await agent.send("t", CHUNK)
    await fj.wait_bytes(await fj.wait_track(peer_id, 0, TIMEOUT), 640, TIMEOUT)
    fj.drop_agent(peer_id)
    assert await RawAgent.refused(fj.agent_socket_url, token) == (1000, "invalid token")
    assert fj.agent(peer_id).auth_attempts[-1][1:4] == (token, False, "invalid token")
    with pytest.raises(KeyError):
        fj.revoke_token("never-issued")

    client = FishjamClient(fj.url, fj.management_token)  # the REST route, plain SDK
    fresh = await asyncio.to_thread(client.refresh_peer_token, room, peer_id)
    assert fresh not in (token, "")
    again = await RawAgent.connect(fj.agent_socket_url, fresh)
    await again.close()
    await fj.wait_disconnected(peer_id, TIMEOUT)
    newest = fj.refresh_token(peer_id)
    assert newest == fj.peer(peer_id).token and newest != fresh
    (await RawAgent.connect(fj.agent_socket_url, fresh)).ws.transport.abort()  # still valid
    attempts = fj.agent(peer_id).auth_attempts
    assert [(a.token, a.accepted) for a in attempts] == [
        (token, True),
        (token, False),
        (fresh, True),
        (fresh, True),
    ]
    unknown = await RawAgent.refused(fj.agent_socket_url, "never-issued")
    assert unknown == (1000, "invalid token")
    assert fj.state.auth_attempts[-1].peer_id is None
