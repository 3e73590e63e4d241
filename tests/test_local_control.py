"""The /local/ control endpoints drive a server in another process."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from fishjam.agent import Agent, OutgoingAudioTrackOptions

from fishjam_fast.local import LocalFishjam
from tests.raw_agent import TIMEOUT, RawAgent

EVENT_LOOPS = ("asyncio",)


def _call(
    fj: LocalFishjam, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fj.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token or fj.management_token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def call(
    fj: LocalFishjam, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    return await asyncio.to_thread(_call, fj, method, path, body, token)


async def test_speaking_peer_echo_latency_and_summary(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room, sample_rate=16000)
    agent = Agent(peer.id, room, peer.token, fj.url)
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        status, body = await call(
            fj,
            "POST",
            f"/local/room/{room}/speaking_peer",
            {"source": "noise", "chunks": 10, "realtime": False},
        )
        assert status == 201 and set(body["data"]) == {"peer_id", "track_id"}
        received = 0
        async for message in session.receive():
            await track.send_chunk(message.data)  # echo
            received += 1
            if received == 10:
                break
        await fj.wait_bytes(fj.agent(peer.id).track(0), 6400)
        status, body = await call(fj, "GET", f"/local/agent/{peer.id}")
    assert status == 200
    summary = body["data"]
    assert summary["track_data_sent"] == 10
    assert summary["tracks"][0]["chunk_count"] == 10 and summary["tracks"][0]["total_bytes"] == 6400
    assert len(summary["echo_latencies"]) == 10 and all(
        0 <= x < 5 for x in summary["echo_latencies"]
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/local/room/nope/speaking_peer", {}, 404),
        ("POST", "/local/room/{room}/speaking_peer", {"source": "violin"}, 400),
        ("POST", "/local/room/{room}/speaking_peer", {"chunks": -1}, 400),
        ("GET", "/local/agent/nope", None, 404),
        ("POST", "/local/agent/{agent}/flood", {"count": 3}, 409),
        ("POST", "/local/agent/{agent}/drop", {}, 409),
        ("GET", "/local/agent/{agent}/track/nope", None, 404),
        ("POST", "/local/token/revoke", {"token": "never-issued"}, 404),
        ("POST", "/local/token/revoke", {"token": 3}, 400),
        ("POST", "/local/restart", {"downtime": -1}, 400),
        ("POST", "/local/restart", {"downtime": True}, 400),
        ("POST", "/local/restart", {"downtime": 61}, 400),
    ],
)
async def test_control_errors(
    local_fishjam: LocalFishjam, method: str, path: str, body: Any, status: int
) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    got, answer = await call(fj, method, path.format(room=room, agent=peer.id), body)
    assert got == status and "errors" in answer


async def test_control_needs_the_management_token(local_fishjam: LocalFishjam) -> None:
    status, _ = await call(local_fishjam, "GET", "/local/agent/x", token="wrong")
    assert status == 401


async def test_video_peer_answers_capture(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    status, body = await call(
        fj, "POST", f"/local/room/{room}/video_peer", {"width": 8, "height": 8}
    )
    assert status == 201
    assert fj.peer(body["data"]["peer_id"]).tracks[0].id == body["data"]["track_id"]


async def test_reconnect_and_playout_routes(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    first = await RawAgent.connect(fj.agent_socket_url, peer.token)
    await first.add_track("t")
    await first.send("t", bytes(16000))  # half a second
    await fj.wait_bytes(await fj.wait_track(peer.id, 0, TIMEOUT), 16000, TIMEOUT)
    status, body = await call(fj, "GET", f"/local/agent/{peer.id}/track/t")
    track = body["data"]
    assert status == 200 and track["total_bytes"] == 16000 and track["encoding"] == 0
    assert track["played_s"] + track["held_s"] == pytest.approx(0.5, abs=1e-12)
    assert track["max_held_s"] == 0.5 and track["arrivals"][0][1:] == [16000, 0.5]
    assert track["arrivals"][0][0] <= track["at"]

    status, body = await call(fj, "POST", f"/local/agent/{peer.id}/drop", {})
    assert (status, body["data"]) == (200, {"dropped": 1})
    assert (await first.wait_closed()).rcvd is None
    second = await RawAgent.connect(fj.agent_socket_url, peer.token)
    await fj.wait_for(lambda: fj.sockets.open_count == 1, TIMEOUT)  # the first one ended
    status, body = await call(fj, "POST", "/local/agents/drop", {})
    assert body["data"] == {"dropped": 1}
    await second.wait_closed()
    status, body = await call(fj, "POST", "/local/token/revoke", {"token": peer.token})
    assert (status, body["data"]) == (200, {"peer_id": peer.id})
    assert await RawAgent.refused(fj.agent_socket_url, peer.token) == (1000, "invalid token")

    status, body = await call(fj, "GET", f"/local/agent/{peer.id}")
    summary = body["data"]
    assert [(a["token"], a["accepted"], a["reason"]) for a in summary["auth_attempts"]] == [
        (peer.token, True, ""),
        (peer.token, True, ""),
        (peer.token, False, "invalid token"),
    ]
    log = summary["connection_log"]
    assert [c["token"] for c in log] == [peer.token, peer.token]
    assert log[0]["track_log"] == [[1, "add_track", "t"], [2, "track_data", "t"]]
    assert log[1]["track_log"] == [] and log[1]["closed_at"] is not None
    assert summary["tracks"][0]["ended"] and summary["tracks"][0]["held_s"] == 0


async def test_restart_route(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    agent = await RawAgent.connect(fj.agent_socket_url, peer.token)
    status, body = await call(fj, "POST", "/local/restart", {"downtime": 0.05})
    assert (status, body["data"]) == (202, {"restarts": 1})
    assert (await agent.wait_closed()).rcvd is None
    await fj.wait_for(lambda: fj.restarts == 1, TIMEOUT)
    status, body = await call(fj, "GET", "/local/server")
    data = body["data"]
    assert {k: data[k] for k in ("restarts", "open_sockets", "rooms")} == {
        "restarts": 1,
        "open_sockets": 0,
        "rooms": 1,
    }
    # room created, peer added, connected, metadata updated; disconnected by the restart
    assert (data["notifications_emitted"], data["notification_sockets"]) == (5, 0)
    again = await RawAgent.connect(fj.agent_socket_url, peer.token)
    await again.close()
