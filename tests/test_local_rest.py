"""The local server's REST subset, judged by the plain SDK's FishjamClient."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from fishjam import AgentOptions, AgentOutputOptions, FishjamClient, PeerOptions, RoomOptions
from fishjam.errors import NotFoundError, UnauthorizedError

from fishjam_fast.local import LocalFishjam


async def test_plain_client_manages_rooms_and_peers(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    room = await asyncio.to_thread(
        client.create_room, RoomOptions(max_peers=5, room_type="audio_only", video_codec="h264")
    )
    assert room.config.max_peers == 5 and room.config.room_type.value == "audio_only"
    agent = await asyncio.to_thread(
        client.create_agent,
        room.id,
        AgentOptions(output=AgentOutputOptions(audio_sample_rate=24000)),
    )
    assert agent._socket_url == f"{fj.ws_url}/socket/agent/websocket"
    assert fj.peer(agent.id).output_sample_rate == 24000
    peer, token = await asyncio.to_thread(
        client.create_peer, room.id, PeerOptions(metadata={"n": 1})
    )
    # the real server's shape: what the peer set itself, and what was given at creation
    assert token and peer.metadata.additional_properties == {"peer": {}, "server": {"n": 1}}

    got = await asyncio.to_thread(client.get_room, room.id)
    assert [(p.id, p.type_.value, p.status.value) for p in got.peers] == [
        (agent.id, "agent", "disconnected"),
        (peer.id, "webrtc", "disconnected"),
    ]
    rooms = await asyncio.to_thread(client.get_all_rooms)
    assert [r.id for r in rooms] == [room.id]

    await asyncio.to_thread(client.delete_peer, room.id, agent.id)
    got = await asyncio.to_thread(client.get_room, room.id)
    assert [p.id for p in got.peers] == [peer.id]
    await asyncio.to_thread(client.delete_room, room.id)
    assert await asyncio.to_thread(client.get_all_rooms) == []
    await asyncio.to_thread(client.check_credentials)


async def test_plain_client_errors(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    client = FishjamClient(fj.url, fj.management_token)
    with pytest.raises(NotFoundError, match="does not exist"):
        await asyncio.to_thread(client.get_room, "nope")
    with pytest.raises(NotFoundError):
        await asyncio.to_thread(client.create_agent, "nope")
    room = await asyncio.to_thread(client.create_room)
    with pytest.raises(NotFoundError, match="doesn't exist"):
        await asyncio.to_thread(client.delete_peer, room.id, "nope")
    bad = FishjamClient(fj.url, "wrong-token")
    with pytest.raises(UnauthorizedError, match="Invalid token"):
        await asyncio.to_thread(bad.create_room)
    with pytest.raises(UnauthorizedError):
        await asyncio.to_thread(bad.get_room, room.id)


async def test_path_prefix(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    base = f"{fj.url}/api/v1/connect/my-fishjam"
    client = FishjamClient(base, fj.management_token)
    room = await asyncio.to_thread(client.create_room)
    agent = await asyncio.to_thread(client.create_agent, room.id)
    assert agent._socket_url == f"{fj.ws_url}/api/v1/connect/my-fishjam/socket/agent/websocket"
    async with agent.connect():
        await fj.wait_connected(agent.id, timeout=5)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "errors"),
    [
        ("GET", "/room", None, {}, 401, "Missing token"),
        ("GET", "/room", None, {"Authorization": "Bearer nope"}, 401, "Invalid token"),
        ("POST", "/room", b"{not json", None, 400, "Invalid request body structure"),
        ("POST", "/room", b'{"roomType": "party"}', None, 400, "Invalid room type: party"),
        ("GET", "/room/unknown", None, None, 404, "Room unknown does not exist"),
        ("DELETE", "/room/unknown", None, None, 404, "Room unknown does not exist"),
        ("POST", "/room/{room}/peer", b'{"type": "sip"}', None, 400, "Invalid peer type: sip"),
        ("POST", "/room/{room}/peer", b"{}", None, 400, "Peer type not provided"),
        ("POST", "/room/{room}/peer", b"[1]", None, 400, "Invalid request body structure"),
        (
            "POST",
            "/room/{room}/peer",
            b'{"type": "agent", "options": {"output": {"audioSampleRate": 8000}}}',
            None,
            400,
            "Unsupported audio sample rate: 8000",
        ),
        (
            "DELETE",
            "/room/{room}/peer/unknown",
            None,
            None,
            404,
            "Peer with id unknown doesn't exist",
        ),
        ("GET", "/nowhere", None, None, 404, "Not Found"),
        # unknown paths answer 404 before the token is checked (401 is for known routes)
        ("GET", "/nowhere", None, {}, 404, "Not Found"),
        ("GET", "/room/x/nowhere", None, {"Authorization": "Bearer nope"}, 404, "Not Found"),
        ("PUT", "/room", None, {}, 405, "Method Not Allowed"),
        (
            "POST",
            "/room/{room}/peer",
            b'{"type": "agent", "options": {"subscribeMode": "x"}}',
            None,
            400,
            "Invalid subscribe mode: x",
        ),
    ],
)
async def test_rest_error_bodies(
    local_fishjam: LocalFishjam,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str] | None,
    status: int,
    errors: str,
) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    if headers is None:
        headers = {"Authorization": f"Bearer {fj.management_token}"}
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method, fj.url + path.format(room=room), data=body, headers=headers
        ) as resp:
            assert resp.status == status
            assert resp.content_type == "application/json"
            assert await resp.json() == {"errors": errors}


async def test_snake_case_agent_options_and_refresh_token(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    auth = {"Authorization": f"Bearer {fj.management_token}"}
    body = {
        "type": "agent",
        "options": {"output": {"audio_format": "pcm16", "audio_sample_rate": 24000}},
    }
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(f"{fj.url}/room/{room}/peer", json=body) as resp:
            assert resp.status == 201
            data = (await resp.json())["data"]
        assert data["peer_websocket_url"] == f"{fj.ws_url}/socket/agent/websocket"
        assert fj.peer(data["peer"]["id"]).output_sample_rate == 24000
        url = f"{fj.url}/room/{room}/peer/{data['peer']['id']}/refresh_token"
        async with http.post(url) as resp:
            assert resp.status == 201
            token = (await resp.json())["data"]["token"]
    assert token != data["token"] and fj.peer(data["peer"]["id"]).token == token
