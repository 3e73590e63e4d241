"""Fault injection on the local server, as the plain SDK's Agent experiences it."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets
from fishjam.agent import Agent, AgentSession, OutgoingAudioTrackOptions
from fishjam.events._protos.fishjam import AgentResponseTrackData

from fishjam_fast._proto import agent_pb2, notifications_pb2
from fishjam_fast.local import LocalFishjam

TIMEOUT = 5.0


async def _agent(fj: LocalFishjam) -> tuple[str, Agent]:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    return room, Agent(peer.id, room, peer.token, fj.url)


async def _drain(session: AgentSession) -> None:
    async with asyncio.timeout(TIMEOUT):
        async for _ in session.receive():
            pass


async def test_kick_ends_receive_with_peer_removed(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    async with agent.connect() as session:
        await fj.kick(agent.id)
        with pytest.raises(websockets.ConnectionClosedOK):
            await _drain(session)
        assert (session._ws.close_code, session._ws.close_reason) == (1000, "Peer removed")
    assert agent.id not in fj.rooms[room].peers
    assert fj.agent(agent.id).connections[0].close_reason == "Peer removed"


async def test_delete_room_closes_with_room_stopped(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    async with agent.connect() as session:
        await fj.add_speaking_peer(room, loop=True)  # stops with its room
        await fj.delete_room(room)
        with pytest.raises(websockets.ConnectionClosedOK):
            await _drain(session)
        assert session._ws.close_reason == "Room stopped"


async def test_close_1011_then_reconnect(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        await fj.close_agent(agent.id, 1011, "boom")
        with pytest.raises(websockets.ConnectionClosedError):
            await _drain(session)
        assert (session._ws.close_code, session._ws.close_reason) == (1011, "boom")
    async with agent.connect():  # the peer is kept
        await fj.wait_connected(agent.id, TIMEOUT)


async def test_tcp_drop_is_1006(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    with pytest.raises(websockets.ConnectionClosedError) as info:
        async with agent.connect() as session:
            fj.drop_agent(agent.id)
            await _drain(session)
    assert info.value.rcvd is None and info.value.sent is None  # no close frame: 1006
    assert session._ws.close_code == 1006


@pytest.mark.slow  # waits out a stall
async def test_stall_blocks_client_sends(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    chunk = bytes(128 * 1024)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        rec = await fj.wait_track(agent.id, 0, TIMEOUT)
        fj.stall_agent(agent.id, 1.5)
        stall_start = time.monotonic()
        sent, blocked = 0, False
        while sent < 256 * len(chunk):  # bound: 32 MiB
            try:
                await asyncio.wait_for(track.send_chunk(chunk), 0.3)
            except TimeoutError:
                blocked = True
                break
            sent += 1
        assert blocked, f"sent {sent} chunks without blocking"
        assert time.monotonic() - stall_start < 1.5
        received_during_stall = rec.total_bytes
        # after the stall the server reads again and the client's sends go through
        await asyncio.wait_for(track.send_chunk(chunk), TIMEOUT)
        assert time.monotonic() - stall_start >= 1.4
        await fj.wait_for(lambda: rec.total_bytes > received_during_stall, TIMEOUT)


async def test_send_raw_frames(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    frame = agent_pb2.AgentResponse(
        track_data=agent_pb2.AgentResponse.TrackData(
            peer_id="p", track=notifications_pb2.Track(id="t", type=2), data=b"\x01\x02"
        )
    ).SerializeToString()
    async with agent.connect() as session:
        await fj.send_raw(agent.id, frame)
        await fj.send_raw(agent.id, b"\xff\xff\xff")  # not a protobuf message
        messages = session.receive()
        got = await asyncio.wait_for(anext(messages), TIMEOUT)
        assert isinstance(got, AgentResponseTrackData) and got.data == b"\x01\x02"
        with pytest.raises(IndexError):  # what the plain SDK's betterproto parser raises
            await asyncio.wait_for(anext(messages), TIMEOUT)


async def test_flood(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        flood = asyncio.create_task(fj.flood_agent(agent.id, 3000))
        n = 0
        async with asyncio.timeout(TIMEOUT):
            async for msg in session.receive():
                assert isinstance(msg, AgentResponseTrackData) and len(msg.data) == 640
                n += 1
                if n == 3000:
                    break
        assert await flood == 3000


async def test_heartbeat_pings() -> None:
    async with LocalFishjam(heartbeat=0.2) as fj:
        _, agent = await _agent(fj)
        async with agent.connect() as session:
            await asyncio.sleep(0.8)  # the client answers the pings: still connected
            assert fj.connection(agent.id) is not None
            fj.stall_agent(agent.id, 3.0)  # pongs go unread: the heartbeat gives up
            with pytest.raises(websockets.ConnectionClosed):
                await _drain(session)
