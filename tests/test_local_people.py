"""Simulated people (API, control routes, command line), the WebRTC peer socket, manual
subscriptions and the REST fidelity fixes of the local server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
import websockets
from fishjam import FishjamClient, PeerOptions, RoomOptions
from fishjam.errors import ConflictError
from websockets.exceptions import ConnectionClosed

import fishjam_fast
from fishjam_fast.local import AudioSource, LocalFishjam, LocalFishjamProcess, RoomFullError
from fishjam_fast.local.peer_socket import AUTHENTICATED, PeerMessage
from fishjam_fast.local.vad import VoiceActivity, loud_chunks, rms_dbfs

TIMEOUT = 10.0


def _call(fj: LocalFishjam, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fj.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {fj.management_token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def call(fj: LocalFishjam, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(_call, fj, method, path, body)


# -- people -------------------------------------------------------------------------


async def test_person_joins_speaks_to_agents_and_leaves(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    agent = fishjam_fast.Agent(peer.id, room, peer.token, fj.url)
    samples = (np.sin(np.arange(3200) / 5.0) * 8000).astype(np.int16)  # 0.2 s at 16 kHz
    async with agent.connect() as session:
        person = await fj.join_person(room, audio=samples, metadata={"name": "Ann"})
        got = b""
        async for message in session.receive():
            assert message.peer_id == person.peer_id and message.track.id == person.track_id
            got += message.data
            if len(got) >= samples.nbytes:
                break
        await person.wait_done(TIMEOUT)
    assert np.array_equal(np.frombuffer(got, "<i2"), samples)
    shown = fj.rooms[room].to_json()["peers"][1]
    assert shown["type"] == "webrtc" and shown["status"] == "connected"
    assert shown["metadata"] == {"peer": {}, "server": {"name": "Ann"}}
    assert [t["id"] for t in shown["tracks"]] == [person.track_id]
    await fj.leave_person(person.peer_id)
    assert person.peer_id not in fj.rooms[room].peers
    with pytest.raises(KeyError):
        await fj.leave_person(person.peer_id)


async def test_silent_person_is_done_at_once_and_has_no_voice(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    person = await fj.join_person(room)
    await person.wait_done(0.1)
    assert person.speaker is None
    assert not any(m.HasField("vad_notification") for m in fj.notifications.history)
    with pytest.raises(TypeError, match="metadata must be a dict"):
        await fj.join_person(room, metadata=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        await fj.join_person("no-such-room")


async def test_person_control_routes(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room(maxPeers=1)
    status, body = await call(
        fj,
        "POST",
        f"/local/room/{room}/person",
        {"audio": {"source": "tone", "seconds": 0.2}, "metadata": {"n": 1}},
    )
    assert status == 201
    assert body["data"] == {"peer_id": body["peer_id"], "track_id": body["track_id"]}
    peer = fj.peer(body["peer_id"])
    assert (
        peer.metadata == {"n": 1} and fj.rooms[room].speakers[peer.id].track_id == body["track_id"]
    )
    status, refused = await call(fj, "POST", f"/local/room/{room}/person", {})
    assert status == 409 and "peer limit" in refused["errors"]
    assert (await call(fj, "POST", f"/local/room/{room}/person", {"audio": 3}))[0] == 400
    assert (await call(fj, "POST", "/local/room/nope/person", {}))[0] == 404
    status, left = await call(fj, "DELETE", f"/local/room/{room}/person/{peer.id}")
    assert status == 200 and left["peer_id"] == peer.id
    assert fj.rooms[room].peers == {}
    assert (await call(fj, "DELETE", f"/local/room/{room}/person/{peer.id}"))[0] == 404


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "fishjam_fast.local", "person", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_person_command_line_and_process_helpers() -> None:
    with LocalFishjamProcess(seconds=60) as server:
        room = server.call("POST", "/room", {})["room"]["id"]
        auth = ["--url", server.url, "--token", server.token]
        joined = _cli("join", room, *auth, "--speech", "hello", "--metadata", '{"a": 1}')
        assert joined.returncode == 0, joined.stderr
        lines = dict(line.split(" ", 1) for line in joined.stdout.splitlines())
        peers = server.call("GET", f"/room/{room}")["peers"]
        assert [(p["id"], p["metadata"]) for p in peers] == [
            (lines["PEER_ID"], {"peer": {}, "server": {"a": 1}})
        ]
        assert [t["id"] for t in peers[0]["tracks"]] == [lines["TRACK_ID"]]
        left = _cli("leave", room, lines["PEER_ID"], *auth)
        assert left.returncode == 0 and left.stdout == f"PEER_ID {lines['PEER_ID']}\n"
        again = _cli("leave", room, lines["PEER_ID"], *auth)
        assert again.returncode == 1 and "404" in again.stderr
        bad = _cli("join", room, *auth, "--metadata", "{nope")
        assert bad.returncode == 2 and "--metadata is not JSON" in bad.stderr
        # the same through the process helper
        peer_id, track_id = server.join_person(room, audio={"source": "tone", "seconds": 0.1})
        assert [t["id"] for t in server.call("GET", f"/room/{room}")["peers"][0]["tracks"]] == [
            track_id
        ]
        server.leave_person(room, peer_id)
        assert server.call("GET", f"/room/{room}")["peers"] == []


# -- voice activity -------------------------------------------------------------------


def test_voice_activity_threshold_and_hangover() -> None:
    loud = (np.full(320, 3000, np.int16)).tobytes()
    quiet = np.zeros(320, np.int16).tobytes()
    assert rms_dbfs(quiet) == float("-inf")
    assert rms_dbfs(loud) == pytest.approx(20 * np.log10(3000 / 32768))
    vad = VoiceActivity(threshold_dbfs=-45.0, hangover=3)
    changes = [vad.update(c) for c in [quiet, loud, loud, quiet, quiet, loud, quiet, quiet, quiet]]
    assert changes == [None, True, None, None, None, None, None, None, False]
    assert vad.update(loud) is True and vad.end() is False and vad.end() is None
    with pytest.raises(ValueError, match="hangover must be at least 1"):
        VoiceActivity(hangover=0)


async def test_vad_follows_the_audio_a_person_plays(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    # 0.2 s tone, 0.6 s silence (longer than the 0.3 s hangover), 0.2 s tone
    tone = AudioSource.tone(300.0, 0.2).render(16000)
    audio = np.concatenate([tone, np.zeros(9600, np.int16), tone])
    person = await fj.join_person(room, audio=audio, realtime=False)
    await person.wait_done(TIMEOUT)
    statuses = [
        m.vad_notification.status
        for m in fj.notifications.history
        if m.HasField("vad_notification")
    ]
    speech, silence = 2, 1
    assert statuses == [speech, silence, speech, silence]


# -- the WebRTC peer socket ----------------------------------------------------------


def peer_auth(token: str) -> bytes:
    return bytes(PeerMessage(auth_request=PeerMessage.AuthRequest(token=token)).SerializeToString())


async def test_peer_socket_authenticates_and_marks_connected(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    room = await asyncio.to_thread(client.create_room)
    peer, token = await asyncio.to_thread(client.create_peer, room.id)
    url = fj.ws_url + "/api/v1/connect/x/socket/peer/websocket"
    async with websockets.connect(url) as ws:
        await ws.send(peer_auth(token))
        answer = PeerMessage.FromString(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert answer.WhichOneof("content") == "authenticated"
        got = await asyncio.to_thread(client.get_room, room.id)
        assert got.peers[0].status.value == "connected"
        await ws.send(
            PeerMessage(media_event=PeerMessage.MediaEvent(data="{}")).SerializeToString()
        )
        async with websockets.connect(fj.ws_url + "/socket/peer/websocket") as twice:
            await twice.send(peer_auth(token))
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(twice.recv(), TIMEOUT)
            assert (
                info.value.rcvd is not None and info.value.rcvd.reason == "peer already connected"
            )
        await asyncio.to_thread(client.delete_peer, room.id, peer.id)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "Peer removed")
    kinds = [m.WhichOneof("content") for m in fj.notifications.history]
    assert kinds == [
        "room_created",
        "peer_added",
        "peer_connected",
        "peer_disconnected",
        "peer_deleted",
    ]


def test_peer_message_wire_format() -> None:
    # PeerMessage{auth_request(2){token(1)}} and PeerMessage{authenticated(1){}}
    assert peer_auth("t") == b"\x12\x03\x0a\x01t"
    assert AUTHENTICATED == b"\x0a\x00"
    decoded = PeerMessage.FromString(b"\x12\x03\x0a\x01t\x28\x07")  # unknown field 5 skipped
    assert decoded.auth_request.token == "t"


async def test_peer_socket_closes_mark_disconnected_and_room_stop(
    local_fishjam: LocalFishjam,
) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    room = await asyncio.to_thread(client.create_room)
    peer, token = await asyncio.to_thread(client.create_peer, room.id)
    async with websockets.connect(fj.ws_url + "/socket/peer/websocket") as ws:
        await ws.send(peer_auth(token))
        await ws.recv()
    await fj.wait_for(lambda: not fj.peer(peer.id).connected, TIMEOUT)
    async with websockets.connect(fj.ws_url + "/socket/peer/websocket") as ws:  # again
        await ws.send(peer_auth(token))
        await ws.recv()
        await asyncio.to_thread(client.delete_room, room.id)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert info.value.rcvd is not None and info.value.rcvd.reason == "Room stopped"
    kinds = [m.WhichOneof("content") for m in fj.notifications.history]
    assert kinds == [
        "room_created",
        "peer_added",
        "peer_connected",
        "peer_disconnected",
        "peer_connected",
        "peer_disconnected",
        "peer_deleted",
        "room_deleted",
    ]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("agent", "invalid token"),
        ("person", "invalid token"),  # connected without a socket
        ("wrong", "invalid token"),
        ("", "missing token"),
        ("media", "unauthenticated"),
        ("garbage", "invalid message"),
    ],
)
async def test_peer_socket_refusals(local_fishjam: LocalFishjam, frame: str, reason: str) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    agent = await fj.add_agent(room)
    person = await fj.join_person(room)
    frames = {
        "agent": peer_auth(agent.token),
        "person": peer_auth(fj.peer(person.peer_id).token),
        "wrong": peer_auth("wrong"),
        "": peer_auth(""),
        "media": PeerMessage(media_event=PeerMessage.MediaEvent(data="x")).SerializeToString(),
        "garbage": b"\xff\xff\xff",
    }
    async with websockets.connect(fj.ws_url + "/socket/peer/websocket") as ws:
        await ws.send(frames[frame])
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert info.value.rcvd is not None and info.value.rcvd.reason == reason


# -- REST fidelity --------------------------------------------------------------------


async def test_room_defaults_and_max_peers(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    room = await asyncio.to_thread(client.create_room)
    assert room.config.max_peers == 0 and room.config.video_codec.value == "h264"
    small = await asyncio.to_thread(client.create_room, RoomOptions(max_peers=1))
    await asyncio.to_thread(client.create_peer, small.id, PeerOptions())
    with pytest.raises(ConflictError, match="peer limit"):
        await asyncio.to_thread(client.create_peer, small.id)
    with pytest.raises(ConflictError):
        await asyncio.to_thread(client.create_agent, small.id)
    with pytest.raises(RoomFullError):
        await fj.join_person(small.id)
    many = [await asyncio.to_thread(client.create_peer, room.id) for _ in range(5)]
    assert len(many) == 5  # 0: no limit


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/livestream"),
        ("POST", "/room/{room}/viewer"),
        ("POST", "/room/{room}/streamer"),
        ("POST", "/moq/access"),
        ("GET", "/recordings"),
        ("POST", "/room/{room}/track_forwardings"),
        ("POST", "/room/{room}/peer"),  # a vapi peer
    ],
)
async def test_out_of_scope_routes_answer_501(
    local_fishjam: LocalFishjam, method: str, path: str
) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    body = {"type": "vapi", "options": {}} if path.endswith("/peer") else {}
    status, answer = await call(fj, method, path.format(room=room), body)
    assert status == 501 and "not implemented by the local Fishjam" in answer["errors"]


async def test_manual_agent_hears_only_what_it_subscribed_to(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    manual = fj.state.add_agent(room, 16000, "manual")
    auto = await fj.add_agent(room)
    ann = await fj.join_person(room)
    bob = await fj.join_person(room)
    async with fishjam_fast.AsyncFishjamClient(fj.url, fj.management_token) as client:
        await client.subscribe_peer(room, manual.id, ann.peer_id)
        await client.subscribe_tracks(room, manual.id, [bob.track_id])
        with pytest.raises(fishjam_fast.FishjamApiError) as info:
            await client.subscribe_tracks(room, manual.id, ["no-such-track"])
        assert info.value.status == 404
        with pytest.raises(fishjam_fast.FishjamApiError) as info:
            await client.subscribe_peer(room, manual.id, "nobody")
        assert info.value.status == 404
        with pytest.raises(TypeError, match="list of track id strings"):
            await client.subscribe_tracks(room, manual.id, "abc")  # type: ignore[arg-type]
    shown = fj.peer(manual.id).to_json()
    assert shown["subscriptions"] == {"peers": [ann.peer_id], "tracks": [bob.track_id]}
    cleo = await fj.join_person(room)
    assert fj.peer(manual.id).hears(ann.peer_id, ann.track_id)
    assert fj.peer(manual.id).hears(bob.peer_id, bob.track_id)
    assert not fj.peer(manual.id).hears(cleo.peer_id, cleo.track_id)
    assert fj.peer(auto.id).hears(cleo.peer_id, cleo.track_id)

    # over the wire: a speaker nobody subscribed to is not heard, one subscribed to is
    agent = fishjam_fast.Agent(manual.id, room, manual.token, fj.url)
    async with agent.connect() as session:
        unheard = await fj.add_speaking_peer(room, AudioSource.tone(440.0, 0.1), realtime=False)
        await unheard.wait_done(TIMEOUT)
        assert unheard.chunks_sent == 5 and unheard.frames_delivered == 0
        heard = await fj.add_speaking_peer(
            room, AudioSource.tone(440.0, 0.1), realtime=False, start=False
        )
        await client_subscribe(fj, room, manual.id, heard.peer_id)
        fj.start_speaking(heard)
        await heard.wait_done(TIMEOUT)
        assert heard.frames_delivered == 5
        first = await asyncio.wait_for(anext(aiter(session.receive())), TIMEOUT)
        assert first.peer_id == heard.peer_id


async def client_subscribe(fj: LocalFishjam, room: str, peer_id: str, target: str) -> None:
    status, _ = await call(
        fj, "POST", f"/room/{room}/peer/{peer_id}/subscribe_peer?peer_id={target}"
    )
    assert status == 200


async def test_plain_sdk_subscribe_calls(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    room = await asyncio.to_thread(client.create_room)
    agent = await asyncio.to_thread(client.create_agent, room.id)
    person = await fj.join_person(room.id)
    await asyncio.to_thread(client.subscribe_peer, room.id, agent.id, person.peer_id)
    await asyncio.to_thread(client.subscribe_tracks, room.id, agent.id, [person.track_id])
    got = await asyncio.to_thread(client.get_room, room.id)
    subs = got.peers[0].subscriptions
    assert (subs.peers, subs.tracks) == ([person.peer_id], [person.track_id])


def test_loud_chunks_agrees_with_the_per_chunk_level() -> None:
    rng = np.random.default_rng(3)
    levels = [0, 10, 100, 180, 200, 3000, 30000]
    chunks = [(rng.standard_normal(320) * a).astype(np.int16).tobytes() for a in levels]
    flags = [rms_dbfs(c) >= -45.0 for c in chunks]
    assert loud_chunks(chunks, -45.0) == flags
    assert flags[0] is False and flags[-1] is True and loud_chunks([]) == []
