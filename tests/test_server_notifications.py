"""The agent server driven by Fishjam's notifications: simulated people join and leave
rooms of the local Fishjam, the default rule starts and ends one job per room, and a
dropped notification socket is reconciled over REST."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.server_helpers import APPS, metrics, until

pytest.importorskip("prometheus_client")
pytest.importorskip("aiohttp")

from fishjam_fast.local import AudioSource
from fishjam_fast.server import AgentServer

Factory = Callable[..., Any]


@pytest.fixture
async def make_server(
    local_fishjam: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Factory]:
    """Starts AgentServers fed by the local Fishjam's notification socket."""
    monkeypatch.syspath_prepend(APPS)
    servers: list[AgentServer] = []

    async def make(entry: str = "server_apps:idle", **options: Any) -> AgentServer:
        options.setdefault("workers", 2)
        options.setdefault("metrics_port", 0)
        options.setdefault("drain_timeout", 0.0)
        server = AgentServer(
            entry,
            fishjam_url=local_fishjam.url,
            management_token=local_fishjam.management_token,
            **options,
        )
        servers.append(server)
        await server.start()
        return server

    yield make
    for server in servers:
        await server.stop(drain=False)


def agent_peers(fj: Any, room_id: str) -> list[str]:
    room = fj.state.rooms.get(room_id)
    return [] if room is None else [p.id for p in room.peers.values() if p.type == "agent"]


def connected_jobs(server: AgentServer) -> list[Any]:
    return [j for j in server.supervisor.jobs() if j.state == "running" and j.connected]


