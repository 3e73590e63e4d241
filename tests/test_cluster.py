"""The agent server on several boxes sharing one Redis: real ``serve --redis`` processes,
a real redis-server (ours, on a random loopback port) and the local Fishjam. One agent
per room across boxes, spread, a SIGKILLed box, SIGTERM handover, a restarted Redis, a
box cut from Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster_helpers import (
    DISPATCH_TOKEN,
    REQUIRE,
    AgentWatch,
    Box,
    Proxy,
    RedisServer,
    connected_agents,
    find_redis_server,
    free_port,
    start_box,
    stop_boxes,
    wait_for,
)
from tests.server_helpers import APPS, metrics

pytest.importorskip("prometheus_client")
pytest.importorskip("aiohttp")
redis_asyncio = pytest.importorskip("redis.asyncio")

from fishjam_fast.server.cluster import (  # noqa: E402 (redis, skipped above)
    ORPHAN_SCAN_EVERY,
    TAKE_BATCH,
)

LEASE = 2.0

# the boxes are processes of their own (on uvloop): the test's loop only watches them
EVENT_LOOPS = ("asyncio",)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = find_redis_server()
    if binary is None:
        message = "redis-server is not on PATH (apt-get install redis-server)"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{message}; {REQUIRE}=1 requires it", pytrace=False)
        pytest.skip(message)
    server = RedisServer(binary, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def boxes(local_fishjam: Any, tmp_path: Path) -> AsyncIterator[list[Box]]:
    started: list[Box] = []
    yield started
    await stop_boxes(started)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Any]:
    client = redis_asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


async def launch(
    boxes: list[Box], count: int, fishjam: Any, redis_url: str, tmp_path: Path, **kw: Any
) -> list[Box]:
    new = [
        await start_box(f"{len(boxes) + i}", tmp_path, fishjam, redis_url, **kw)
        for i in range(count)
    ]
    boxes.extend(new)
    await asyncio.gather(*(box.ready() for box in new))
    return new


async def dispatch(box: Box, rooms: list[str], metadata: Any = None) -> list[str]:
    keys = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DISPATCH_TOKEN}"}) as client:
        for room_id in rooms:
            body = {"room_id": room_id, "metadata": metadata}
            answer = await client.post(box.url + "/dispatch", json=body)
            assert answer.status_code == 202, answer.text
            keys.append(answer.json()["job_id"])
    return keys


async def owners(redis: Any, keys: list[str]) -> dict[str, str | None]:
    """Job key -> the box id holding its lease (``host:pid:random``)."""
    values = await redis.mget([f"fishjam_fast:lease:{k}" for k in keys])
    return dict(zip(keys, values, strict=True))


def pid_of(box_id: str | None) -> int | None:
    return int(box_id.split(":")[1]) if box_id else None


async def until_async(predicate: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not await predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def each_room_has_one_agent(fishjam: Any, rooms: list[str]) -> bool:
    agents = connected_agents(fishjam)
    return all(len(agents.get(r, [])) == 1 for r in rooms)


async def test_boxes_share_rooms_one_agent_each_and_a_killed_box_rooms_move(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    await launch(boxes, 3, local_fishjam, redis_server.url, tmp_path, lease_ttl=LEASE)
    watch = AgentWatch(local_fishjam)
    watch.start()
    rooms = [await local_fishjam.create_room() for _ in range(30)]
    keys = await dispatch(boxes[0], rooms)
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 30, "30 agents")
    held = await owners(redis, keys)
    per_box = {box.pid: sum(1 for o in held.values() if pid_of(o) == box.pid) for box in boxes}
    assert sum(per_box.values()) == 30, held
    # least-loaded first: during a burst a box takes up to a batch of requests at its
    # turn, so none gets more than a batch ahead (the 300-room test asserts 10% of even)
    assert max(per_box.values()) - min(per_box.values()) <= TAKE_BATCH, per_box
    assert min(per_box.values()) >= 1, per_box
    peers_before = {r: connected_agents(local_fishjam)[r][0] for r in rooms}
    # the fleet's gauges are as of the box's last renewal (every third of a lease)
    samples: dict[str, float] = {}

    async def fleet_seen() -> bool:
        nonlocal samples
        samples = await metrics(boxes[2].url)
        return samples["fishjam_fast_server_cluster_jobs_wanted"] == 30

    await until_async(fleet_seen, LEASE, "the fleet's gauges")
    assert samples["fishjam_fast_server_cluster_boxes_alive"] == 3
    assert samples["fishjam_fast_server_cluster_leases"] == per_box[boxes[2].pid]
    assert samples["fishjam_fast_server_cluster_redis_connected"] == 1

    victim = boxes[1]
    moved = [k for k, o in held.items() if pid_of(o) == victim.pid]
    moved_rooms = [rooms[keys.index(k)] for k in moved]
    victim.kill(signal.SIGKILL)
    survivors = (boxes[0].pid, boxes[2].pid)
    held = {}

    async def moved_and_connected() -> bool:
        nonlocal held
        held = await owners(redis, keys)
        return all(pid_of(held[k]) in survivors for k in moved) and each_room_has_one_agent(
            local_fishjam, rooms
        )

    took = await until_async(moved_and_connected, LEASE + 5, "rooms moved")
    # taken over with the same agent peers (they still exist in Fishjam)
    after = connected_agents(local_fishjam)
    assert all(after[r] == [peers_before[r]] for r in moved_rooms)
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps
    assert took < LEASE + 5
    text = boxes[0].text() + boxes[2].text()
    assert "kept" in text and local_fishjam.management_token not in text


async def test_sigterm_hands_rooms_over_and_none_is_dropped(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    await launch(boxes, 2, local_fishjam, redis_server.url, tmp_path, lease_ttl=LEASE)
    watch = AgentWatch(local_fishjam)
    watch.start()
    rooms = [await local_fishjam.create_room() for _ in range(8)]
    keys = await dispatch(boxes[1], rooms)
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 30, "8 agents")
    peers_before = {r: connected_agents(local_fishjam)[r][0] for r in rooms}
    leaving, staying = boxes
    assert any(pid_of(o) == leaving.pid for o in (await owners(redis, keys)).values())
    leaving.kill(signal.SIGTERM)
    assert await asyncio.wait_for(leaving.process.wait(), 20) == 0, leaving.text()
    # well within a lease: handed over, not expired
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), LEASE, "handed over")
    held = await owners(redis, keys)
    assert all(pid_of(o) == staying.pid for o in held.values()), held
    assert set(await redis.smembers("fishjam_fast:rooms")) == set(keys)  # none dropped
    assert {r: connected_agents(local_fishjam)[r][0] for r in rooms} == peers_before
    assert "handing" in leaving.text()
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps
    # the last box alive hands nothing over: it drains as one box does
    staying.kill(signal.SIGTERM)
    assert await asyncio.wait_for(staying.process.wait(), 20) == 0, staying.text()
    assert not any(p.type == "agent" for r in rooms for p in local_fishjam.rooms[r].peers.values())
    assert await redis.scard("fishjam_fast:rooms") == 0
    assert "no other box is alive" in staying.text()


async def test_a_restarted_redis_keeps_the_agents_and_takes_jobs_again(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    await launch(boxes, 2, local_fishjam, redis_server.url, tmp_path, lease_ttl=3.0)
    watch = AgentWatch(local_fishjam)
    watch.start()
    rooms = [await local_fishjam.create_room() for _ in range(6)]
    keys = await dispatch(boxes[0], rooms)
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 30, "6 agents")
    peers_before = connected_agents(local_fishjam)
    # restarted without persistence: every key is gone
    redis_server.stop()
    await asyncio.sleep(0.3)
    redis_server.start()
    await wait_for(
        lambda: all(b.text().count("Redis lost its data") for b in boxes), 10, "both restored"
    )
    assert set(await redis.smembers("fishjam_fast:rooms")) == set(keys)
    held = await owners(redis, keys)
    assert all(o is not None for o in held.values()), held
    assert {r: connected_agents(local_fishjam)[r] for r in rooms} == {
        r: peers_before[r] for r in rooms
    }
    more = [await local_fishjam.create_room() for _ in range(4)]
    await dispatch(boxes[1], more)
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms + more), 20, "new jobs")
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps


async def test_a_box_cut_from_redis_stops_its_agents_within_the_lease(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    proxy = Proxy(redis_server.port)
    await proxy.start()
    (cut,) = await launch(boxes, 1, local_fishjam, proxy.url, tmp_path, lease_ttl=LEASE)
    rooms = [await local_fishjam.create_room() for _ in range(4)]
    keys = await dispatch(cut, rooms)
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 30, "4 agents")
    (other,) = await launch(boxes, 1, local_fishjam, redis_server.url, tmp_path, lease_ttl=LEASE)
    watch = AgentWatch(local_fishjam)
    watch.start()
    await proxy.cut()
    # its agents stop before the lease expires; the other box takes the rooms
    await wait_for(lambda: "stopping 4 agents" in cut.text(), LEASE, "agents stopped")
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), LEASE + 5, "moved")
    held = await owners(redis, keys)
    assert all(pid_of(o) == other.pid for o in held.values()), held
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps
    assert "Redis unreachable" in cut.text()
    # explicit dispatch through the cut box is refused, not lost silently
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DISPATCH_TOKEN}"}) as client:
        answer = await client.post(cut.url + "/dispatch", json={"room_id": rooms[0]})
    assert answer.status_code == 503, answer.text
    assert "Redis unreachable" in answer.json()["errors"], answer.text


async def test_notifications_seen_by_every_box_start_one_job_per_room(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    # both boxes follow the notification socket: each sees every person join, and the
    # fleet still runs one job per room; leaving ends it everywhere
    socket_source = ("--source", "socket")
    await launch(boxes, 2, local_fishjam, redis_server.url, tmp_path, extra=socket_source)
    watch = AgentWatch(local_fishjam)
    watch.start()
    rooms = [await local_fishjam.create_room() for _ in range(10)]
    people = [await local_fishjam.join_person(room_id) for room_id in rooms]
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 30, "10 agents")
    held = await owners(redis, rooms)  # the default rule's key is the room id
    assert {pid_of(o) for o in held.values()} == {b.pid for b in boxes}, held
    for person in people:
        await local_fishjam.leave_person(person.peer_id)
    await wait_for(
        lambda: (
            not any(p.type == "agent" for r in rooms for p in local_fishjam.rooms[r].peers.values())
        ),
        10,
        "every agent peer deleted",
    )
    assert await redis.scard("fishjam_fast:rooms") == 0
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps


async def test_a_wanted_job_nobody_holds_is_queued_by_the_safety_scan_with_no_box_gone(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    # the orphan scan reads every wanted job, so it runs only while a box is gone, or
    # every ORPHAN_SCAN_EVERY renewals: a job wanted with no lease and no request queued
    # (its request lost) gets its agent from that safety net, no box having died
    await launch(boxes, 1, local_fishjam, redis_server.url, tmp_path, lease_ttl=LEASE)
    (room,) = [await local_fishjam.create_room()]
    key = "dispatch:lost"
    await redis.hset(f"fishjam_fast:job:{key}", mapping={"room_id": room, "metadata": "null"})
    await redis.sadd("fishjam_fast:rooms", key)
    bound = (ORPHAN_SCAN_EVERY + 1) * LEASE / 3 + 5
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, [room]), bound, "scanned")
    assert pid_of((await owners(redis, [key]))[key]) == boxes[0].pid


def test_redis_options_are_checked() -> None:
    from fishjam_fast.server import ServerOptions

    with pytest.raises(ValueError, match="redis://"):
        ServerOptions(redis_url="http://127.0.0.1:6379")
    with pytest.raises(ValueError, match=r"lease_ttl must be at least 0\.5"):
        ServerOptions(redis_url="redis://127.0.0.1:6379/0", lease_ttl=0.1)
    with pytest.raises(ValueError, match="redis_prefix"):
        ServerOptions(redis_url="redis://127.0.0.1:6379/0", redis_prefix="a b")
    with pytest.raises(ValueError, match="on_shutdown must be 'handover' or 'drain'"):
        ServerOptions(redis_url="redis://127.0.0.1:6379/0", on_shutdown="leave")  # type: ignore[arg-type]
    shown = repr(ServerOptions(redis_url="redis://:s3cret@127.0.0.1:6379/0"))
    assert "s3cret" not in shown


async def test_a_rolling_restart_of_every_box_keeps_every_room_served(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    await launch(boxes, 3, local_fishjam, redis_server.url, tmp_path, lease_ttl=LEASE)
    watch = AgentWatch(local_fishjam)
    watch.start()
    rooms = [await local_fishjam.create_room() for _ in range(12)]
    keys = await dispatch(boxes[0], rooms)
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 30, "12 agents")
    peers = {r: connected_agents(local_fishjam)[r][0] for r in rooms}
    for old in list(boxes[:3]):
        # as a deploy does: the new box first, then SIGTERM on the old one
        await launch(boxes, 1, local_fishjam, redis_server.url, tmp_path, lease_ttl=LEASE)
        old.kill(signal.SIGTERM)
        assert await asyncio.wait_for(old.process.wait(), 20) == 0, old.text()
        await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), LEASE, "served")
    held = await owners(redis, keys)
    assert {pid_of(o) for o in held.values()} <= {b.pid for b in boxes[3:]}, held
    # every room kept its agent peer across the three handovers, and none was dropped
    assert {r: connected_agents(local_fishjam)[r][0] for r in rooms} == peers
    assert set(await redis.smembers("fishjam_fast:rooms")) == set(keys)
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps


async def test_a_box_that_cannot_reach_redis_does_not_start(
    local_fishjam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fishjam_fast.server import AgentServer

    monkeypatch.syspath_prepend(APPS)
    closed = free_port()  # nothing listens there
    server = AgentServer(
        "server_apps:idle",
        fishjam_url=local_fishjam.url,
        management_token=local_fishjam.management_token,
        workers=1,
        metrics_port=None,
        source="none",
        redis_url=f"redis://127.0.0.1:{closed}/0",
    )
    with pytest.raises(
        ConnectionError, match=f"cannot join the fleet on Redis at 127.0.0.1:{closed}"
    ):
        await server.start()
    assert all(w.process is None or not w.process.is_alive() for w in server.supervisor.workers)


@pytest.mark.slow  # 300 people, 300 agents, three boxes
async def test_three_boxes_300_rooms_filled_by_people_one_agent_each_spread_evenly(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    socket_source = ("--source", "socket")
    await launch(boxes, 3, local_fishjam, redis_server.url, tmp_path, extra=socket_source)
    watch = AgentWatch(local_fishjam)
    watch.start()
    rooms = [await local_fishjam.create_room() for _ in range(300)]
    people = [await local_fishjam.join_person(room_id) for room_id in rooms]
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 90, "300 agents")
    held = await owners(redis, rooms)
    per_box = {b.pid: sum(1 for o in held.values() if pid_of(o) == b.pid) for b in boxes}
    assert sum(per_box.values()) == 300, per_box
    assert all(90 <= n <= 110 for n in per_box.values()), per_box  # within 10% of even
    for person in people:
        await local_fishjam.leave_person(person.peer_id)
    await wait_for(
        lambda: (
            not any(p.type == "agent" for r in rooms for p in local_fishjam.rooms[r].peers.values())
        ),
        30,
        "every agent peer deleted",
    )
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps


async def test_sigterm_with_on_shutdown_drain_lets_jobs_end_here_then_hands_the_rest_over(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    draining = ("--source", "none", "--on-shutdown", "drain", "--drain-timeout", "8")
    (leaving,) = await launch(
        boxes, 1, local_fishjam, redis_server.url, tmp_path, entry="server_apps:finite",
        lease_ttl=LEASE, extra=draining,
    )  # fmt: skip
    ending = [await local_fishjam.create_room() for _ in range(3)]
    staying_rooms = [await local_fishjam.create_room() for _ in range(3)]
    ending_keys = await dispatch(leaving, ending, {"seconds": 5})
    staying_keys = await dispatch(leaving, staying_rooms, {"seconds": 3600})
    rooms = ending + staying_rooms
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms), 30, "6 agents")
    peers = {r: connected_agents(local_fishjam)[r][0] for r in staying_rooms}
    (other,) = await launch(
        boxes, 1, local_fishjam, redis_server.url, tmp_path, entry="server_apps:finite",
        lease_ttl=LEASE,
    )  # fmt: skip
    watch = AgentWatch(local_fishjam)
    watch.start()
    leaving.kill(signal.SIGTERM)
    # past a lease: the draining box still holds every room (renewed; nobody took one)
    await asyncio.sleep(LEASE + 0.5)
    held = await owners(redis, ending_keys + staying_keys)
    assert {pid_of(o) for o in held.values()} == {leaving.pid}, held
    # the jobs that end by themselves end on the draining box, their rooms done
    await wait_for(
        lambda: not any(connected_agents(local_fishjam)[r] for r in ending), 10, "jobs ended"
    )
    # the rest are handed over after the drain timeout, keeping their agent peers
    assert await asyncio.wait_for(leaving.process.wait(), 20) == 0, leaving.text()
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, staying_rooms), LEASE, "moved")
    held = await owners(redis, staying_keys)
    assert {pid_of(o) for o in held.values()} == {other.pid}, held
    assert {r: connected_agents(local_fishjam)[r][0] for r in staying_rooms} == peers
    assert set(await redis.smembers("fishjam_fast:rooms")) == set(staying_keys)
    await watch.stop()
    assert watch.longest_overlap == 0.0, watch.overlaps
    text = leaving.text()
    assert "draining: taking no jobs; 6 running jobs" in text
    assert "drain: 3 jobs still run after 8 s: handing them over" in text


async def test_a_job_request_no_box_has_room_for_waits_then_is_refused(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    # one box with room for one job: the second request waits in the stream until the
    # first job ends and then runs; the third waits past job_wait_timeout: refused
    full = ("--source", "none", "--max-jobs", "1", "--job-wait-timeout", "4")
    (box,) = await launch(
        boxes, 1, local_fishjam, redis_server.url, tmp_path, entry="server_apps:finite",
        lease_ttl=LEASE, extra=full,
    )  # fmt: skip
    rooms = [await local_fishjam.create_room() for _ in range(3)]
    first = await dispatch(box, rooms[:1], {"seconds": 0.5})
    later = await dispatch(box, rooms[1:], {"seconds": 3600})
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms[1:2]), 10, "2nd runs")
    await wait_for(lambda: "refused" in box.text(), 10, "the third refused")
    assert not connected_agents(local_fishjam)[rooms[2]]
    # it left the stream and the fleet's wanted jobs: nothing waits for ever
    assert set(await redis.smembers("fishjam_fast:rooms")) == {later[0]}
    assert (await redis.xinfo_groups("fishjam_fast:jobs"))[0]["lag"] in (0, None)
    # the two taken stay (acknowledged); the refused one was queued once and left
    assert [e[1]["key"] for e in await redis.xrange("fishjam_fast:jobs")] == [first[0], later[0]]
    samples = await metrics(box.url)
    assert samples['fishjam_fast_server_jobs_refused_total{reason="fleet_wait_timeout"}'] == 1
    assert f"job {later[1]} in room {rooms[2]} refused" in box.text()
    assert first[0] not in await redis.smembers("fishjam_fast:rooms")


async def test_with_when_full_refuse_a_request_no_box_has_room_for_is_refused_at_once(
    local_fishjam: Any, redis_server: RedisServer, redis: Any, boxes: list[Box], tmp_path: Path
) -> None:
    refuse = ("--source", "none", "--max-jobs", "1", "--when-full", "refuse")
    (box,) = await launch(
        boxes, 1, local_fishjam, redis_server.url, tmp_path, lease_ttl=LEASE, extra=refuse
    )
    rooms = [await local_fishjam.create_room() for _ in range(2)]
    keys = await dispatch(box, rooms)
    await wait_for(lambda: each_room_has_one_agent(local_fishjam, rooms[:1]), 10, "1st runs")
    # every live box is full: refused within a renewal, not after job_wait_timeout (10 s)
    await wait_for(lambda: f"job {keys[1]} in room {rooms[1]} refused" in box.text(), 3, "refused")
    assert set(await redis.smembers("fishjam_fast:rooms")) == {keys[0]}
    samples = await metrics(box.url)
    assert samples['fishjam_fast_server_jobs_refused_total{reason="fleet_full"}'] == 1
    assert not connected_agents(local_fishjam)[rooms[1]]
