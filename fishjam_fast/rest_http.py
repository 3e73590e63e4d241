"""The REST client's HTTP: aiohttp's client, with Fishjam's deadlines and bounds.

The REST client sends short JSON requests to one host, and an agent server sends
hundreds of them at once (one agent peer per room in a burst). httpx, which this used
to be, spent ~1.1 ms of the event loop's CPU per request under that concurrency (500
concurrent agent peer creations against the local Fishjam: 0.8-1.2 s of the burst),
aiohttp's client 0.14-0.2 ms (the local Fishjam's own part: 0.15 ms). aiohttp is kept well,
pools keep-alive connections, speaks TLS and reads proxies from the environment
(``HTTPS_PROXY``, ``NO_PROXY``...) as httpx did; this module only adds what the REST
client promises on top: per-phase deadlines named as httpx named them (one
:class:`HttpError` kind each), a bounded pool wait, and bounded answers.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_BODY_SIZE", "MAX_HEADER_SIZE", "HttpError", "HttpPool", "HttpResponse"]

MAX_HEADER_SIZE = 64 * 1024
"""Largest response header line (status line, or one header field), in bytes."""

MAX_BODY_SIZE = 16 * 1024 * 1024
"""Largest response body, in bytes (a listing of many rooms stays far below)."""


class HttpError(Exception):
    """A request failed below HTTP (no answer, a malformed one, a deadline passed).

    Attributes:
        kind: ``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``, ``ReadTimeout``,
            ``ReadError`` or ``RemoteProtocolError``.
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
        """Configures the pool; nothing connects before the first request (and the
        aiohttp session is made then, on the loop that uses it).

        Args:
            base_url: ``http(s)://host[:port][/prefix]``; request paths go after it.
            headers: Sent with every request.
            timeout: Seconds each phase may take (waiting for a connection,
                connecting, each read of the answer); None: no deadline.
            max_connections: Most connections (and requests in flight) at once.
            verify: For ``https``: True (verify certificates), False (do not), or an
                ``ssl.SSLContext``.

        Raises:
            ValueError: The URL is not ``http`` or ``https`` with a host.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the Fishjam URL must be http(s)://host..., not {base_url!r}")
        self._base = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout
        self._max_connections = max_connections
        self._ssl: ssl.SSLContext | bool = True
        if parts.scheme == "https":
            self._ssl = verify if isinstance(verify, ssl.SSLContext) else bool(verify)
        # the pool wait is ours (aiohttp's `connect` deadline would name it a connect
        # timeout); the connector holds as many connections as requests may run
        self._slots = asyncio.Semaphore(max_connections)
        self._proxy = _environment_proxy(parts.scheme, parts.hostname)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp  # ~0.1 s: only when the first request goes out

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl),
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._timeout, sock_read=self._timeout
                ),
                # the environment's proxy, read once in __init__: aiohttp's trust_env
                # reads the environment (and ~/.netrc) again for every request, which
                # cost ~0.5 ms of CPU a request, five times the rest of it
                proxy=self._proxy,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
                max_line_size=MAX_HEADER_SIZE,
                max_field_size=MAX_HEADER_SIZE,
            )
        return self._session

    async def aclose(self) -> None:
        """Closes the connections; a request still running fails."""
        self._closed = True
        if self._session is not None:
            await self._session.close()

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
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise HttpError("PoolTimeout", f"no connection free within {self._timeout} s") from None
        try:
            return await self._exchange(method, path, body, params)
        finally:
            self._slots.release()

    async def _exchange(
        self, method: str, path: str, body: bytes | None, params: Mapping[str, str] | None
    ) -> HttpResponse:
        import aiohttp  # imported by _session_now already: a dictionary look-up

        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            async with self._session_now().request(
                method,
                self._base + path,
                data=body,
                params=params,
                headers=headers,
                allow_redirects=False,
            ) as response:
                length = response.content_length
                if length is not None and length > MAX_BODY_SIZE:
                    raise HttpError(
                        "RemoteProtocolError",
                        f"bad Content-Length {length}: over {MAX_BODY_SIZE} bytes",
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                    if size > MAX_BODY_SIZE:
                        raise HttpError("RemoteProtocolError", f"body over {MAX_BODY_SIZE} bytes")
                    chunks.append(chunk)
                return HttpResponse(response.status, response.reason or "", b"".join(chunks))
        except aiohttp.ConnectionTimeoutError:
            raise HttpError(
                "ConnectTimeout", f"no connection to {self._base} in {self._timeout} s"
            ) from None
        except aiohttp.ServerTimeoutError:  # sock_read: no byte of the answer in time
            raise HttpError("ReadTimeout", f"no answer within {self._timeout} s") from None
        except aiohttp.ClientConnectorError as exc:  # certificates included
            raise HttpError("ConnectError", f"{self._base}: {exc}") from None
        except aiohttp.ServerDisconnectedError:
            raise HttpError("RemoteProtocolError", "the server closed without answering") from None
        except aiohttp.ClientPayloadError as exc:
            raise HttpError("RemoteProtocolError", f"the answer's body: {_cause(exc)}") from None
        except aiohttp.ClientResponseError as exc:  # an answer that is not HTTP/1.x
            message = _one_line(exc.message)
            raise HttpError("RemoteProtocolError", f"a malformed answer: {message}") from None
        except aiohttp.ClientOSError as exc:
            raise HttpError("ReadError", str(exc)) from None
        except aiohttp.ClientError as exc:
            raise HttpError("RemoteProtocolError", f"{type(exc).__name__}: {exc}") from None


def _environment_proxy(scheme: str, host: str) -> str | None:
    """The proxy the environment names for ``scheme`` (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, either case) unless ``NO_PROXY`` exempts ``host``: what httpx (the
    plain SDK's client) and curl use."""
    proxies = getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or proxy_bypass(host):
        return None
    return proxy


def _cause(exc: BaseException) -> str:
    """aiohttp's payload errors carry the parser's reason as their cause."""
    cause = exc.__cause__
    return _one_line(str(getattr(cause, "message", cause) if cause is not None else exc))


def _one_line(text: str) -> str:
    """aiohttp's parser messages span lines (with a caret under the bad byte): one line,
    bounded, for a log line and an exception message."""
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."