async def test_a_person_joining_starts_the_rooms_job_and_leaving_ends_it(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server("server_apps:echo")
    room_id = await local_fishjam.create_room()
    await until(lambda: True, 0, "")
    person = await local_fishjam.join_person(room_id, audio=AudioSource.tone(440.0, 30.0))
    await until(lambda: len(connected_jobs(server)) == 1, 10, "the room's job runs")
    (job,) = server.supervisor.jobs()
    assert job.request.room_id == room_id
    assert job.request.peer_id == person.peer_id  # the person who triggered it
    record = local_fishjam.agent(job.agent_peer_id)
    await until(
        lambda: any(t.total_bytes > 3200 for t in record.tracks.values()), 10, "the agent hears"
    )
    # a second person: still one job
    second = await local_fishjam.join_person(room_id)
    await until(lambda: len(agent_peers(local_fishjam, room_id)) == 1, 1, "one agent")
    await local_fishjam.leave_person(person.peer_id)
    await local_fishjam.leave_person(second.peer_id)
    await until(lambda: server.supervisor.jobs() == [], 10, "the job ends")
    await until(lambda: agent_peers(local_fishjam, room_id) == [], 10, "its agent peer deleted")
    sample = await metrics(server.http_url)
    assert sample["fishjam_fast_server_dispatch_latency_seconds_count"] == 1


async def test_a_deleted_room_ends_its_job(make_server: Factory, local_fishjam: Any) -> None:
    server = await make_server()
    room_id = await local_fishjam.create_room()
    await local_fishjam.join_person(room_id)
    await until(lambda: len(connected_jobs(server)) == 1, 10, "the room's job runs")
    await local_fishjam.delete_room(room_id)
    await until(lambda: server.supervisor.jobs() == [], 10, "the job ends")


async def test_rooms_with_people_before_the_server_started_get_their_agents(
    local_fishjam: Any, make_server: Factory
) -> None:
    rooms = [await local_fishjam.create_room() for _ in range(3)]
    for room_id in rooms[:2]:
        await local_fishjam.join_person(room_id)
    server = await make_server()  # reconciles over REST on start
    await until(lambda: len(connected_jobs(server)) == 2, 10, "two jobs run")
    assert {j.request.room_id for j in server.supervisor.jobs()} == set(rooms[:2])


@pytest.mark.slow
async def test_200_rooms_filled_by_people_get_200_jobs_spread_evenly_then_none(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server("server_apps:echo", max_jobs=1000)
    rooms = [await local_fishjam.create_room() for _ in range(200)]
    people = [await local_fishjam.join_person(room_id) for room_id in rooms]
    await until(lambda: len(connected_jobs(server)) == 200, 60, "200 jobs run")
    # a second person in each room says something (a person is heard by the agents in
    # the room when it speaks): still one job per room
    people += [
        await local_fishjam.join_person(room_id, audio=AudioSource.tone(300.0, 0.4))
        for room_id in rooms
    ]
    counts = [len(w.jobs) for w in server.supervisor.workers]
    assert sum(counts) == 200 and max(counts) - min(counts) <= 1, counts
    jobs = server.supervisor.jobs()
    assert sorted(j.request.room_id for j in jobs) == sorted(rooms)
    # each agent heard its room: it echoed the person's audio onto its own track
    records = [local_fishjam.agent(j.agent_peer_id) for j in jobs]
    await until(
        lambda: all(any(t.total_bytes > 0 for t in r.tracks.values()) for r in records),
        30,
        "every agent echoed its room",
    )
    for person in people:
        await local_fishjam.leave_person(person.peer_id)
    await until(lambda: server.supervisor.jobs() == [], 30, "every job ends")
    await until(
        lambda: all(agent_peers(local_fishjam, r) == [] for r in rooms),
        30,
        "every agent peer deleted",
    )


async def test_people_joining_while_the_socket_is_down_are_reconciled(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server()
    rooms = [await local_fishjam.create_room() for _ in range(8)]
    early = [await local_fishjam.join_person(room_id) for room_id in rooms[:4]]
    await until(lambda: len(connected_jobs(server)) == 4, 10, "four jobs run")
    assert local_fishjam.drop_notification_sockets() >= 1
    # while the socket is down: people join four rooms and leave two
    for room_id in rooms[4:]:
        await local_fishjam.join_person(room_id)
    for person in early[:2]:
        await local_fishjam.leave_person(person.peer_id)
    wanted = set(rooms[2:])

    def converged() -> bool:
        return {j.request.room_id for j in connected_jobs(server)} == wanted and all(
            len(agent_peers(local_fishjam, r)) == (1 if r in wanted else 0) for r in rooms
        )

    await until(converged, 15, "every room that needs an agent has exactly one")
    assert len(server.supervisor.jobs()) == len(wanted)
    sample = await metrics(server.http_url)
    assert sample["fishjam_fast_server_notification_gaps_total"] >= 1


async def test_webhooks_as_the_source_signed_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import hmac

    import httpx

    from fishjam_fast._proto import server_notifications_pb2
    from fishjam_fast.local import LocalFishjam

    monkeypatch.syspath_prepend(APPS)
    secret = "wh00k-s3cret"
    async with LocalFishjam(webhook_secret=secret) as fj:
        server = AgentServer(
            "server_apps:idle",
            fishjam_url=fj.url,
            management_token=fj.management_token,
            source="webhook",
            webhook_secret=secret,
            workers=1,
            metrics_port=0,
            drain_timeout=0.0,
        )
        async with server:
            assert server.http_url is not None
            hook = server.http_url + "/webhook"
            room_id = await fj.create_room(webhookUrl=hook)
            person = await fj.join_person(room_id)
            await until(lambda: len(connected_jobs(server)) == 1, 10, "the room's job runs")
            assert server.supervisor.jobs()[0].request.peer_id == person.peer_id
            await fj.leave_person(person.peer_id)
            await until(lambda: server.supervisor.jobs() == [], 10, "the job ends")

            # a body Fishjam would send for another room, then forged variants of it
            other = await fj.create_room()
            message = server_notifications_pb2.ServerMessage()
            message.peer_connected.room_id = other
            message.peer_connected.peer_id = "someone"
            message.peer_connected.peer_type = 1  # WEBRTC
            body = message.SerializeToString()
            signed = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            async with httpx.AsyncClient() as client:
                for headers, content, status in [
                    ({}, body, 401),
                    ({"x-fishjam-signature-256": "sha256=" + "0" * 64}, body, 403),
                    ({"x-fishjam-signature-256": signed}, body + b"\x00", 403),
                    ({"x-fishjam-signature-256": signed}, b"x" * 70_000, 413),
                ]:
                    answer = await client.post(hook, headers=headers, content=content)
                    assert answer.status_code == status, answer.text
                assert server.supervisor.jobs() == []  # nothing dispatched
                answer = await client.post(
                    hook, headers={"x-fishjam-signature-256": signed}, content=body
                )
                assert answer.status_code == 200, answer.text
            await until(lambda: len(connected_jobs(server)) == 1, 10, "the forged-free job runs")
            assert server.supervisor.jobs()[0].request.room_id == other


@pytest.mark.slow
def test_the_demo_plays_people_while_the_server_dispatches() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-P", "-m", "fishjam_fast", "demo", "--server", "--agents", "6",
         "--seconds", "4"],
        capture_output=True, text=True, timeout=120, cwd="/",
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "6 rooms" in out, out
    assert "rooms with a person" in out and "jobs (per worker" in out, out
    assert "everyone left: 0 jobs still running, 0 agent peers left" in out, out
