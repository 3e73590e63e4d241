"""The public surface matches the plain SDK's: exports, enums, message classes,
FishjamClient / Agent.from_sdk against the local server, and fishjam_fast.run."""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any

import fishjam
import fishjam.agent as plain_agent
import pytest
from fishjam.events._protos.fishjam import notifications as plain_notifications

import fishjam_fast
import fishjam_fast.agent
from fishjam_fast import (
    Agent,
    IncomingTrackData,
    IncomingTrackImage,
    OutgoingAudioTrackOptions,
    Track,
    TrackEncoding,
    TrackType,
)
from fishjam_fast.local import LocalFishjam

pytestmark = pytest.mark.usefixtures("transport")


TIMEOUT = 5.0


@pytest.mark.parametrize("module", [fishjam_fast, fishjam_fast.agent], ids=lambda m: m.__name__)
def test_exports_mirror_the_plain_sdk(module: Any) -> None:
    for name in [*plain_agent.__all__, "TrackType", "TrackEncoding", "Track"]:
        assert name in module.__all__, name
        assert getattr(module, name) is getattr(fishjam_fast, name), name


def test_every_export_resolves_and_every_exception_is_exported() -> None:
    namespace: dict[str, Any] = {}
    exec("from fishjam_fast import *", namespace)
    assert set(fishjam_fast.__all__) <= namespace.keys()
    from fishjam_fast import errors, rest

    for module in (errors, rest):
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, Exception):
                # (errors._PlainSdkBase: install()'s placeholder, not raised itself)
                if value.__module__ == module.__name__ and not name.startswith("_"):
                    assert name in fishjam_fast.__all__, name
    for name in ("ReconnectPolicy", "SessionStateChange", "AsyncFishjamClient", "run", "pcm"):
        assert name in fishjam_fast.__all__, name
    assert "Resampler" in fishjam_fast.pcm.__all__


def test_signatures_match_the_plain_sdk() -> None:
    def params(f: Any) -> list[str]:
        return [
            p.name for p in inspect.signature(f).parameters.values() if p.kind is not p.KEYWORD_ONLY
        ]

    pairs = [
        (Agent.__init__, plain_agent.Agent.__init__),
        (Agent.connect, plain_agent.Agent.connect),
        (fishjam_fast.AgentSession.add_track, plain_agent.AgentSession.add_track),
        (fishjam_fast.AgentSession.capture_image, plain_agent.AgentSession.capture_image),
        (fishjam_fast.AgentSession.receive, plain_agent.AgentSession.receive),
        (fishjam_fast.AgentSession.disconnect, plain_agent.AgentSession.disconnect),
        (fishjam_fast.OutgoingTrack.__init__, plain_agent.OutgoingTrack.__init__),
        (fishjam_fast.OutgoingTrack.send_chunk, plain_agent.OutgoingTrack.send_chunk),
        (fishjam_fast.OutgoingTrack.interrupt, plain_agent.OutgoingTrack.interrupt),
    ]
    for ours, theirs in pairs:
        assert params(ours) == params(theirs), ours.__qualname__
    # receive() returns an async generator (Cython's where the extension is built, so
    # not inspect.isasyncgenfunction): tests/test_session_paths.py checks it live
    assert inspect.isasyncgenfunction(plain_agent.AgentSession.receive)


def test_enums_have_the_plain_sdks_members() -> None:
    for ours, theirs in (
        (TrackType, plain_notifications.TrackType),
        (TrackEncoding, plain_notifications.TrackEncoding),
    ):
        assert [(m.name, int(m)) for m in ours] == [(m.name, int(m)) for m in theirs]
        assert all(isinstance(m, int) for m in ours)
        # interchangeable as values
        assert all(ours[m.name] == m for m in theirs)


def test_options_defaults_and_fields_match() -> None:
    ours, theirs = OutgoingAudioTrackOptions(), plain_agent.OutgoingAudioTrackOptions()
    fields = ["encoding", "sample_rate", "channels", "metadata"]
    assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]
    assert OutgoingAudioTrackOptions(TrackEncoding.TRACK_ENCODING_PCM16, 24000, 2, {"a": 1})


