"""The REST client's HTTP (aiohttp's client) against servers written here: chunked and
read-to-close bodies, keep-alive reuse and a connection the server closed while idle,
malformed answers, the deadlines and the connection bound."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from fishjam_fast import AsyncFishjamClient, FishjamApiError
from fishjam_fast.local import LocalFishjam
from fishjam_fast.rest_http import MAX_HEADER_SIZE, HttpError, HttpPool
from tests import test_agent_tls

# the TLS tests' fixtures: a self-signed certificate and a local Fishjam serving https
certificate = test_agent_tls.certificate
tls_fishjam = test_agent_tls.tls_fishjam

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server running ``handler`` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/prefix"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(Exception):
            await self._handler(reader, writer)

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def serving(handler: Handler, **options: object) -> AsyncIterator[tuple[Server, HttpPool]]:
    server = Server(handler)
    url = await server.start()
    settings: dict[str, object] = {"timeout": 2.0, "max_connections": 2, **options}
    pool = HttpPool(url, {"Authorization": "Bearer t"}, **settings)  # type: ignore[arg-type]
    try:
        yield server, pool
    finally:
        await pool.aclose()
        await server.close()


async def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given() -> None:
    server: Server

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(b'HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{"data": 1}')

    async with serving(handler) as (server, pool):
        for _ in range(3):
            answer = await pool.request("POST", "/room", body=b'{"a": 1}', params={"x": "y z"})
            assert (answer.status, answer.reason, answer.body) == (201, "Created", b'{"data": 1}')
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /prefix/room?x=y+z HTTP/1.1\r\n")
    assert b"Authorization: Bearer t\r\n" in first and b"Content-Length: 8\r\n" in first
    assert first.endswith(b'\r\n\r\n{"a": 1}')


async def test_chunked_and_read_to_close_bodies() -> None:
    server: Server

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await server.read_request(reader)
            if b"/chunked" in request:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"
                )
            elif b"DELETE" in request:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:  # HTTP/1.0, no length: the body runs to the close
                writer.write(b"HTTP/1.0 200 OK\r\n\r\nto the end")
                writer.close()
                return

    async with serving(handler) as (server, pool):
        assert (await pool.request("GET", "/chunked")).body == b"abcdefg"
        assert (await pool.request("DELETE", "/x")).status == 204
        assert (await pool.request("GET", "/close")).body == b"to the end"
        assert (await pool.request("GET", "/chunked")).body == b"abcdefg"
    assert server.connections == 2  # kept alive twice, then a new one after the close


async def test_a_connection_closed_while_idle_is_replaced_and_the_request_sent_once() -> None:
    server: Server

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # without "Connection: close": the client learns it on reuse

    async with serving(handler) as (server, pool):
        assert (await pool.request("POST", "/a", body=b"{}")).body == b"ok"
        await asyncio.sleep(0.05)
        assert (await pool.request("POST", "/b", body=b"{}")).body == b"ok"
    assert server.connections == 2
    assert [r.split(b" ")[1] for r in server.requests] == [b"/prefix/a", b"/prefix/b"]


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"SMTP ready\r\n\r\n", "malformed answer: Bad status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Invalid character in Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "received 5 of 10 bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEADER_SIZE, f"more than {MAX_HEADER_SIZE} bytes"),
        (b"", "closed without answering"),
    ],
)
async def test_malformed_answers_raise_http_error(answer: bytes, match: str) -> None:
    server: Server

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with serving(handler) as (server, pool):
        with pytest.raises(HttpError, match=match) as caught:
            await pool.request("GET", "/x")
    assert caught.value.kind == "RemoteProtocolError"


async def test_deadlines_name_the_phase_and_the_bound_holds() -> None:
    release = asyncio.Event()
    server: Server

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await release.wait()

    async with serving(silent, timeout=0.2, max_connections=1) as (server, pool):
        first = asyncio.create_task(pool.request("GET", "/x"))
        second = asyncio.create_task(pool.request("GET", "/y"))
        errors = await asyncio.gather(first, second, return_exceptions=True)
        release.set()
    kinds = sorted(e.kind for e in errors if isinstance(e, HttpError))
    assert kinds == ["PoolTimeout", "ReadTimeout"]  # one connection at most
    assert server.connections == 1


async def test_nothing_listening_is_a_connect_error() -> None:
    with socket_closed() as port:
        pool = HttpPool(f"http://127.0.0.1:{port}", {}, timeout=1.0, max_connections=1)
        with pytest.raises(HttpError) as caught:
            await pool.request("GET", "/")
    assert caught.value.kind == "ConnectError"
    with pytest.raises(ValueError, match="http"):
        HttpPool("ftp://host", {}, timeout=1.0, max_connections=1)


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


async def test_https_verifies_certificates_and_takes_a_custom_context(
    tls_fishjam: LocalFishjam, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    async with AsyncFishjamClient(tls_fishjam.url, tls_fishjam.management_token) as client:
        with pytest.raises(FishjamApiError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            await client.create_room()
        assert caught.value.status is None and caught.value.message.startswith("ConnectError")
    async with AsyncFishjamClient(
        tls_fishjam.url, tls_fishjam.management_token, verify=trusting
    ) as client:
        room = await client.create_room()
        assert (await client.get_room(room.id)).id == room.id
    async with AsyncFishjamClient(
        tls_fishjam.url, tls_fishjam.management_token, verify=False
    ) as client:
        await client.delete_room(room.id)
    assert room.id not in tls_fishjam.rooms


async def test_a_proxy_from_the_environment_carries_the_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the plain SDK's client does, ``HTTP_PROXY`` is honoured (``NO_PROXY`` too), read
    when the client is made."""
    proxy: Server

    async def forwarding(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await proxy.read_request(reader)
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"data": 2}')

    proxy = Server(forwarding)
    proxy_url = (await proxy.start()).removesuffix("/prefix")
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    pool = HttpPool("http://fishjam.invalid:8080/api", {}, timeout=2.0, max_connections=1)
    try:
        answer = await pool.request("GET", "/room")
        assert answer.body == b'{"data": 2}'
        # the absolute form a proxy is asked with, naming the origin (never resolved here)
        assert proxy.requests[0].startswith(b"GET http://fishjam.invalid:8080/api/room HTTP/1.1")
        monkeypatch.setenv("NO_PROXY", "fishjam.invalid")
        monkeypatch.setenv("no_proxy", "fishjam.invalid")
        direct = HttpPool("http://fishjam.invalid:8080/api", {}, timeout=2.0, max_connections=1)
        with pytest.raises(HttpError) as caught:  # direct: the name does not resolve
            await direct.request("GET", "/room")
        await direct.aclose()
        assert caught.value.kind == "ConnectError"
        assert len(proxy.requests) == 1
    finally:
        await pool.aclose()
        await proxy.close()
