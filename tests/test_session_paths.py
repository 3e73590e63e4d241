"""The session's per-message path on both builds of the session core (the compiled
``fishjam_fast._core.connection`` and its ``.py`` uncompiled), both transports and both
loops, against the local Fishjam: ``receive()``, the dispatcher (decoding where the
transport reads), the synchronous ``on_track_data`` callback, ``send_chunk_nowait``, and
a session that learns of a drop without reading (against hostile servers:
test_session_hostile.py)."""

from __future__ import annotations

import asyncio
import collections.abc
import gc
import warnings
from typing import Any

import pytest

from fishjam_fast import (
    Agent,
    AgentConnectionError,
    AgentError,
    AgentWouldBlockError,
    IncomingTrackData,
    IncomingTrackImage,
    OutgoingAudioTrackOptions,
    ReconnectPolicy,
    _codec,
)
from fishjam_fast._proto import agent_pb2
from fishjam_fast.local import LocalFishjam
from tests import hostile

pytestmark = pytest.mark.usefixtures("transport")

TIMEOUT = 5.0
QUICK = ReconnectPolicy(budget=10.0, first_delay=0.02, max_delay=0.2)


async def _agent(fj: LocalFishjam, **options: Any) -> Agent:
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    return Agent(peer.id, room, peer.token, fj.url, **options)


def _image(track_id: str, data: bytes = b"\xff\xd8jpeg") -> bytes:
    return agent_pb2.AgentResponse(
        track_image=agent_pb2.AgentResponse.TrackImage(
            track_id=track_id, content_type="image/jpeg", data=data
        )
    ).SerializeToString()


def _payloads(n: int, size: int = 640) -> list[bytes]:
    return [bytes([i % 251]) * size for i in range(n)]


# -- receive() ---------------------------------------------------------------------


