"""Proxies, on both transports: the environment's by default (``proxy=True``, as the plain
SDK, whose websockets reads ``https_proxy`` and the others), through the one given as
``proxy=``, or none with ``proxy=None``/``False``. The proxy is a real HTTP CONNECT
proxy written here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from fishjam_fast import Agent, AgentConnectionError
from fishjam_fast.local import LocalFishjam

TIMEOUT = 5.0

BOTH = pytest.mark.parametrize("transport_name", ["picows", "websockets"])


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that records the targets it was asked for."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n")[0].decode().split(" ", 2)
        assert method == "CONNECT", head
        self.targets.append(target)
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self._writers.append(up_writer)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    async with ConnectProxy() as p:
        yield p


async def _connects(agent: Agent) -> None:
    async with asyncio.timeout(TIMEOUT), agent.connect() as session:
        assert session.state == "connected"


PROXY_VARIABLES = ("ws_proxy", "wss_proxy", "http_proxy", "https_proxy", "all_proxy")
PROXY_VARIABLES += ("socks_proxy", "no_proxy")


@pytest.fixture
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable set (either case), whatever the machine running the tests has."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@BOTH
async def test_the_environment_proxy_is_used_by_default_as_the_plain_sdk_does(
    local_fishjam: LocalFishjam,
    proxy: ConnectProxy,
    clean_proxy_environment: pytest.MonkeyPatch,
    transport_name: str,
) -> None:
    from fishjam.agent import Agent as PlainAgent

    clean_proxy_environment.setenv("HTTPS_PROXY", proxy.url)
    room = await local_fishjam.create_room()
    peer = await local_fishjam.add_agent(room)
    target = f"127.0.0.1:{local_fishjam.port}"
    # the reference: the plain SDK connects through the environment's proxy
    plain = PlainAgent(peer.id, room, peer.token, local_fishjam.url)
    async with asyncio.timeout(TIMEOUT), plain.connect():
        pass
    assert proxy.targets == [target]
    # fishjam_fast with no proxy argument does the same
    await _connects(Agent(peer.id, room, peer.token, local_fishjam.url, transport=transport_name))
    assert proxy.targets == [target, target]
    # None and False: direct, whatever the environment says
    for direct in (None, False):
        agent = Agent(
            peer.id, room, peer.token, local_fishjam.url, transport=transport_name, proxy=direct
        )
        await _connects(agent)
    assert proxy.targets == [target, target]


@BOTH
async def test_no_proxy_is_respected_for_loopback(
    local_fishjam: LocalFishjam,
    proxy: ConnectProxy,
    clean_proxy_environment: pytest.MonkeyPatch,
    transport_name: str,
) -> None:
    # websockets asks urllib.request.proxy_bypass, which reads no_proxy
    clean_proxy_environment.setenv("https_proxy", proxy.url)
    clean_proxy_environment.setenv("no_proxy", "localhost,127.0.0.1")
    room = await local_fishjam.create_room()
    peer = await local_fishjam.add_agent(room)
    await _connects(Agent(peer.id, room, peer.token, local_fishjam.url, transport=transport_name))
    assert proxy.targets == []
    clean_proxy_environment.setenv("no_proxy", "example.invalid")
    await _connects(Agent(peer.id, room, peer.token, local_fishjam.url, transport=transport_name))
    assert proxy.targets == [f"127.0.0.1:{local_fishjam.port}"]


@BOTH
async def test_without_proxy_variables_the_default_connects_directly(
    local_fishjam: LocalFishjam,
    proxy: ConnectProxy,
    clean_proxy_environment: pytest.MonkeyPatch,
    transport_name: str,
) -> None:
    room = await local_fishjam.create_room()
    peer = await local_fishjam.add_agent(room)
    await _connects(Agent(peer.id, room, peer.token, local_fishjam.url, transport=transport_name))
    assert proxy.targets == []


@BOTH
async def test_the_environment_is_read_in_websockets_order(
    local_fishjam: LocalFishjam,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    transport_name: str,
) -> None:
    """For a ws:// URL websockets takes ws_proxy, then socks, https_proxy, http_proxy
    (no all_proxy): https_proxy alone is used; all_proxy alone is not."""
    for name in ("ws_proxy", "http_proxy", "all_proxy", "socks_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    room = await local_fishjam.create_room()
    peer = await local_fishjam.add_agent(room)
    url = local_fishjam.url
    monkeypatch.setenv("all_proxy", "http://127.0.0.1:1")  # unreachable: must be ignored
    await _connects(Agent(peer.id, room, peer.token, url, transport=transport_name, proxy=True))
    assert proxy.targets == []
    monkeypatch.setenv("https_proxy", proxy.url)
    await _connects(Agent(peer.id, room, peer.token, url, transport=transport_name, proxy=True))
    assert proxy.targets == [f"127.0.0.1:{local_fishjam.port}"]


@BOTH
async def test_through_the_proxy_given(
    local_fishjam: LocalFishjam, proxy: ConnectProxy, transport_name: str
) -> None:
    room = await local_fishjam.create_room()
    peer = await local_fishjam.add_agent(room)
    url = local_fishjam.url
    await _connects(
        Agent(peer.id, room, peer.token, url, transport=transport_name, proxy=proxy.url)
    )
    assert proxy.targets == [f"127.0.0.1:{local_fishjam.port}"]


@BOTH
async def test_a_proxy_that_is_not_there_is_a_connection_error(
    local_fishjam: LocalFishjam, proxy: ConnectProxy, transport_name: str
) -> None:
    room = await local_fishjam.create_room()
    peer = await local_fishjam.add_agent(room)
    gone = proxy.url
    await proxy.__aexit__()
    agent = Agent(
        peer.id, room, peer.token, local_fishjam.url, transport=transport_name, proxy=gone
    )
    with pytest.raises(AgentConnectionError, match="cannot connect"):
        async with asyncio.timeout(TIMEOUT), agent.connect():
            pass


@pytest.mark.parametrize("bad", ["proxy:8080", "ftp://proxy:21", 8080, 0])
def test_a_bad_proxy_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"proxy must be True \(the environment's\), None"):
        Agent("p", "r", "t", "http://127.0.0.1:1", transport="websockets", proxy=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["socks4a", "socks5h"])
def test_picows_refuses_the_proxies_it_cannot_use(scheme: str) -> None:
    with pytest.raises(ValueError, match="needs transport='websockets'"):
        Agent("p", "r", "t", "http://127.0.0.1:1", transport="picows", proxy=f"{scheme}://p:1080")
    Agent("p", "r", "t", "http://127.0.0.1:1", transport="websockets", proxy=f"{scheme}://p:1")


async def test_picows_refuses_an_environment_proxy_it_cannot_use(
    local_fishjam: LocalFishjam, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ws_proxy", "socks5h://127.0.0.1:1")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    agent = Agent("p", "r", "t", local_fishjam.url, transport="picows", proxy=True)
    with pytest.raises(AgentConnectionError, match="not one picows connects through"):
        async with asyncio.timeout(TIMEOUT), agent.connect():
            pass
