"""A small HTTP/1.1 keep-alive connection pool: what the REST client sends Fishjam.

The REST client sends short JSON requests to one host. httpx spent ~1.1 ms of the
event loop's CPU per request there (500 concurrent agent peer creations against the
local Fishjam: 1.1 ms each with httpx, 0.05 ms with this pool, the server's own part
0.15 ms), which made the client, not Fishjam, the bound of an agent server's dispatch
burst. This pool does only what Fishjam's REST API needs: one origin, requests with a
JSON body, answers with ``Content-Length``, chunked or read-to-close bodies, keep-alive
connections reused, every phase under a deadline and every buffer bounded. It does not
use proxies from the environment (``HTTP_PROXY``...): Fishjam is reached directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

__all__ = ["HttpError", "HttpPool", "HttpResponse"]

MAX_HEADER_SIZE = 64 * 1024
"""Largest response head (status line and headers), in bytes."""

MAX_BODY_SIZE = 16 * 1024 * 1024
"""Largest response body, in bytes (a listing of many rooms stays far below)."""


class HttpError(Exception):
    """A request failed below HTTP (no answer, a malformed one, a deadline passed).

    Attributes:
        kind: ``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``, ``WriteTimeout``,
            ``ReadTimeout``, ``ReadError`` or ``RemoteProtocolError``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class HttpResponse:
    """An answer: status code, reason phrase and the whole body."""

    status: int
    reason: str
    body: bytes


class _Stale(Exception):
    """A reused connection was closed by the server before it answered (sent again)."""


class HttpPool:
    """Keep-alive HTTP/1.1 connections to one origin, at most ``max_connections`` at
    once; requests beyond wait (up to ``timeout``) for one."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float | None,
        max_connections: int,
        verify: Any = True,
    ) -> None:
        """Configures the pool; nothing connects before the first request.

        Args:
            base_url: ``http(s)://host[:port][/prefix]``; request paths go after it.
            headers: Sent with every request.
            timeout: Seconds each phase may take (waiting for a connection,
                connecting, sending, reading the answer); None: no deadline.
            max_connections: Most connections (and requests in flight) at once.
            verify: For ``https``: True (verify certificates), False (do not), or an
                ``ssl.SSLContext``.

        Raises:
            ValueError: The URL is not ``http`` or ``https`` with a host.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the Fishjam URL must be http(s)://host..., not {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            if isinstance(verify, ssl.SSLContext):
                self._ssl = verify
            else:
                self._ssl = ssl.create_default_context()
                if not verify:
                    self._ssl.check_hostname = False
                    self._ssl.verify_mode = ssl.CERT_NONE
        lines = [f"Host: {parts.netloc.rpartition('@')[2]}", "Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = "\r\n".join(lines) + "\r\n"
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._closed = False

    async def aclose(self) -> None:
        """Closes the idle connections; the ones in use close when their request ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Sends one request (``body`` as ``application/json``) and reads its answer.

        Raises:
            HttpError: No (well-formed) answer within the deadlines.
        """
        if self._closed:
            raise HttpError("ConnectError", "the client is closed")
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        head = f"{method} {target} HTTP/1.1\r\n{self._head}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            head += "Content-Length: 0\r\n"
        data = (head + "\r\n").encode("latin-1") + (body or b"")
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise HttpError("PoolTimeout", f"no connection free within {self._timeout} s") from None
        try:
            while self._idle:
                connection = self._idle.pop()
                if connection[0].at_eof() or connection[1].is_closing():
                    connection[1].close()
                    continue
                with contextlib.suppress(_Stale):  # closed while idle: a new one
                    return await self._exchange(connection, data, method, reused=True)
            return await self._exchange(await self._connect(), data, method, reused=False)
        finally:
            self._slots.release()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                    limit=MAX_HEADER_SIZE,
                )
        except TimeoutError:
            raise HttpError(
                "ConnectTimeout", f"no connection to {self._host}:{self._port} in {self._timeout} s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise HttpError("ConnectError", f"{self._host}:{self._port}: {exc}") from None

    async def _exchange(
        self,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        data: bytes,
        method: str,
        *,
        reused: bool,
    ) -> HttpResponse:
        reader, writer = connection
        keep = False
        try:
            try:
                async with asyncio.timeout(self._timeout):
                    writer.write(data)
                    await writer.drain()
            except TimeoutError:
                raise HttpError("WriteTimeout", f"not sent within {self._timeout} s") from None
            except OSError as exc:
                if reused:
                    raise _Stale from None
                raise HttpError("WriteError", str(exc)) from None
            try:
                async with asyncio.timeout(self._timeout):
                    response, keep = await self._read(reader, method, reused)
            except TimeoutError:
                raise HttpError("ReadTimeout", f"no answer within {self._timeout} s") from None
            return response
        finally:
            if keep and not self._closed:
                self._idle.append(connection)
            else:
                writer.close()

    async def _read(
        self, reader: asyncio.StreamReader, method: str, reused: bool
    ) -> tuple[HttpResponse, bool]:
        """(the answer, whether the connection may be reused)."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if reused and not exc.partial:
                raise _Stale from None
            raise HttpError("RemoteProtocolError", "the server closed without answering") from None
        except asyncio.LimitOverrunError:
            raise HttpError(
                "RemoteProtocolError", f"response head over {MAX_HEADER_SIZE} bytes"
            ) from None
        except OSError as exc:
            if reused:
                raise _Stale from None
            raise HttpError("ReadError", str(exc)) from None
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpError("RemoteProtocolError", f"not an HTTP/1.x answer: {lines[0][:100]!r}")
        status = int(code)
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        keep = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
        try:
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                body = b""
            elif "chunked" in fields.get("transfer-encoding", "").lower():
                body = await _read_chunked(reader)
            elif "content-length" in fields:
                length = fields["content-length"]
                if not length.isdigit() or int(length) > MAX_BODY_SIZE:
                    raise HttpError("RemoteProtocolError", f"bad Content-Length {length[:30]!r}")
                body = await reader.readexactly(int(length))
            else:  # the body runs to the end of the connection
                keep = False
                body = await reader.read(MAX_BODY_SIZE + 1)
                while len(body) <= MAX_BODY_SIZE and (more := await reader.read(65536)):
                    body += more
                if len(body) > MAX_BODY_SIZE:
                    raise HttpError("RemoteProtocolError", f"body over {MAX_BODY_SIZE} bytes")
        except asyncio.IncompleteReadError:
            raise HttpError("RemoteProtocolError", "the server closed mid-answer") from None
        except asyncio.LimitOverrunError:
            raise HttpError("RemoteProtocolError", "a chunk line too long") from None
        except OSError as exc:
            raise HttpError("ReadError", str(exc)) from None
        return HttpResponse(status, reason, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (RFC 9112 section 7.1), trailers skipped."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError("RemoteProtocolError", f"bad chunk size {size_text[:20]!r}") from None
        total += size
        if size < 0 or total > MAX_BODY_SIZE:
            raise HttpError("RemoteProtocolError", f"body over {MAX_BODY_SIZE} bytes")
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError("RemoteProtocolError", "chunk not followed by CRLF")