async def test_receive_is_an_async_generator(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        received = session.stats.messages_received  # the answer to the auth request
        stream = session.receive()
        assert isinstance(stream, collections.abc.AsyncGenerator)
        await fj.send_raw(agent.id, hostile.track_data(b"\x01\x02"))
        first = await asyncio.wait_for(stream.__anext__(), TIMEOUT)
        assert isinstance(first, IncomingTrackData) and first.data == b"\x01\x02"
        await stream.aclose()  # as the plain SDK's async generator allows
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        # a new iteration carries on where the closed one stopped
        await fj.send_raw(agent.id, hostile.track_data(b"\x03\x04"))
        again = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert again.data == b"\x03\x04"
        assert session.stats.messages_received - received == 2


@pytest.mark.slow  # a subprocess per case (2 s)
async def test_receive_kept_and_never_iterated_does_not_warn(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    """As CPython's async generators (Cython's would warn "never awaited")."""
    agent = await _agent(local_fishjam)
    async with agent.connect() as session:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stream = session.receive()
            del stream
            gc.collect()
        assert [str(w.message) for w in caught] == []


async def test_malformed_frames_are_counted_once_and_skipped(
    local_fishjam: LocalFishjam, session_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    async with agent.connect() as session:
        before = session.stats.messages_received
        await fj.send_raw(agent.id, b"\x12\x05\x0a")  # a length past the end
        await fj.send_raw(agent.id, hostile.track_data(b"ok"))
        message = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert message.data == b"ok"
        assert session.stats.messages_received - before == 2
        assert session.stats.frames_skipped == 1
        assert "skipped a malformed frame from Fishjam (3 bytes)" in caplog.text


# -- on_track_data -----------------------------------------------------------------


async def test_on_track_data_gets_every_chunk_in_order_and_receive_the_rest(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    payloads = _payloads(40)
    async with agent.connect() as session:
        got: list[IncomingTrackData] = []
        session.on_track_data(got.append)
        for index, payload in enumerate(payloads):
            await fj.send_raw(agent.id, hostile.track_data(payload, track_id=f"t{index}"))
        await fj.send_raw(agent.id, _image("cam"))  # not audio: for receive()
        image = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert isinstance(image, IncomingTrackImage) and image.track_id == "cam"
        assert [m.data for m in got] == payloads  # all of them came first, in order
        assert [m.track.id for m in got] == [f"t{i}" for i in range(40)]
        assert all(type(m) is IncomingTrackData for m in got)
        assert session.stats.messages_received >= 41
        # None: audio goes to receive() again
        session.on_track_data(None)
        await fj.send_raw(agent.id, hostile.track_data(b"\x05\x06"))
        later = await asyncio.wait_for(session.receive().__anext__(), TIMEOUT)
        assert later.data == b"\x05\x06" and len(got) == 40


async def test_on_track_data_reports_a_callbacks_exception_and_goes_on(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, c: loop_errors.append(c))
    async with agent.connect() as session:
        got: list[bytes] = []

        def callback(message: IncomingTrackData) -> None:
            if message.data == b"bad!":
                raise RuntimeError("the application's bug")
            got.append(message.data)

        session.on_track_data(callback)
        for payload in (b"one.", b"bad!", b"two."):
            await fj.send_raw(agent.id, hostile.track_data(payload))
        await fj.wait_for(lambda: len(got) == 2, TIMEOUT)
        assert got == [b"one.", b"two."] and not session.closed
        [context] = loop_errors
        assert isinstance(context["exception"], RuntimeError)
        assert "on_track_data callback" in context["message"]


async def test_on_track_data_refuses_what_is_not_callable(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    agent = await _agent(local_fishjam)
    async with agent.connect() as session:
        with pytest.raises(TypeError, match="callable or None, not int"):
            session.on_track_data(42)  # type: ignore[arg-type]


async def test_on_track_data_stays_across_a_reconnection(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj, reconnect=QUICK)
    async with agent.connect() as session:
        got: list[bytes] = []
        session.on_track_data(lambda m: got.append(m.data))
        await fj.send_raw(agent.id, hostile.track_data(b"before"))
        await fj.wait_for(lambda: got == [b"before"], TIMEOUT)
        fj.drop_agent(agent.id)
        # nobody reads: the session learns of the drop from the transport, reconnects
        await fj.wait_for(lambda: session.stats.reconnects == 1, TIMEOUT)
        await fj.wait_connected(agent.id, TIMEOUT)
        assert session.state == "connected"
        await fj.send_raw(agent.id, hostile.track_data(b"after"))
        await fj.wait_for(lambda: got == [b"before", b"after"], TIMEOUT)


# -- send_chunk_nowait -------------------------------------------------------------


async def test_send_chunk_nowait_sends_what_send_chunk_sends(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj)
    chunks = _payloads(10)
    async with agent.connect() as session:
        awaited = await session.add_track(OutgoingAudioTrackOptions())
        nowait = await session.add_track(OutgoingAudioTrackOptions())
        sent_before = session.stats.messages_sent
        bytes_before = session.stats.bytes_sent
        for chunk in chunks:
            await awaited.send_chunk(chunk)
        middle = (session.stats.messages_sent, session.stats.bytes_sent)
        for chunk in chunks:
            nowait.send_chunk_nowait(chunk)
        assert middle[0] - sent_before == session.stats.messages_sent - middle[0] == 10
        assert middle[1] - bytes_before == session.stats.bytes_sent - middle[1]
        # the same playout clock: 10 chunks of 20 ms each
        assert nowait._clock.sent_seconds == pytest.approx(awaited._clock.sent_seconds)
        assert nowait._clock.sent_seconds == pytest.approx(0.2)
        assert 0.15 < nowait.queued_duration <= 0.2
        record = fj.agent(agent.id)
        await fj.wait_for(
            lambda: sum(r.HasField("track_data") for r in record.requests) == 20, TIMEOUT
        )
        frames = [r.track_data for r in record.requests if r.HasField("track_data")]
        assert [f.data for f in frames if f.track_id == awaited.id] == chunks
        assert [f.data for f in frames if f.track_id == nowait.id] == chunks
        # the wire bytes of one frame are exactly the codec's (google.protobuf parsed them)
        wire = _codec.encode_track_data(nowait.id, chunks[0])
        assert agent_pb2.AgentRequest.FromString(wire).track_data == frames[10]


async def test_send_chunk_nowait_refuses_bad_input_and_sends_nothing(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    agent = await _agent(local_fishjam)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        sent = session.stats.messages_sent
        with pytest.raises(ValueError, match="multiple of 2 bytes"):
            track.send_chunk_nowait(b"\x01\x02\x03")
        with pytest.raises(TypeError, match="bytes-like"):
            track.send_chunk_nowait("text")  # type: ignore[arg-type]
        paced = await session.add_track(OutgoingAudioTrackOptions(), max_queued=0.05)
        sent = session.stats.messages_sent
        paced.send_chunk_nowait(b"\x00" * 640)  # 20 ms
        paced.send_chunk_nowait(b"\x00" * 640)  # 40 ms
        with pytest.raises(AgentWouldBlockError, match=r"max_queued=0\.05"):
            paced.send_chunk_nowait(b"\x00" * 640)  # 60 ms: over the bound
        assert session.stats.messages_sent - sent == 2
        assert paced._clock.sent_seconds == pytest.approx(0.04)
        await track.remove()
        with pytest.raises(AgentError, match="was removed"):
            track.send_chunk_nowait(b"\x00\x00")
        sent = session.stats.messages_sent
    with pytest.raises(AgentConnectionError):
        paced.send_chunk_nowait(b"\x00\x00")
    assert session.stats.messages_sent == sent


# -- a session that does not read ---------------------------------------------------


async def test_a_drop_is_noticed_without_reading_or_sending(
    local_fishjam: LocalFishjam, session_path: str
) -> None:
    fj = local_fishjam
    agent = await _agent(fj, reconnect=False)
    async with agent.connect() as session:
        states: list[str] = []
        session.on_state_change(lambda change: states.append(change.state))
        fj.drop_agent(agent.id)
        await fj.wait_for(lambda: session.closed, TIMEOUT)
        assert states == ["closed"] and session.close_code == 1006
