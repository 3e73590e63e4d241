"""The default transport: picows parses the byte stream, one native object owns the rest.

picows (a Cython WebSocket library) reads the socket into its own buffer, parses frame
headers, and calls ``on_ws_frame`` of the listener with a view of each payload in
that buffer; sends go through its framing and masking (``WSTransport.send``, one copy
into its write buffer, then a direct ``send(2)`` when the socket's buffer is empty).
Everything picows leaves to its user is done by the compiled listener
(``fishjam_fast._picows_listener.FrameListener``, the connection's one owner of its
state), with a bound on each: reassembling fragments (one buffer,
``max_message_size``, ``max_fragments``), refusing text frames (1003) and reserved bits
(1002), answering pings (coalesced to the latest one while writing is paused), the
keepalive (timers, not a task), pausing reading while ``max_queue`` messages are
unread, and the closing handshake. :class:`PicowsTransport` adds what it shares with
the websockets transport (:class:`~.base.TransportBase`) through the listener's
declared hooks (``on_ended``, ``resume_writing``).
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import urllib.parse
import urllib.request
from typing import cast

from picows import WSError, WSListener, ws_connect

try:  # what picows' proxy connections raise (it depends on python-socks)
    from python_socks import ProxyError
except ImportError:  # pragma: no cover - a picows without proxy support

    class ProxyError(Exception):  # type: ignore[no-redef]
        """Never raised: no python-socks."""


from .._env import NO_EXTENSIONS
from .._native import BUILD_HINT
from .base import PICOWS_PROXY_SCHEMES, TransportBase, TransportOptions, cannot_connect

# The per-frame path is compiled, with no Python twin: picows itself needs a compiler, and
# the pure-Python build (no extension) has the websockets transport, which
# choose.default_transport picks there. Asking for picows there says so.
if NO_EXTENSIONS:
    raise ImportError(
        "the picows transport runs on fishjam_fast's compiled extension, and "
        "FISHJAM_FAST_NO_EXTENSIONS=1 chooses the pure-Python build: use "
        "transport='websockets' (or unset FISHJAM_FAST_NO_EXTENSIONS)"
    )
try:
    from .._picows_listener import FrameListener
except ImportError as exc:  # pragma: no cover - a build without the extension
    raise ImportError(
        f"the picows transport runs on fishjam_fast's compiled extension, which this "
        f"installation lacks ({exc}): use transport='websockets', or {BUILD_HINT}"
    ) from exc


class PicowsTransport(FrameListener, TransportBase):
    """A Transport on picows.

    The connection (its state, every frame, the keepalive, failing and closing) is the
    compiled :class:`~fishjam_fast._picows_listener.FrameListener`; this class adds
    what both transports share (:class:`~.base.TransportBase`: ``drain``, telling the
    session the connection ended) through the two hooks the listener declares.
    """

    def __init__(self, options: TransportOptions) -> None:
        super().__init__(options)
        self._drainers: list[asyncio.Future[None]] = []

    def on_ended(self) -> None:
        super().on_ended()
        self._wake_drainers()
        self._tell_closed()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._wake_drainers()

    async def close(self) -> None:
        self.begin_close()
        try:
            async with asyncio.timeout(self.options.close_timeout):
                await asyncio.shield(self.disconnected)
        except TimeoutError:
            self._note_unsent()  # what the flush did not get out: reported, not silent
            self.abort()
            await asyncio.shield(self.disconnected)

    takes_client_frames = True
    dispatches = True  # every frame, where picows delivers it


def _proxy_for(url: str, proxy: str | bool | None) -> str | None:
    """The proxy URL to connect ``url`` through: ``proxy`` itself, none, or for True the
    environment's, read with the standard library (``urllib.request.getproxies`` and
    ``proxy_bypass``) in the order websockets documents for its ``proxy=True``, so both
    transports pick the same proxy: ``no_proxy`` honoured, then
    ``wss``/``socks``/``https`` for ``wss://``, ``ws``/``socks``/``https``/``http`` for
    ``ws://``; an ``http://`` proxy given as ``socks`` means SOCKS5.

    Raises:
        ValueError: the environment's proxy has a scheme picows cannot use.
    """
    if proxy is None or proxy is False:
        return None
    if isinstance(proxy, str):
        return proxy
    # the environment once when it names no proxy (the common case): proxy_bypass reads
    # it all again, so it is asked only when there is a proxy to bypass
    proxies = urllib.request.getproxies()
    if not proxies:
        return None
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    if urllib.request.proxy_bypass(f"{parts.hostname}:{port}"):
        return None
    names = ("wss", "socks", "https") if secure else ("ws", "socks", "https", "http")
    name = next((name for name in names if name in proxies), None)
    if name is None:
        return None
    found = proxies[name]
    if name == "socks" and found.startswith("http://"):
        found = "socks5h://" + found[len("http://") :]
    if found.partition("://")[0].lower() not in PICOWS_PROXY_SCHEMES:
        raise ValueError(
            f"the environment's proxy {found!r} is not one picows connects through "
            f"({', '.join(PICOWS_PROXY_SCHEMES)}); use transport='websockets'"
        )
    return found


async def open_picows(url: str, options: TransportOptions) -> PicowsTransport:
    """Opens a picows connection (a :data:`~.base.TransportFactory`).

    Raises:
        AgentConnectionError: the server could not be reached, a handshake failed, or
            ``open_timeout`` expired.
    """
    secure = url.startswith("wss://")
    context: ssl_module.SSLContext | None = options.ssl if secure else None
    try:
        proxy = _proxy_for(url, options.proxy)
    except ValueError as exc:
        raise cannot_connect(url, exc, options.open_timeout) from None
    try:
        async with asyncio.timeout(options.open_timeout):
            _, listener = await ws_connect(
                lambda: cast(WSListener, PicowsTransport(options)),
                url,
                ssl_context=context,
                # picows drops a connection whose handshake does not complete in time,
                # so a cancelled connect leaves no socket behind
                websocket_handshake_timeout=options.open_timeout,
                enable_auto_ping=False,  # the keepalive is ours (see _ping)
                enable_auto_pong=False,  # pongs are coalesced under backpressure
                max_frame_size=options.max_message_size,
                max_redirects=0,
                proxy=proxy,
            )
    except (TimeoutError, OSError, WSError, ProxyError) as exc:
        raise cannot_connect(url, exc, options.open_timeout) from exc
    assert isinstance(listener, PicowsTransport)
    return listener
