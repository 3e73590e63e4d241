"""AsyncFishjamClient against the local Fishjam (in a child process, so its CPU time does
not show as the client's loop lag), and against a server that never answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from fishjam_fast import Agent, AgentSession, AsyncFishjamClient, FishjamApiError
from fishjam_fast.local import LocalFishjamProcess
from fishjam_fast.rest import AgentOptions, RoomOptions

AGENTS = 100


@pytest.fixture(scope="module")
def server() -> Iterator[LocalFishjamProcess]:
    with LocalFishjamProcess(seconds=300) as process:
        yield process


@pytest.fixture
async def client(server: LocalFishjamProcess) -> AsyncIterator[AsyncFishjamClient]:
    async with AsyncFishjamClient(server.url, server.token) as c:
        yield c


@pytest.mark.slow  # a hundred rooms and agents (4 s)
async def test_hundred_rooms_and_agents_at_once_while_the_loop_serves_others(
    client: AsyncFishjamClient,
) -> None:
    """A hundred rooms and agents set up at once over one client, all connected; the
    loop's other tasks run between the requests (a client that blocked the loop, as a
    synchronous one would, lets none run until it is done). How long the loop's worst
    stall is: benchmarks/bench_rest_client.py (a time bound is the benchmark's)."""
    all_connected = asyncio.Event()
    connected: list[AgentSession] = []
    rooms: list[str] = []
    ticks_while_setting_up = 0

    async def one() -> None:
        room = await client.create_room()
        rooms.append(room.id)
        agent = await client.create_agent(room.id)
        async with agent.connect() as session:
            connected.append(session)
            if len(connected) == AGENTS:
                all_connected.set()
            await all_connected.wait()

    async def other_task() -> None:
        nonlocal ticks_while_setting_up
        while not all_connected.is_set():
            await asyncio.sleep(0.001)
            ticks_while_setting_up += 1

    ticker = asyncio.create_task(other_task())
    async with asyncio.timeout(120):  # sanity bound: did not hang
        await asyncio.gather(*(one() for _ in range(AGENTS)))
        await ticker
        described = await client.get_room(rooms[0])
        await asyncio.gather(*(client.delete_room(r) for r in rooms))
    assert len(connected) == AGENTS and len(set(rooms)) == AGENTS
    assert [p.type for p in described.peers] == ["agent"]
    # 300 requests and 100 connections over loopback to another process: the other
    # task ran in their waits (none at all if the client held the loop throughout)
    assert ticks_while_setting_up > 10, ticks_while_setting_up


async def test_wrong_management_token_raises_the_typed_error(
    server: LocalFishjamProcess,
) -> None:
    async with AsyncFishjamClient(server.url, "not-the-token") as client:
        with pytest.raises(FishjamApiError) as caught:
            await client.create_room()
    assert caught.value.status == 401
    assert caught.value.message == "Invalid token"
    assert "HTTP 401" in str(caught.value) and "POST /room" in str(caught.value)


async def test_delete_room_ends_the_agents_session(client: AsyncFishjamClient) -> None:
    room = await client.create_room(RoomOptions(max_peers=4))
    agent = await client.create_agent(room.id, AgentOptions(audio_sample_rate=24000))
    assert isinstance(agent, Agent)
    async with agent.connect() as session:

        async def drain() -> int:
            return len([m async for m in session.receive()])

        reader = asyncio.create_task(drain())
        await client.delete_room(room.id)
        async with asyncio.timeout(10):  # sanity bound: the loop ends, no hang
            await reader
        assert (session.close_code, session.close_reason) == (1000, "Room stopped")
    with pytest.raises(FishjamApiError) as caught:
        await client.get_room(room.id)
    assert caught.value.status == 404


async def test_peers_tokens_and_errors(client: AsyncFishjamClient) -> None:
    room = await client.create_room()
    agent = await client.create_agent(room.id, open_timeout=5.0)
    described = await client.get_room(room.id)
    assert [p.id for p in described.peers] == [agent.id]
    token = await client.refresh_peer_token(room.id, agent.id)
    assert token and token != agent._token
    await client.delete_peer(room.id, agent.id)
    assert (await client.get_room(room.id)).peers == []
    with pytest.raises(FishjamApiError) as caught:
        await client.delete_peer(room.id, agent.id)
    assert caught.value.status == 404 and caught.value.message
    with pytest.raises(ValueError, match="16000 or 24000"):
        await client.create_agent(room.id, AgentOptions(audio_sample_rate=8000))  # type: ignore[arg-type]
    await client.delete_room(room.id)


async def test_plain_sdk_options_and_a_deployment_path_prefix(
    server: LocalFishjamProcess,
) -> None:
    plain = pytest.importorskip("fishjam")  # the test extra installs the plain SDK
    # a hosted Fishjam serves every route under /api/v1/connect/<id>: the socket URL the
    # server returns carries the prefix, and the agent connects through it
    url = f"{server.url}/api/v1/connect/someid"
    async with AsyncFishjamClient(url, server.token) as client:
        room = await client.create_room(plain.RoomOptions(max_peers=2))
        options = plain.AgentOptions(output=plain.AgentOutputOptions(audio_sample_rate=24000))
        agent = await client.create_agent(room.id, options)
        assert "/api/v1/connect/someid/socket/agent/websocket" in repr(agent)
        async with agent.connect():
            assert [p.status for p in (await client.get_room(room.id)).peers] == ["connected"]
        await client.delete_room(room.id)


async def test_timeout_when_fishjam_never_answers() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncFishjamClient(f"http://127.0.0.1:{port}", "t", timeout=0.2) as client:
            start = time.monotonic()
            with pytest.raises(FishjamApiError) as caught:
                await client.create_room()
            assert time.monotonic() - start < 5  # sanity bound: the deadline held
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert caught.value.status is None and "ReadTimeout" in caught.value.message


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="fishjam_id"):
        AsyncFishjamClient("", "token")
    with pytest.raises(ValueError, match="management_token"):
        AsyncFishjamClient("id", "")
    with pytest.raises(ValueError, match="timeout"):
        AsyncFishjamClient("id", "token", timeout=0)
    hosted = AsyncFishjamClient("abc123", "token")
    assert hosted.fishjam_url == "https://fishjam.io/api/v1/connect/abc123"
    assert hosted._socket_base_url("fishjam.io/x/socket/agent/websocket") == "wss://fishjam.io/x"
    assert hosted._socket_base_url(None) == hosted.fishjam_url