def _describe(message: Any) -> Any:
    match message:
        case IncomingTrackData(peer_id=peer, track=Track(id=track_id, type=kind), data=data):
            return ("data", peer, track_id, kind, data)
        case IncomingTrackImage(track_id=track_id, content_type=ctype, data=data):
            return ("image", track_id, ctype, data)
    return None


def test_messages_support_attributes_isinstance_and_match() -> None:
    data = IncomingTrackData("p", Track("t", TrackType.TRACK_TYPE_AUDIO, "null"), b"\1\2")
    image = IncomingTrackImage(track_id="v", content_type="image/png", data=b"png")
    assert isinstance(data, IncomingTrackData) and not isinstance(data, IncomingTrackImage)
    assert (data.peer_id, data.track.id, data.track.type, data.data) == ("p", "t", 2, b"\1\2")
    assert _describe(data) == ("data", "p", "t", TrackType.TRACK_TYPE_AUDIO, b"\1\2")
    assert _describe(image) == ("image", "v", "image/png", b"png")
    # positional patterns in the plain SDK's field order
    match data:
        case IncomingTrackData(peer, track, payload):
            assert (peer, track.id, payload) == ("p", "t", b"\1\2")
    assert IncomingTrackData.__match_args__ == plain_agent.IncomingTrackData.__match_args__
    assert IncomingTrackImage.__match_args__ == plain_agent.IncomingTrackImage.__match_args__
    # compare by value; defaults like betterproto's
    assert data == IncomingTrackData("p", Track("t", 2, "null"), b"\1\2")
    empty, plain_empty = IncomingTrackData(), plain_agent.IncomingTrackData()
    assert (empty.peer_id, empty.data) == (plain_empty.peer_id, plain_empty.data)


async def test_plain_client_creates_agents_that_we_connect(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = fishjam.FishjamClient(fj.url, fj.management_token)
    room = await asyncio.to_thread(client.create_room)
    plain = await asyncio.to_thread(
        client.create_agent,
        room.id,
        fishjam.AgentOptions(output=fishjam.AgentOutputOptions(audio_sample_rate=24000)),
    )
    agent = Agent.from_sdk(plain)
    assert isinstance(agent, Agent) and (agent.id, agent.room_id) == (plain.id, room.id)
    async with agent.connect() as session:
        conn = await fj.wait_connected(agent.id, TIMEOUT)
        assert conn.peer.output_sample_rate == 24000
        await session.add_track(OutgoingAudioTrackOptions(sample_rate=24000))
        await fj.wait_track(agent.id, 0, TIMEOUT)
    with pytest.raises(TypeError, match=r"not a fishjam\.agent\.Agent"):
        Agent.from_sdk(object())
    with_options = Agent.from_sdk(plain, max_queue=8)
    assert with_options._options.max_queue == 8


async def test_our_client_creates_our_agents(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = fishjam_fast.FishjamClient(fj.url, fj.management_token)
    assert isinstance(client, fishjam.FishjamClient)
    room = await asyncio.to_thread(client.create_room)
    agent = await asyncio.to_thread(client.create_agent, room.id)
    assert type(agent) is Agent and agent.room_id == room.id
    async with agent.connect():
        await fj.wait_connected(agent.id, TIMEOUT)
    # and with a path prefix, as the hosted Fishjam gives
    prefixed = fishjam_fast.FishjamClient(f"{fj.url}/api/v1/connect/abc", fj.management_token)
    agent = await asyncio.to_thread(prefixed.create_agent, room.id)
    assert "/api/v1/connect/abc/socket/agent/websocket" in agent._socket_url
    async with agent.connect():
        await fj.wait_connected(agent.id, TIMEOUT)


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_run_uses_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert fishjam_fast.run(_loop_type()) is uvloop.Loop


def test_run_falls_back_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    assert not issubclass(fishjam_fast.run(_loop_type(), use_uvloop=False), uvloop.Loop)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` now fails
    assert not fishjam_fast.runner.has_uvloop()
    loop_type = fishjam_fast.run(_loop_type())
    assert issubclass(loop_type, asyncio.AbstractEventLoop) and loop_type is not uvloop.Loop


def test_run_returns_the_result_and_raises_the_error() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise ValueError("boom")

    assert fishjam_fast.run(answer()) == 42
    with pytest.raises(ValueError, match="boom"):
        fishjam_fast.run(fail())
