"""The first connection follows the ReconnectPolicy when it says ``retry_connect=True``:
a server started late, one that answers 503 or closes 1013 first, is waited for within
the budget; a refused token, a 404 or a spent budget fail with what happened. Real
loopback servers: the local Fishjam behind a forwarder started late, or a hostile one."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from fishjam_fast import Agent, AgentAuthError, AgentConnectionError, ReconnectPolicy
from fishjam_fast.local import LocalFishjam
from tests import hostile

pytestmark = pytest.mark.usefixtures("transport")

TIMEOUT = 10.0
RETRY = ReconnectPolicy(budget=8.0, first_delay=0.05, max_delay=0.2, retry_connect=True)


def _free_port() -> int:
    """A port nothing listens on (just released by the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Forwarder:
    """Listens on ``port`` (127.0.0.1) once started and forwards each connection to
    ``target_port``; counts the connections it accepted."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.transport.abort()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.append(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_server_started_late_is_waited_for(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    forwarder = Forwarder(_free_port(), fj.port)
    url = f"http://127.0.0.1:{forwarder.port}"
    # without retry_connect: refused at once, as the plain SDK is
    with pytest.raises(AgentConnectionError, match="cannot connect"):
        async with asyncio.timeout(TIMEOUT), Agent(peer.id, room, peer.token, url).connect():
            pass
    agent = Agent(peer.id, room, peer.token, url, reconnect=RETRY)

    async def connect_and_report() -> tuple[str, int]:
        async with agent.connect() as session:
            return session.state, session.stats.connect_attempts

    connecting = asyncio.create_task(connect_and_report())
    await asyncio.sleep(0.4)  # refused meanwhile: nothing listens yet
    assert not connecting.done()
    await forwarder.start()
    try:
        state, attempts = await asyncio.wait_for(connecting, TIMEOUT)
    finally:
        await forwarder.close()
    assert state == "connected" and attempts >= 2
    assert forwarder.accepted == 1


async def test_closes_with_1013_then_accepts() -> None:
    async def handler(peer: hostile.Peer) -> None:
        await peer.handshake()
        await peer.read_until(hostile.BINARY)  # the auth request
        if server.peers.index(peer) < 2:
            await peer.send(hostile.frame(hostile.CLOSE, hostile.close_payload(1013, b"busy")))
            await peer.read_until(hostile.CLOSE)
            return
        await peer.send(hostile.frame(hostile.BINARY, hostile.AUTHENTICATED))
        await peer.serve_pings()

    async with hostile.HostileServer(handler) as server:
        # the default: the first refusal ends connect() (the plain SDK's AgentAuthError)
        with pytest.raises(AgentAuthError) as info:
            async with asyncio.timeout(TIMEOUT), Agent("a", "r", "t", server.url).connect():
                pass
        assert info.value.reason == "busy" and info.value.code == 1013
        assert len(server.peers) == 1
        server.peers.clear()
        agent = Agent("a", "r", "t", server.url, reconnect=RETRY)
        async with asyncio.timeout(TIMEOUT), agent.connect() as session:
            assert session.state == "connected"
            assert session.stats.connect_attempts == 3
        assert len(server.peers) == 3


@pytest.mark.parametrize(("status", "retried"), [(503, True), (404, False)])
async def test_http_answers_busy_is_retried_missing_is_not(status: int, retried: bool) -> None:
    async def handler(peer: hostile.Peer) -> None:
        if server.peers.index(peer) == 0:
            await peer.reader.readuntil(b"\r\n\r\n")
            peer.writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
            await peer.writer.drain()
            return
        await peer.authenticate()
        await peer.serve_pings()

    async with hostile.HostileServer(handler) as server:
        agent = Agent("a", "r", "t", server.url, reconnect=RETRY)
        if retried:
            async with asyncio.timeout(TIMEOUT), agent.connect() as session:
                assert session.stats.connect_attempts == 2
        else:
            with pytest.raises(AgentConnectionError, match=str(status)):
                async with asyncio.timeout(TIMEOUT), agent.connect():
                    pass
            assert len(server.peers) == 1  # at once: a wrong URL stays wrong


async def test_a_bad_token_fails_at_once(local_fishjam: LocalFishjam) -> None:
    fj = local_fishjam
    room = await fj.create_room()
    peer = await fj.add_agent(room)
    forwarder = Forwarder(_free_port(), fj.port)
    await forwarder.start()
    try:
        url = f"http://127.0.0.1:{forwarder.port}"
        agent = Agent(peer.id, room, "not-the-token", url, reconnect=RETRY)
        with pytest.raises(AgentAuthError):
            async with asyncio.timeout(TIMEOUT), agent.connect():
                pass
    finally:
        await forwarder.close()
    assert forwarder.accepted == 1


async def test_the_budget_bounds_the_retries() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    policy = ReconnectPolicy(budget=0.5, first_delay=0.05, max_delay=0.1, retry_connect=True)
    with pytest.raises(AgentConnectionError) as info:
        async with asyncio.timeout(TIMEOUT), Agent("a", "r", "t", url, reconnect=policy).connect():
            pass
    message = str(info.value)
    assert message.startswith("could not connect within 0.5 s (")
    attempts = int(message.split("(")[1].split(" ")[0])
    assert attempts >= 2
    assert "last cause: cannot connect to ws://127.0.0.1:" in message
    assert info.value.code == 1006


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_retry_connect_must_be_a_bool(bad: object) -> None:
    with pytest.raises(TypeError, match="retry_connect must be True or False"):
        ReconnectPolicy(retry_connect=bad)  # type: ignore[arg-type]
