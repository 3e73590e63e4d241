"""The agent server with real worker processes against the local Fishjam: explicit
dispatch, placement, a killed or hung worker, drain, a full server, a crashing
entrypoint, the HTTP port."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_helpers import APPS, metrics, until

pytest.importorskip("prometheus_client")
pytest.importorskip("aiohttp")

from fishjam_fast.server import AgentServer, ServerFullError

Factory = Callable[..., Any]


@pytest.fixture
async def make_server(
    local_fishjam: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Factory]:
    """Starts AgentServers on the local Fishjam (explicit dispatch only: no notification
    source before the notifier exists); stops them after the test."""
    monkeypatch.syspath_prepend(APPS)
    servers: list[AgentServer] = []

    async def make(entry: str = "server_apps:idle", **options: Any) -> AgentServer:
        options.setdefault("workers", 2)
        options.setdefault("metrics_port", 0)
        options.setdefault("source", "none")
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


def running(server: AgentServer) -> list[Any]:
    return [j for j in server.supervisor.jobs() if j.state == "running" and j.connected]


def agent_peers(fj: Any, room_id: str) -> list[str]:
    return [p.id for p in fj.state.room(room_id).peers.values() if p.type == "agent"]


async def test_explicit_dispatch_runs_a_job_whose_agent_hears_its_room(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server("server_apps:echo")
    room_id = await local_fishjam.create_room()
    await local_fishjam.add_speaking_peer(room_id, loop=True)
    job_id = await server.dispatch(room_id, {"hello": 1})
    await until(lambda: len(running(server)) == 1, 10, "the job runs")
    (job,) = server.supervisor.jobs()
    assert job.id == job_id
    record = local_fishjam.agent(job.agent_peer_id)
    await until(
        lambda: any(t.total_bytes > 3200 for t in record.tracks.values()), 10, "echoed audio"
    )
    (track,) = record.tracks.values()
    where = track.metadata_json
    # it ran in a worker process (not here), after that process's prewarm
    assert where["pid"] in {w.pid for w in server.supervisor.workers}
    assert where["pid"] != os.getpid()
    assert where["prewarmed"] is True
    # the worker froze what prewarm and the imports made (its collections skip it)
    assert where["frozen"] > 1000
    assert where["job"] == job_id
    # ending the job deletes its agent peer
    server.supervisor.cancel(job_id)
    await until(lambda: not agent_peers(local_fishjam, room_id), 10, "agent peer deleted")
    assert server.supervisor.jobs() == []


async def test_rooms_spread_over_workers_within_one_job(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server()
    rooms = [await local_fishjam.create_room() for _ in range(11)]
    for room_id in rooms:
        await server.dispatch(room_id)
    await until(lambda: len(running(server)) == 11, 15, "11 jobs run")
    counts = [len(w.jobs) for w in server.supervisor.workers]
    assert sum(counts) == 11
    assert max(counts) - min(counts) <= 1, counts
    assert {j.request.room_id for j in server.supervisor.jobs()} == set(rooms)


@pytest.mark.slow  # processes and seconds of waiting
async def test_a_killed_worker_has_its_jobs_back_elsewhere_with_the_same_peers(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server()
    rooms = [await local_fishjam.create_room() for _ in range(6)]
    for room_id in rooms:
        await server.dispatch(room_id)
    await until(lambda: len(running(server)) == 6, 15, "6 jobs run")
    victim = server.supervisor.workers[0]
    survivor = server.supervisor.workers[1]
    peers_before = {j.id: j.agent_peer_id for j in server.supervisor.jobs()}
    victims = {j.id for j in victim.jobs.values()}
    untouched = {j.id: j.attempt for j in survivor.jobs.values()}
    assert victims and untouched
    os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
    took = await until(
        lambda: (
            len(running(server)) == 6
            and all(j.attempt == 2 for j in running(server) if j.id in victims)
        ),
        5,
        "the killed worker's jobs run again",
    )
    assert took < 5
    after = {j.id: j for j in server.supervisor.jobs()}
    # the same jobs, with the same agent peers (they still existed)
    assert {i: j.agent_peer_id for i, j in after.items()} == peers_before
    # nothing else disturbed: the survivor's jobs were not started again
    assert all(after[i].attempt == a for i, a in untouched.items())
    for i in untouched:
        assert len(local_fishjam.agent(after[i].agent_peer_id).connections) == 1
    # the slot is restarted and takes jobs again
    await until(lambda: victim.ready and victim.pid is not None, 15, "the worker restarted")
    assert victim.restarts == 1
    sample = await metrics(server.http_url)
    assert sample['fishjam_fast_server_worker_restarts_total{worker="0"}'] == 1
    assert sample["fishjam_fast_server_jobs_replaced_total"] == len(victims)


@pytest.mark.slow  # processes and seconds of waiting
async def test_a_worker_that_stops_answering_is_replaced(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server(worker_timeout=1.5, report_interval=0.25)
    rooms = [await local_fishjam.create_room() for _ in range(2)]
    for room_id in rooms:
        await server.dispatch(room_id)
    await until(lambda: len(running(server)) == 2, 15, "2 jobs run")
    hung = server.supervisor.workers[0]
    pid = hung.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # alive, silent
    try:
        await until(lambda: hung.restarts == 1, 10, "the silent worker replaced")
    finally:
        with contextlib_suppress():
            os.kill(pid, signal.SIGCONT)
    await until(lambda: len(running(server)) == 2, 10, "its job runs elsewhere")


def contextlib_suppress() -> Any:
    import contextlib

    return contextlib.suppress(ProcessLookupError)


async def test_a_crashing_entrypoint_fails_that_job_only(
    make_server: Factory, local_fishjam: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server("server_apps:crash")
    good, bad = await local_fishjam.create_room(), await local_fishjam.create_room()
    await server.dispatch(good)
    await until(lambda: len(running(server)) == 1, 10, "the good job runs")
    with caplog.at_level(logging.INFO, logger="fishjam_fast.server"):
        await server.dispatch(bad, {"crash": True})
        await until(lambda: len(server.supervisor.jobs()) == 1, 10, "the bad job ended")
        await until(lambda: not agent_peers(local_fishjam, bad), 10, "its agent peer deleted")
    assert [j.request.room_id for j in running(server)] == [good]
    sample = await metrics(server.http_url)
    failed = sum(
        v for k, v in sample.items() if k.startswith("fishjam_fast_server_jobs_failed_total")
    )
    assert failed == 1
    ended = [r.getMessage() for r in caplog.records if "ended in room " + bad in r.getMessage()]
    assert ended and "failed" in ended[0] and "RuntimeError" in ended[0]


async def test_a_full_server_refuses_when_told_to(
    make_server: Factory, local_fishjam: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(workers=1, max_jobs=1, when_full="refuse")
    first, second = await local_fishjam.create_room(), await local_fishjam.create_room()
    await server.dispatch(first)
    with caplog.at_level(logging.WARNING, logger="fishjam_fast.server"):
        with pytest.raises(ServerFullError, match="every worker is full"):
            await server.dispatch(second)
    assert any("refused: full" in r.getMessage() for r in caplog.records)
    sample = await metrics(server.http_url)
    assert sample['fishjam_fast_server_jobs_refused_total{reason="full"}'] == 1
    assert [j.request.room_id for j in server.supervisor.jobs()] == [first]
    assert agent_peers(local_fishjam, second) == []


async def test_a_full_server_makes_jobs_wait_then_runs_or_refuses_them(
    make_server: Factory, local_fishjam: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(
        "server_apps:finite", workers=1, max_jobs=1, when_full="wait", job_wait_timeout=1.0
    )
    rooms = [await local_fishjam.create_room() for _ in range(3)]
    await server.dispatch(rooms[0], {"seconds": 0.5})
    with caplog.at_level(logging.WARNING, logger="fishjam_fast.server"):
        await server.dispatch(rooms[1], {"seconds": 3})  # waits, then runs
        await server.dispatch(rooms[2], {"seconds": 3})  # waits, then times out
        assert server.supervisor.waiting == 2
        await until(lambda: server.supervisor.waiting == 0, 5, "the queue empties")
    assert any("waits" in r.getMessage() for r in caplog.records)
    assert any("refused: wait_timeout" in r.getMessage() for r in caplog.records)
    assert [j.request.room_id for j in server.supervisor.jobs()] == [rooms[1]]
    sample = await metrics(server.http_url)
    assert sample['fishjam_fast_server_jobs_refused_total{reason="wait_timeout"}'] == 1
    assert sample['fishjam_fast_server_jobs_started_total{worker="0"}'] == 2


@pytest.mark.slow  # processes and seconds of waiting
async def test_stop_drains_running_jobs_that_end_by_themselves(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server("server_apps:finite", drain_timeout=30.0)
    room_id = await local_fishjam.create_room()
    await server.dispatch(room_id, {"seconds": 1.0})
    await until(lambda: len(running(server)) == 1, 10, "the job runs")
    start = asyncio.get_running_loop().time()
    await server.stop()
    took = asyncio.get_running_loop().time() - start
    assert took < 10  # the job ended by itself after ~1 s: no 30 s wait
    assert agent_peers(local_fishjam, room_id) == []
    with pytest.raises(Exception, match="draining"):
        await server.dispatch(room_id)


@pytest.mark.slow  # a server process, signalled
@pytest.mark.parametrize(
    ("signals", "drain_timeout", "limit", "said"),
    [
        ([signal.SIGTERM], 1.5, 1.5 + 5, "SIGTERM: draining"),
        # a drain of 60 s cut short by the second SIGINT
        ([signal.SIGINT, signal.SIGINT], 60.0, 10, "SIGINT again: stopping now"),
    ],
    ids=["sigterm-drains", "sigint-twice-stops-now"],
)
async def test_signals_drain_or_stop_and_exit_0(
    local_fishjam: Any,
    tmp_path: Path,
    signals: list[signal.Signals],
    drain_timeout: float,
    limit: float,
    said: str,
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [APPS, os.environ.get("PYTHONPATH")])),
        "FISHJAM_MANAGEMENT_TOKEN": local_fishjam.management_token,
        "FISHJAM_FAST_DISPATCH_TOKEN": "d1spatch",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", "fishjam_fast", "serve", "server_apps:slow_exit",
        "--fishjam-url", local_fishjam.url, "--workers", "1", "--metrics-port", "0",
        "--source", "none", "--drain-timeout", str(drain_timeout),
        env=env, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    # (not from the repository's root: serve puts its working directory first on the
    # workers' path, where the source tree, without the extension, would be imported)
    assert process.stderr is not None
    lines: list[str] = []
    try:
        url = ""
        async with asyncio.timeout(30):
            while not url:
                line = (await process.stderr.readline()).decode()
                assert line, "the server exited: " + "".join(lines)
                lines.append(line)
                if "agent server ready" in line:
                    url = line.rsplit("HTTP ", 1)[1].strip()
        pid = int(next(x for x in lines if "worker 0 ready" in x).split("pid ")[1].rstrip(")\n"))
        with (
            open(f"/proc/{pid}/cmdline", "rb") as cmdline,
            open(f"/proc/{pid}/environ", "rb") as environ,
        ):
            worker_identity = cmdline.read() + environ.read()
        rooms = [await local_fishjam.create_room() for _ in range(2)]
        async with httpx.AsyncClient(headers={"Authorization": "Bearer d1spatch"}) as client:
            for room_id in rooms:
                answer = await client.post(
                    url + "/dispatch", json={"room_id": room_id, "metadata": {"linger": 0.2}}
                )
                assert answer.status_code == 202, answer.text
        await until(
            lambda: all(
                agent_peers(local_fishjam, r)
                and local_fishjam.connection(agent_peers(local_fishjam, r)[0])
                for r in rooms
            ),
            10,
            "both agents connected",
        )
        start = asyncio.get_running_loop().time()
        for number in signals:
            process.send_signal(number)
            await asyncio.sleep(0.3)
        rest = await asyncio.wait_for(process.stderr.read(), 30)
        code = await process.wait()
        took = asyncio.get_running_loop().time() - start
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = "".join(lines) + rest.decode()
    assert code == 0, log
    assert took < limit, took  # drain_timeout (or none), then cancel and clean up
    assert said in log
    assert "cancelling 2 jobs" in log
    assert all(agent_peers(local_fishjam, r) == [] for r in rooms)
    assert local_fishjam.management_token not in log
    # the worker had it neither in its command line nor in its environment
    assert worker_identity and local_fishjam.management_token.encode() not in worker_identity


async def test_the_http_port(make_server: Factory, local_fishjam: Any) -> None:
    server = await make_server(dispatch_token="t0ken", max_body_size=1024)
    url = server.http_url
    assert url is not None and url.startswith("http://127.0.0.1:")
    room_id = await local_fishjam.create_room()
    async with httpx.AsyncClient() as client:
        health = await client.get(url + "/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["workers_ready"] == 2
        good = {"Authorization": "Bearer t0ken"}
        refusals = [
            (401, {}, {"room_id": room_id}),
            (401, {"Authorization": "Bearer wrong"}, {"room_id": room_id}),
            (401, {"Authorization": "t0ken"}, {"room_id": room_id}),
            (400, good, ["room_id", room_id]),
            (400, good, {"room": room_id}),
            (400, good, {"room_id": ""}),
            (400, good, {"room_id": room_id, "extra": 1}),
        ]
        for status, headers, body in refusals:
            answer = await client.post(url + "/dispatch", headers=headers, json=body)
            assert answer.status_code == status, (body, answer.text)
            assert "errors" in answer.json()
        malformed = await client.post(url + "/dispatch", headers=good, content=b"{room")
        assert malformed.status_code == 400
        big = {"room_id": room_id, "metadata": "x" * 2000}
        oversized = await client.post(url + "/dispatch", headers=good, json=big)
        assert oversized.status_code == 413
        assert server.supervisor.jobs() == []  # nothing dispatched
        answer = await client.post(url + "/dispatch", headers=good, json={"room_id": room_id})
        assert answer.status_code == 202
        job_id = answer.json()["job_id"]
    await until(lambda: len(running(server)) == 1, 10, "the job runs")
    assert running(server)[0].id == job_id
    sample = await metrics(url)
    for name in (
        "fishjam_fast_server_jobs_active",
        "fishjam_fast_server_jobs_started_total",
        "fishjam_fast_server_jobs_failed_total",
        "fishjam_fast_server_jobs_refused_total",
        "fishjam_fast_server_worker_load",
        "fishjam_fast_server_worker_event_loop_lag_seconds",
        "fishjam_fast_server_agents_connected",
        "fishjam_fast_server_agent_reconnects_total",
        "fishjam_fast_server_agent_bytes_sent_total",
        "fishjam_fast_server_agent_bytes_received_total",
        "fishjam_fast_server_agent_messages_sent_total",
        "fishjam_fast_server_agent_messages_received_total",
        "fishjam_fast_server_dispatch_latency_seconds_count",
        "fishjam_fast_server_workers_ready",
    ):
        assert any(k.startswith(name) for k in sample), name
    await until(lambda: True, 0, "")
    assert sample["fishjam_fast_server_dispatch_latency_seconds_count"] == 1
    assert local_fishjam.management_token not in str(sample)


async def test_http_dispatch_is_refused_without_a_configured_token(
    make_server: Factory, local_fishjam: Any
) -> None:
    server = await make_server()
    room_id = await local_fishjam.create_room()
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            server.http_url + "/dispatch",
            headers={"Authorization": "Bearer anything"},
            json={"room_id": room_id},
        )
    assert answer.status_code == 401
    assert "disabled" in answer.json()["errors"]
    assert server.supervisor.jobs() == []


async def test_the_example_entrypoint_echoes_its_room(
    local_fishjam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = Path(__file__).parent.parent / "examples"
    monkeypatch.syspath_prepend(str(examples))
    server = AgentServer(
        "agent_server:entry",
        fishjam_url=local_fishjam.url,
        management_token=local_fishjam.management_token,
        source="none",
        workers=1,
        metrics_port=None,
        drain_timeout=0.5,  # leaving the block drains: the echo never ends by itself
    )
    async with server:
        room_id = await local_fishjam.create_room()
        await local_fishjam.add_speaking_peer(room_id, loop=True)
        await server.dispatch(room_id)
        await until(lambda: len(running(server)) == 1, 10, "the job runs")
        record = local_fishjam.agent(running(server)[0].agent_peer_id)
        await until(lambda: any(t.total_bytes > 3200 for t in record.tracks.values()), 10, "echo")
        (track,) = record.tracks.values()
        assert track.metadata_json["warmed_at"] > 0  # prewarm ran in the worker first
    assert agent_peers(local_fishjam, room_id) == []


async def test_a_job_taken_over_waits_for_fishjam_to_release_the_old_connection(
    local_fishjam: Any,
) -> None:
    from fishjam_fast import Agent, AgentAuthError
    from fishjam_fast.server.worker import _JobAgent

    room_id = await local_fishjam.create_room()
    peer = await local_fishjam.add_agent(room_id)
    sessions: list[Any] = []

    def make(takeover: bool) -> _JobAgent:
        return _JobAgent(
            peer.id,
            room_id,
            peer.token,
            local_fishjam.url,
            on_session=sessions.append,
            takeover=takeover,
        )

    old = Agent(peer.id, room_id, peer.token, local_fishjam.url)
    async with old.connect():
        # a first start is refused at once: the peer is someone else's
        with pytest.raises(AgentAuthError, match="peer already connected"):
            async with make(takeover=False).connect():
                pass
        # a takeover retries until the old connection is gone
        takeover = asyncio.create_task(_connect_and_report(make(takeover=True)))
        await asyncio.sleep(0.3)
        assert not takeover.done()
    assert await asyncio.wait_for(takeover, 5) is True
    assert len(sessions) == 1


async def _connect_and_report(agent: Any) -> bool:
    async with agent.connect():
        return True


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ("server_apps:no_such_entry", "server_apps has no 'no_such_entry'"),
        ("no_such_module_anywhere:entry", "ModuleNotFoundError"),
    ],
)
async def test_an_entrypoint_that_cannot_load_fails_start_with_its_reason(
    local_fishjam: Any, monkeypatch: pytest.MonkeyPatch, entry: str, error: str
) -> None:
    monkeypatch.syspath_prepend(APPS)
    server = AgentServer(
        entry,
        fishjam_url=local_fishjam.url,
        management_token=local_fishjam.management_token,
        source="none",
        workers=1,
        metrics_port=0,
    )
    with pytest.raises(RuntimeError, match=error):
        await server.start()
    # nothing left behind: no worker process, no HTTP port
    assert all(w.process is None for w in server.supervisor.workers)
    assert server.http_url is None


async def test_a_killed_workers_jobs_get_a_new_peer_or_end_with_their_room(
    make_server: Factory, local_fishjam: Any
) -> None:
    # slow_exit outlives its session: the jobs keep running when their peer or room goes
    server = await make_server("server_apps:slow_exit")
    rooms = [await local_fishjam.create_room() for _ in range(4)]
    for room_id in rooms:
        await server.dispatch(room_id)
    await until(lambda: len(running(server)) == 4, 15, "4 jobs run")
    victim = server.supervisor.workers[0]
    lost_peer, lost_room = sorted(victim.jobs.values(), key=lambda j: j.id)
    old_peer = lost_peer.agent_peer_id
    await local_fishjam.remove_peer(lost_peer.request.room_id, old_peer)
    await local_fishjam.delete_room(lost_room.request.room_id)
    os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
    await until(
        lambda: lost_room.id not in {j.id for j in server.supervisor.jobs()},
        5,
        "the job of the deleted room ends",
    )
    await until(lambda: lost_peer.connected and lost_peer.attempt == 2, 5, "a new peer")
    assert lost_peer.agent_peer_id not in (None, old_peer)
    assert agent_peers(local_fishjam, lost_peer.request.room_id) == [lost_peer.agent_peer_id]
    assert len(server.supervisor.jobs()) == 3


@pytest.mark.slow  # processes and seconds of waiting
async def test_serve_without_a_url_starts_a_local_fishjam_and_follows_it(tmp_path: Any) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FISHJAM_")},
        "PYTHONPATH": os.pathsep.join(filter(None, [APPS, os.environ.get("PYTHONPATH")])),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", "fishjam_fast", "serve", "server_apps:idle",
        "--workers", "1", "--metrics-port", "0", "--drain-timeout", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("local Fishjam at http://127.0.0.1:"), line
        url = line.split()[3]
        token = line.rsplit("management token: ", 1)[1].rstrip(")\n")
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            log = ""
            async with asyncio.timeout(30):
                while "agent server ready" not in log:
                    log += (await process.stderr.readline()).decode()
            room = (await client.post("/room", json={})).json()["data"]["room"]["id"]
            joined = await client.post(f"/local/room/{room}/person", json={})
            assert joined.status_code == 201, joined.text
            async with asyncio.timeout(15):
                while f"started in room {room}" not in log:
                    log += (await process.stderr.readline()).decode()
            process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(process.stderr.read(), 30)
            assert await process.wait() == 0, log + rest.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert token not in log + rest.decode()  # printed once on stdout, never logged
