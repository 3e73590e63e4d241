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
