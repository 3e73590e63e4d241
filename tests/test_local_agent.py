"""The local server's agent socket, judged by the plain SDK's Agent: auth, traffic, playout."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib

import pytest
import websockets
from fishjam.agent import Agent, AgentAuthError, OutgoingAudioTrackOptions
from fishjam.events._protos.fishjam import AgentResponseTrackData, AgentResponseTrackImage

from fishjam_fast._proto import agent_pb2, notifications_pb2
from fishjam_fast.local import AudioSource, LocalFishjam

TIMEOUT = 5.0


async def _agent(fj: LocalFishjam, rate: int = 16000) -> tuple[str, Agent]:
    room = await fj.create_room()
    peer = await fj.add_agent(room, sample_rate=rate)
    return room, Agent(peer.id, room, peer.token, fj.url)


async def test_connect_shows_connected_and_reconnects(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    for _ in range(2):  # an agent may reconnect with its token after disconnecting
        async with agent.connect():
            assert fj.rooms[room].to_json()["peers"][0]["status"] == "connected"
        await fj.wait_disconnected(agent.id, TIMEOUT)
        assert fj.rooms[room].to_json()["peers"][0]["status"] == "disconnected"
    assert [c.authenticated for c in fj.agent(agent.id).connections] == [True, True]


async def test_refusals(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)

    async def reason(a: Agent) -> str:
        with pytest.raises(AgentAuthError) as info:
            async with a.connect():
                pass
        return str(info.value.reason)

    assert await reason(Agent(agent.id, room, "bogus", fj.url)) == "invalid token"
    assert await reason(Agent(agent.id, room, "", fj.url)) == "missing token"
    async with agent.connect():
        assert await reason(agent) == "peer already connected"
    other = await fj.add_agent(room)
    await fj.remove_peer(room, other.id)
    assert await reason(Agent(other.id, room, other.token, fj.url)) == "peer not found"
    await fj.delete_room(room)
    assert await reason(agent) == "room not found"


async def test_first_message_must_be_auth(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    async with websockets.connect(fj.agent_socket_url) as ws:
        req = agent_pb2.AgentRequest(interrupt_track=agent_pb2.AgentRequest.InterruptTrack())
        await ws.send(req.SerializeToString())
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert (ws.close_code, ws.close_reason) == (1000, "unauthenticated")


async def test_malformed_frames_close_1011(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        await session._ws.send(b"\xff\xff\xff")  # not a protobuf message
        with pytest.raises(websockets.ConnectionClosedError):
            async for _ in session.receive():
                pass
        assert (session._ws.close_code, session._ws.close_reason) == (1011, "invalid message")
    async with websockets.connect(fj.agent_socket_url) as ws:
        await ws.send("text")
        with pytest.raises(websockets.ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert (ws.close_code, ws.close_reason) == (1003, "unsupported data")


async def test_records_exact_wire_traffic(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    chunks = [bytes([i]) * 640 for i in range(3)]
    async with agent.connect() as session:
        track = await session.add_track(
            OutgoingAudioTrackOptions(sample_rate=24000, metadata={"k": "v"})
        )
        none_track = await session.add_track(OutgoingAudioTrackOptions())
        for c in chunks:
            await track.send_chunk(c)
        await track.interrupt()
        await session.capture_image("no-such-track")  # ignored: no reply
        await fj.wait_requests(agent.id, 8, TIMEOUT)
    want = [
        agent_pb2.AgentRequest(auth_request=agent_pb2.AgentRequest.AuthRequest(token=agent._token)),
        agent_pb2.AgentRequest(
            add_track=agent_pb2.AgentRequest.AddTrack(
                track=notifications_pb2.Track(
                    id=track.id, type=notifications_pb2.TRACK_TYPE_AUDIO, metadata='{"k": "v"}'
                ),
                codec_params=agent_pb2.AgentRequest.AddTrack.CodecParameters(
                    sample_rate=24000, channels=1
                ),
            )
        ),
        agent_pb2.AgentRequest(
            add_track=agent_pb2.AgentRequest.AddTrack(
                track=notifications_pb2.Track(
                    id=none_track.id, type=notifications_pb2.TRACK_TYPE_AUDIO, metadata="null"
                ),
                codec_params=agent_pb2.AgentRequest.AddTrack.CodecParameters(
                    sample_rate=16000, channels=1
                ),
            )
        ),
        *(
            agent_pb2.AgentRequest(
                track_data=agent_pb2.AgentRequest.TrackData(track_id=track.id, data=c)
            )
            for c in chunks
        ),
        agent_pb2.AgentRequest(
            interrupt_track=agent_pb2.AgentRequest.InterruptTrack(track_id=track.id)
        ),
        agent_pb2.AgentRequest(
            capture_image=agent_pb2.AgentRequest.CaptureImage(track_id="no-such-track")
        ),
    ]
    rec = fj.agent(agent.id)
    assert rec.requests == want
    assert rec.connections[0].images_sent == 0
    t = rec.tracks[track.id]
    assert (t.sample_rate, t.channels, t.encoding, t.metadata_json) == (24000, 1, 0, {"k": "v"})
    assert t.chunks == chunks and t.total_bytes == 1920 and t.interrupt_count == 1
    assert rec.tracks[none_track.id].metadata_json is None
    assert t.ended and not t.removed  # the connection closed


async def test_playout_and_interrupt(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    audio = bytes(range(256)) * 125  # 32000 bytes: one second at 16 kHz mono
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        for i in range(0, len(audio), 640):
            await track.send_chunk(audio[i : i + 640])
        rec = await fj.wait_track(agent.id, 0, TIMEOUT)
        await fj.wait_bytes(rec, len(audio), TIMEOUT)
        started = time.monotonic()
        await asyncio.sleep(0.3)
        await track.interrupt()
        await fj.wait_for(lambda: rec.interrupt_count, TIMEOUT)
        elapsed = time.monotonic() - started
        played, dropped = rec.bytes_played, rec.bytes_dropped
        assert played + dropped == len(audio) and rec.bytes_queued == 0
        assert 0.25 * 32000 <= played <= (elapsed + 0.4) * 32000
        assert bytes(rec.played_audio) == audio[:played]
        # audio after an interrupt plays normally
        await track.send_chunk(audio[:3200])
        await fj.wait_bytes(rec, len(audio) + 3200, TIMEOUT)
        assert 0 < rec.seconds_until_played() <= 0.1
        await fj.wait_for(lambda: rec.bytes_played == played + 3200, TIMEOUT)
        # remove_track (the plain SDK has no call for it: raw frame)
        remove = agent_pb2.AgentRequest(
            remove_track=agent_pb2.AgentRequest.RemoveTrack(track_id=track.id)
        )
        await session._ws.send(remove.SerializeToString())
        await fj.wait_for(lambda: rec.removed, TIMEOUT)


async def test_speaking_peer_rate_and_format(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj, rate=24000)
    async with agent.connect() as session:
        await fj.wait_connected(agent.id, TIMEOUT)
        speaker = await fj.add_speaking_peer(
            room, AudioSource.tone(440.0, 0.5), metadata={"who": "bob"}
        )
        got: list[AgentResponseTrackData] = []
        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT):
            async for msg in session.receive():
                assert isinstance(msg, AgentResponseTrackData)
                got.append(msg)
                if len(got) == 25:
                    break
        elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 2.0  # 25 chunks of 20 ms, paced in real time
    assert all(len(m.data) == 960 for m in got)  # 20 ms at 24 kHz, PCM16 mono
    assert {m.peer_id for m in got} == {speaker.peer_id}
    assert got[0].track.id == speaker.track_id and got[0].track.type == 2
    assert json.loads(got[0].track.metadata) == {"who": "bob"}
    want = AudioSource.tone(440.0, 0.5).render(24000)[: 25 * 480]
    assert b"".join(m.data for m in got) == want.astype("<i2").tobytes()
    await speaker.wait_done(TIMEOUT)
    assert speaker.chunks_sent == 25


async def test_speaking_peer_fast_mode_count_and_16k(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj, rate=16000)
    async with agent.connect() as session:
        await fj.wait_connected(agent.id, TIMEOUT)
        speaker = await fj.add_speaking_peer(
            room, AudioSource.noise(0.1), realtime=False, loop=True, chunks=500
        )
        n = 0
        async with asyncio.timeout(TIMEOUT):
            async for msg in session.receive():
                assert isinstance(msg, AgentResponseTrackData) and len(msg.data) == 640
                n += 1
                if n == 500:
                    break
        await speaker.wait_done(TIMEOUT)
    assert speaker.frames_delivered == 500


async def test_capture_image_returns_png(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    video = await fj.add_video_peer(room, width=16, height=8)
    jpeg = await fj.add_video_peer(room, image=b"\xff\xd8\xff\xe0fake\xff\xd9")
    async with agent.connect() as session:
        await session.capture_image(video.id)
        await session.capture_image(jpeg.id)
        images: list[AgentResponseTrackImage] = []
        async with asyncio.timeout(TIMEOUT):
            async for msg in session.receive():
                assert isinstance(msg, AgentResponseTrackImage)
                images.append(msg)
                if len(images) == 2:
                    break
    png = images[0]
    assert (png.track_id, png.content_type) == (video.id, "image/png")
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png.data[16:24])
    assert (width, height) == (16, 8)
    idat_len = struct.unpack(">I", png.data[33:37])[0]
    assert len(zlib.decompress(png.data[41 : 41 + idat_len])) == 8 * (1 + 16 * 3)
    assert (images[1].content_type, images[1].data) == ("image/jpeg", jpeg.image)


async def test_counts_only_recording() -> None:
    async with LocalFishjam(record_chunks=False, record_requests=False) as fj:
        _, agent = await _agent(fj)
        async with agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            for _ in range(10):
                await track.send_chunk(bytes(640))
            await fj.wait_requests(agent.id, 12, TIMEOUT)
        rec = fj.agent(agent.id)
        assert rec.requests == [] and rec.connections[0].request_count == 12
        t = rec.track()
        assert t.chunks == [] and (t.chunk_count, t.total_bytes) == (10, 6400)
        assert t.played_audio == bytearray()
