"""fishjam_fast's Agent and AgentSession over loopback against the local Fishjam server:
authentication, receive(), the end of a session, malformed frames, bad input, tracks,
stats and the transport."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import numpy as np
import pytest
from fishjam.agent import Agent as PlainAgent
from fishjam.agent import AgentAuthError as PlainAgentAuthError

from fishjam_fast import (
    Agent,
    AgentAuthError,
    AgentConnectionError,
    AgentError,
    AgentSession,
    IncomingTrackData,
    OutgoingAudioTrackOptions,
    OutgoingTrack,
    TrackEncoding,
    TrackType,
)
from fishjam_fast._proto import agent_pb2, notifications_pb2
from fishjam_fast.local import LocalFishjam
from fishjam_fast.local.peers import chunks_of

TIMEOUT = 5.0


async def _agent(fj: LocalFishjam, rate: int = 16000) -> tuple[str, Agent]:
    room = await fj.create_room()
    peer = await fj.add_agent(room, sample_rate=rate)
    return room, Agent(peer.id, room, peer.token, fj.url)


async def _drain(session: AgentSession) -> list[Any]:
    got = []
    async with asyncio.timeout(TIMEOUT):
        async for message in session.receive():
            got.append(message)
    return got


def _track_data(data: bytes, peer_id: str = "p", track_id: str = "t") -> bytes:
    return agent_pb2.AgentResponse(
        track_data=agent_pb2.AgentResponse.TrackData(
            peer_id=peer_id,
            track=notifications_pb2.Track(
                id=track_id, type=notifications_pb2.TRACK_TYPE_AUDIO, metadata="null"
            ),
            data=data,
        )
    ).SerializeToString()


async def _marker(fj: LocalFishjam, session: AgentSession) -> list[str]:
    """Sends a capture_image marker, waits for it, returns the kinds the server recorded."""
    await session.capture_image("marker")
    rec = fj.agent(session.agent.id)
    await fj.wait_for(lambda: rec.requests and rec.requests[-1].HasField("capture_image"))
    return rec.connections[-1].kinds()


# -- connecting -----------------------------------------------------------------------


async def test_connect_authenticates_and_closes(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    async with agent.connect() as session:
        assert isinstance(session, AgentSession) and session.agent is agent
        assert not session.closed and session.close_code is None and session.close_reason == ""
        await fj.wait_connected(agent.id, TIMEOUT)
        assert fj.rooms[room].to_json()["peers"][0]["status"] == "connected"
    record = await fj.wait_disconnected(agent.id, TIMEOUT)
    assert record.authenticated and record.kinds() == ["auth_request"]
    assert record.requests[0].auth_request.token == agent._token
    # the session ended with its block: sending raises our error, receive() just ends
    assert session.closed and session.close_code == 1000
    with pytest.raises(AgentConnectionError) as info:
        await session.add_track(OutgoingAudioTrackOptions())
    assert info.value.code == 1000
    assert await _drain(session) == []
    async with agent.connect():  # the same agent reconnects with its token
        await fj.wait_connected(agent.id, TIMEOUT)


@pytest.mark.parametrize(
    "case", ["invalid token", "missing token", "peer already connected", "peer not found"]
)
async def test_refused_token_raises_auth_error_like_the_plain_sdk(
    local_fishjam: LocalFishjam, case: str
) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    token = {"invalid token": "bogus", "missing token": ""}.get(case, agent._token)
    if case == "peer not found":
        await fj.remove_peer(room, agent.id)
    errors: list[BaseException] = []
    for cls, error in ((Agent, AgentAuthError), (PlainAgent, PlainAgentAuthError)):
        refused = cls(agent.id, room, token, fj.url)
        if case == "peer already connected":
            async with agent.connect():
                with pytest.raises(error) as info:
                    async with refused.connect():
                        pass
        else:
            with pytest.raises(error) as info:
                async with refused.connect():
                    pass
        errors.append(info.value)
    ours, theirs = errors
    assert ours.reason == theirs.reason == case  # type: ignore[attr-defined]
    assert str(ours) == str(theirs) == f"agent failed to authenticate: {case}"
    assert isinstance(ours, AgentError)


async def test_unreachable_server_raises_connection_error() -> None:
    async with LocalFishjam() as fj:
        _, agent = await _agent(fj)
    with pytest.raises(AgentConnectionError) as info:  # the server is gone
        async with agent.connect():
            pass
    assert info.value.code == 1006


# -- receiving ------------------------------------------------------------------------


async def test_receive_yields_a_speaking_peers_audio(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj, rate=24000)
    async with agent.connect() as session:
        await fj.wait_connected(agent.id, TIMEOUT)
        speaker = await fj.add_speaking_peer(room, realtime=False, chunks=5, metadata={"n": 1})
        got: list[IncomingTrackData] = []
        async with asyncio.timeout(TIMEOUT):
            async for message in session.receive():
                assert isinstance(message, IncomingTrackData)
                got.append(message)
                if len(got) == 5:
                    break
    want = chunks_of(speaker.source.render(24000), 24000, wrap=False)[:5]
    assert [m.data for m in got] == want and len(want[0]) == 960
    first = got[0]
    assert first.peer_id == speaker.peer_id and first.track.id == speaker.track_id
    assert first.track.type is TrackType.TRACK_TYPE_AUDIO
    assert json.loads(first.track.metadata) == {"n": 1}


@pytest.mark.parametrize(
    ("how", "reason"), [("kick", "Peer removed"), ("delete_room", "Room stopped")]
)
async def test_normal_close_ends_receive_cleanly(
    local_fishjam: LocalFishjam, how: str, reason: str
) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    async with agent.connect() as session:
        await fj.send_raw(agent.id, _track_data(b"\x01\x02"))
        if how == "kick":
            await fj.kick(agent.id)
        else:
            await fj.delete_room(room)
        got = await _drain(session)  # ends without raising
        assert [m.data for m in got] == [b"\x01\x02"]
        assert session.closed and (session.close_code, session.close_reason) == (1000, reason)
        assert await _drain(session) == []  # and again
        with pytest.raises(AgentConnectionError) as info:
            await session.capture_image("x")
        assert (info.value.code, info.value.reason) == (1000, reason)
        assert reason in str(info.value)


@pytest.mark.parametrize("how", ["close_1011", "tcp_drop"])
async def test_abnormal_close_raises_connection_error_without_reconnect(
    local_fishjam: LocalFishjam, how: str
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    agent = Agent(agent.id, agent.room_id, agent._token, fj.url, reconnect=False)
    async with agent.connect() as session:
        if how == "close_1011":
            await fj.close_agent(agent.id, 1011, "boom")
            want = (1011, "boom")
        else:
            fj.drop_agent(agent.id)
            want = (1006, "")
        with pytest.raises(AgentConnectionError) as info:
            await _drain(session)
        assert (info.value.code, info.value.reason) == want
        assert (session.close_code, session.close_reason) == want and session.closed
        with pytest.raises(AgentConnectionError):  # not a websockets exception
            await session.capture_image("x")


async def test_disconnect_ends_a_concurrent_receive(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        reader = asyncio.create_task(_drain(session))
        await asyncio.sleep(0.05)
        await session.disconnect()
        assert await reader == []
        assert session.closed and session.close_code == 1000
        for call in (
            lambda: track.send_chunk(b"\0\0"),
            track.interrupt,
            lambda: session.add_track(OutgoingAudioTrackOptions()),
            lambda: session.capture_image("x"),
            lambda: session.remove_track(track),
        ):
            with pytest.raises(AgentConnectionError):
                await call()
    await fj.wait_disconnected(agent.id, TIMEOUT)


# -- malformed frames -----------------------------------------------------------------

GOOD = _track_data(b"ok")
MALFORMED = {
    "invalid-utf8-peer-id": GOOD.replace(b"\x0a\x01p", b"\x0a\x01\xff"),
    "invalid-utf8-content-type": agent_pb2.AgentResponse(
        track_image=agent_pb2.AgentResponse.TrackImage(track_id="t", content_type="ab", data=b"")
    )
    .SerializeToString()
    .replace(b"ab", b"\xc3\x28"),
    "truncated": GOOD[:-1],
    "bad-length": b"\x12\x7f\x0a",
    "garbage": b"\xff\xff\xff",
    "bad-wire-type": b"\x17",
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_frame_is_skipped_counted_and_logged(
    local_fishjam: LocalFishjam, caplog: pytest.LogCaptureFixture, frame: bytes
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    caplog.set_level(logging.WARNING, logger="fishjam_fast")
    async with agent.connect() as session:
        await fj.send_raw(agent.id, frame)
        await fj.send_raw(agent.id, GOOD)
        messages = session.receive()
        got = await asyncio.wait_for(anext(messages), TIMEOUT)
        assert isinstance(got, IncomingTrackData) and got.data == b"ok"
        assert session.stats.frames_skipped == 1 and not session.closed
        await fj.send_raw(agent.id, GOOD)  # the session goes on
        assert (await asyncio.wait_for(anext(messages), TIMEOUT)).data == b"ok"
        await messages.aclose()
    warnings = [r for r in caplog.records if r.name == "fishjam_fast"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "malformed" in warnings[0].getMessage()


async def test_unknown_and_repeated_answers_are_ignored_silently(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    authenticated = agent_pb2.AgentResponse(
        authenticated=agent_pb2.AgentResponse.Authenticated()
    ).SerializeToString()
    async with agent.connect() as session:
        await fj.send_raw(agent.id, b"\x4a\x00")  # field 9: a kind a newer server may add
        await fj.send_raw(agent.id, authenticated)
        await fj.send_raw(agent.id, b"")  # an empty AgentResponse
        await fj.send_raw(agent.id, GOOD)
        got = await asyncio.wait_for(anext(session.receive()), TIMEOUT)
        assert got.data == b"ok"
        assert session.stats.frames_skipped == 0 and session.stats.messages_received == 5


# -- bad input is refused before anything is sent ----------------------------------------


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (OutgoingAudioTrackOptions(sample_rate=44100), ValueError),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(sample_rate=8000), ValueError),  # type: ignore[arg-type]
        (
            OutgoingAudioTrackOptions(
                encoding=TrackEncoding.TRACK_ENCODING_PCM16,
                sample_rate=48000,  # type: ignore[arg-type]
            ),
            ValueError,
        ),
        (OutgoingAudioTrackOptions(channels=3), ValueError),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(channels=0), ValueError),  # type: ignore[arg-type]
        (OutgoingAudioTrackOptions(metadata={"x": object()}), TypeError),
        (OutgoingAudioTrackOptions(metadata={"x": {1, 2}}), TypeError),
        (OutgoingAudioTrackOptions(metadata={"x": float("nan")}), ValueError),  # not JSON
        (OutgoingAudioTrackOptions(metadata={"x": [1.5, None]}), None),
        (OutgoingAudioTrackOptions(encoding=7), ValueError),  # type: ignore[arg-type]
    ],
    ids=lambda v: repr(v)[:60] if not isinstance(v, type) else v.__name__,
)
async def test_bad_track_options_send_nothing(
    local_fishjam: LocalFishjam, options: OutgoingAudioTrackOptions, error: type[Exception] | None
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        if error is None:
            await session.add_track(options)
            assert await _marker(fj, session) == ["auth_request", "add_track", "capture_image"]
            return
        with pytest.raises(error):
            await session.add_track(options)
        assert await _marker(fj, session) == ["auth_request", "capture_image"]
        assert session.stats.messages_sent == 2


@pytest.mark.parametrize(
    ("channels", "data", "error"),
    [
        (1, "not bytes", TypeError),
        (1, 640, TypeError),
        (1, None, TypeError),
        (1, [0, 0], TypeError),
        (1, b"\0" * 641, ValueError),
        (2, b"\0" * 642, ValueError),
        (2, bytearray(2), ValueError),
    ],
)
async def test_bad_chunks_send_nothing(
    local_fishjam: LocalFishjam, channels: int, data: Any, error: type[Exception]
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions(channels=channels))  # type: ignore[arg-type]
        with pytest.raises(error, match=r"bytes|multiple"):
            await track.send_chunk(data)
        assert await _marker(fj, session) == ["auth_request", "add_track", "capture_image"]


async def test_bytes_like_chunks_and_other_encodings_are_accepted(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    samples = np.arange(4, dtype="<i2")
    async with agent.connect() as session:
        stereo = await session.add_track(OutgoingAudioTrackOptions(sample_rate=24000, channels=2))
        opus = await session.add_track(
            OutgoingAudioTrackOptions(encoding=TrackEncoding.TRACK_ENCODING_OPUS, sample_rate=48000)  # type: ignore[arg-type]
        )
        for data in (b"\1" * 8, bytearray(b"\2" * 8), memoryview(b"\3" * 12)[4:], samples):
            await stereo.send_chunk(data)
        await opus.send_chunk(b"\x01\x02\x03")  # Opus packets have any length
        await fj.wait_requests(agent.id, 8, TIMEOUT)
    rec = fj.agent(agent.id)
    assert rec.tracks[stereo.id].chunks == [b"\1" * 8, b"\2" * 8, b"\3" * 8, samples.tobytes()]
    opus_rec = rec.tracks[opus.id]
    assert (opus_rec.encoding, opus_rec.sample_rate, opus_rec.chunks) == (2, 48000, [b"\1\2\3"])


# -- tracks -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["session", "track", "id"])
async def test_remove_track(local_fishjam: LocalFishjam, how: str) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        await track.send_chunk(b"\0" * 640)
        if how == "session":
            await session.remove_track(track)
        elif how == "track":
            await track.remove()
        else:
            await session.remove_track(track.id)
        await fj.wait_requests(agent.id, 4, TIMEOUT)
        rec = fj.agent(agent.id)
        assert rec.requests[-1] == agent_pb2.AgentRequest(
            remove_track=agent_pb2.AgentRequest.RemoveTrack(track_id=track.id)
        )
        assert rec.tracks[track.id].removed
        if how == "id":
            return  # the object cannot know it was removed by id
        assert track.removed
        with pytest.raises(AgentError, match="removed"):
            await track.send_chunk(b"\0\0")
        with pytest.raises(AgentError, match="removed"):
            await track.interrupt()
        await track.remove()  # again: nothing is sent
        assert await _marker(fj, session) == [
            "auth_request",
            "add_track",
            "track_data",
            "remove_track",
            "capture_image",
        ]


async def test_outgoing_track_attributes(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    options = OutgoingAudioTrackOptions(metadata={"a": 1})
    async with agent.connect() as session:
        track = await session.add_track(options)
        assert isinstance(track, OutgoingTrack)
        assert (track.session, track.options) == (session, options)
        assert len(track.id) == 32 and int(track.id, 16) >= 0  # uuid4().hex
        other = await session.add_track(options)
        assert other.id != track.id
        # constructed directly, as the plain SDK's frozen dataclass can be
        again = OutgoingTrack(id=track.id, session=session, options=options)
        await again.send_chunk(b"\0\0")
        await track.interrupt()
        await fj.wait_requests(agent.id, 5, TIMEOUT)
    kinds = fj.agent(agent.id).connections[0].kinds()
    assert kinds == ["auth_request", "add_track", "add_track", "track_data", "interrupt_track"]
    assert fj.agent(agent.id).tracks[track.id].chunks == [b"\0\0"]


# -- stats ------------------------------------------------------------------------------


async def test_stats_count_a_known_exchange_exactly(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        stats = session.stats
        assert (stats.messages_sent, stats.messages_received) == (1, 1)  # auth, authenticated
        assert (stats.bytes_sent, stats.bytes_received) == (len(agent._token) + 4, 2)
        track = await session.add_track(OutgoingAudioTrackOptions(metadata={"k": "v"}))
        for i in range(3):
            await track.send_chunk(bytes([i]) * 640)
        await track.interrupt()
        await fj.wait_requests(agent.id, 6, TIMEOUT)
        frames = [GOOD, _track_data(b"\7" * 640, "peer", "track"), b"\xff\xff"]
        for frame in frames:
            await fj.send_raw(agent.id, frame)
        messages = session.receive()
        for _ in range(2):
            await asyncio.wait_for(anext(messages), TIMEOUT)
        await fj.send_raw(agent.id, GOOD)  # the malformed frame was read before this one
        await asyncio.wait_for(anext(messages), TIMEOUT)
        await messages.aclose()
        sent = [r.SerializeToString() for r in fj.agent(agent.id).requests]
        assert stats.messages_sent == len(sent) == 6
        assert stats.bytes_sent == sum(map(len, sent))
        assert stats.messages_received == 1 + 4
        assert stats.bytes_received == 2 + sum(map(len, frames)) + len(GOOD)
        assert stats.frames_skipped == 1
        assert stats.closed_at is None and 0 < stats.connected_seconds < TIMEOUT * 3
    assert stats.closed_at is not None
    frozen = stats.connected_seconds
    await asyncio.sleep(0.02)
    assert stats.connected_seconds == frozen  # stops counting once closed


# -- transport --------------------------------------------------------------------------


async def test_no_compression_offered_unlike_the_plain_sdk(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room, agent = await _agent(fj)
    async with agent.connect() as session:
        ws = session._transport._ws  # type: ignore[attr-defined]
        assert ws.protocol.extensions == []
        assert ws.request is not None and "Sec-WebSocket-Extensions" not in ws.request.headers
    plain = PlainAgent(agent.id, room, agent._token, fj.url)
    async with plain.connect() as plain_session:
        assert "permessage-deflate" in plain_session._ws.request.headers["Sec-WebSocket-Extensions"]


async def test_slow_send_path_still_works(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        transport = session._transport
        assert transport._fast_send  # type: ignore[attr-defined]
        transport._fast_send = False  # type: ignore[attr-defined]
        track = await session.add_track(OutgoingAudioTrackOptions())
        for i in range(3):
            await track.send_chunk(bytes([i]) * 640)
        rec = await fj.wait_track(agent.id, 0, TIMEOUT)
        await fj.wait_bytes(rec, 3 * 640, TIMEOUT)
    assert rec.chunks == [bytes([i]) * 640 for i in range(3)]


async def test_send_while_closing_raises_connection_error(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        await fj.wait_track(agent.id, 0, TIMEOUT)
        fj.stall_agent(agent.id, 0.3)  # the server does not answer our close for a while
        closing = asyncio.create_task(session.disconnect())
        await asyncio.sleep(0.01)
        ws = session._transport._ws  # type: ignore[attr-defined]
        assert ws.protocol.state.name == "CLOSING"
        with pytest.raises(AgentConnectionError):  # the slow path, not a websockets error
            await asyncio.wait_for(track.send_chunk(b"\0\0"), TIMEOUT)
        await asyncio.wait_for(closing, TIMEOUT)
        assert session.closed and session.close_code == 1000


async def test_send_after_the_server_closed_raises_connection_error(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    _, agent = await _agent(fj)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        await fj.kick(agent.id)  # nobody reads: the session learns it on the next send
        ws = session._transport._ws  # type: ignore[attr-defined]
        await asyncio.wait_for(asyncio.shield(ws.connection_lost_waiter), TIMEOUT)
        with pytest.raises(AgentConnectionError) as info:
            await track.send_chunk(b"\0\0")
        assert (info.value.code, info.value.reason) == (1000, "Peer removed")
        assert session.closed and session.close_reason == "Peer removed"
        assert await _drain(session) == []
