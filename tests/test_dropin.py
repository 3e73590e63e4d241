"""fishjam_fast is a drop-in replacement for fishjam.agent.

Every test here is application code written against the plain SDK's API and run twice:
once with ``fishjam.agent`` and once with ``fishjam_fast`` as the SDK. Both runs talk to
the local Fishjam server, which records what they send; the recordings (with the random
track ids and the tokens normalized) and what the application receives must be equal.
Where fishjam_fast deliberately differs (the end of receive(), malformed frames), each
side's behaviour is asserted.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from types import ModuleType
from typing import Any

import pytest
import websockets

from fishjam_fast._proto import agent_pb2
from fishjam_fast.local import LocalFishjam

pytestmark = pytest.mark.usefixtures("transport")

TIMEOUT = 5.0
SDKS = ["fishjam.agent", "fishjam_fast"]
JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


@pytest.fixture(params=SDKS)
def sdk(request: pytest.FixtureRequest) -> ModuleType:
    """The SDK under test: ``from <sdk> import Agent, ...`` is all that changes."""
    return importlib.import_module(request.param)


async def _new_agent(sdk: ModuleType, fj: LocalFishjam, rate: int = 16000) -> Any:
    room = await fj.create_room()
    peer = await fj.add_agent(room, sample_rate=rate)
    return sdk.Agent(peer.id, room, peer.token, fj.url)


def _normalized(requests: list[agent_pb2.AgentRequest], token: str) -> list[Any]:
    """The requests with track ids numbered in order of appearance and the token hidden."""
    ids: dict[str, str] = {}
    out = []
    for original in requests:
        request = agent_pb2.AgentRequest()
        request.CopyFrom(original)
        kind = request.WhichOneof("content")
        if kind == "auth_request":
            assert request.auth_request.token == token
            request.auth_request.token = "<token>"
        elif kind == "add_track":
            track = request.add_track.track
            assert re.fullmatch("[0-9a-f]{32}", track.id), track.id  # uuid4().hex
            assert track.id not in ids
            ids[track.id] = f"<track {len(ids)}>"
            track.id = ids[track.id]
        elif kind in ("track_data", "interrupt_track", "remove_track"):
            content = getattr(request, kind)
            content.track_id = ids[content.track_id]
        out.append((len(original.SerializeToString()), request))
    return out


async def _same_for_both(run: Any, fj: LocalFishjam) -> None:
    """Runs ``run(sdk, fj)`` with each SDK; their results must be equal."""
    results = [await run(importlib.import_module(name), fj) for name in SDKS]
    assert results[0] == results[1]


async def test_same_wire_traffic(local_fishjam: LocalFishjam) -> None:
    async def app(sdk: ModuleType, fj: LocalFishjam) -> Any:
        agent = await _new_agent(sdk, fj)
        camera = await fj.add_video_peer(agent.room_id, image=JPEG)
        async with agent.connect() as session:
            default = await session.add_track(sdk.OutgoingAudioTrackOptions())
            stereo = await session.add_track(
                sdk.OutgoingAudioTrackOptions(
                    sample_rate=24000, channels=2, metadata={"name": "bot", "n": [1, 2.5, None]}
                )
            )
            for i in range(5):
                await default.send_chunk(bytes([i]) * 640)
            await stereo.send_chunk(b"\1\2\3\4" * 480)
            await default.send_chunk(b"")
            await default.interrupt()
            await session.capture_image(camera.id)
            async for message in session.receive():
                assert isinstance(message, sdk.IncomingTrackImage)
                image = (message.track_id == camera.id, message.content_type, message.data)
                break
            await fj.wait_requests(agent.id, 12, TIMEOUT)
        await fj.wait_disconnected(agent.id, TIMEOUT)
        rec = fj.agent(agent.id)
        requests = _normalized(rec.requests, agent._token)
        for request in requests:
            if request[1].HasField("capture_image"):
                assert request[1].capture_image.track_id == camera.id
                request[1].capture_image.track_id = "<camera>"
        tracks = [
            (t.type, t.metadata, t.encoding, t.sample_rate, t.channels, t.chunks)
            for t in rec.tracks.values()
        ]
        return requests, tracks, image

    await _same_for_both(app, local_fishjam)


async def test_same_messages_received(local_fishjam: LocalFishjam) -> None:
    async def app(sdk: ModuleType, fj: LocalFishjam) -> Any:
        agent = await _new_agent(sdk, fj, rate=24000)
        async with agent.connect() as session:
            await fj.wait_connected(agent.id, TIMEOUT)
            speaker = await fj.add_speaking_peer(
                agent.room_id, realtime=False, chunks=40, metadata={"who": "peer"}
            )
            got = []
            async with asyncio.timeout(TIMEOUT):
                async for message in session.receive():
                    match message:
                        case sdk.IncomingTrackData(peer_id=peer_id, track=track, data=data):
                            assert peer_id == speaker.peer_id and track.id == speaker.track_id
                            # the plain SDK gives an int, ours a TrackType (an IntEnum)
                            assert isinstance(track.type, int)
                            got.append((track.type, track.metadata, data))
                        case sdk.IncomingTrackImage():
                            pytest.fail("no image was asked for")
                    if len(got) == 40:
                        break
        assert len(got[0][2]) == 960  # 20 ms at 24 kHz
        return got

    await _same_for_both(app, local_fishjam)


async def test_plain_sdk_options_objects_work_with_ours(local_fishjam: LocalFishjam) -> None:
    async def app(sdk: ModuleType, fj: LocalFishjam) -> Any:
        plain = importlib.import_module("fishjam.agent")
        from fishjam.events._protos.fishjam.notifications import TrackEncoding

        agent = await _new_agent(sdk, fj)
        async with agent.connect() as session:
            for options in (
                plain.OutgoingAudioTrackOptions(),
                plain.OutgoingAudioTrackOptions(
                    encoding=TrackEncoding.TRACK_ENCODING_PCM16, sample_rate=24000, channels=2
                ),
            ):
                track = await session.add_track(options)
                assert track.options is options
            await fj.wait_requests(agent.id, 3, TIMEOUT)
        return _normalized(fj.agent(agent.id).requests, agent._token)

    await _same_for_both(app, local_fishjam)


async def test_same_auth_error(local_fishjam: LocalFishjam) -> None:
    async def app(sdk: ModuleType, fj: LocalFishjam) -> Any:
        agent = await _new_agent(sdk, fj)
        bogus = sdk.Agent(agent.id, agent.room_id, "bogus", fj.url)
        try:
            async with bogus.connect():
                pytest.fail("connected with a bogus token")
        except sdk.AgentAuthError as error:
            assert isinstance(error, sdk.AgentError)
            return error.reason, str(error)

    await _same_for_both(app, local_fishjam)


# -- where fishjam_fast deliberately differs ----------------------------------------------


async def test_normal_close_ends_receive(local_fishjam: LocalFishjam, sdk: ModuleType) -> None:
    fj = local_fishjam
    agent = await _new_agent(sdk, fj)
    async with agent.connect() as session:
        await fj.kick(agent.id)
        if sdk.__name__ == "fishjam.agent":
            # the plain SDK's loop dies with websockets' exception
            with pytest.raises(websockets.ConnectionClosedOK):
                async for _ in session.receive():
                    pass
        else:
            async for _ in session.receive():  # ours just ends ...
                pass
            # ... and says why
            assert (session.close_code, session.close_reason) == (1000, "Peer removed")


async def test_malformed_frame(local_fishjam: LocalFishjam, sdk: ModuleType) -> None:
    fj = local_fishjam
    agent = await _new_agent(sdk, fj)
    room = agent.room_id
    async with agent.connect() as session:
        await fj.wait_connected(agent.id, TIMEOUT)
        speaker = await fj.add_speaking_peer(room, realtime=False, chunks=1, start=False)
        bad = agent_pb2.AgentResponse(
            track_data=agent_pb2.AgentResponse.TrackData(peer_id="\u00e9", data=b"x")
        ).SerializeToString()
        await fj.send_raw(agent.id, bad.replace("\u00e9".encode(), b"\xff\xfe"))  # not UTF-8
        fj.start_speaking(speaker)
        messages = session.receive()
        if sdk.__name__ == "fishjam.agent":
            with pytest.raises(UnicodeDecodeError):  # the plain SDK's session dies on it
                await asyncio.wait_for(anext(messages), TIMEOUT)
        else:
            message = await asyncio.wait_for(anext(messages), TIMEOUT)  # ours skips it
            assert isinstance(message, sdk.IncomingTrackData)
            assert message.peer_id == speaker.peer_id
            assert session.stats.frames_skipped == 1
