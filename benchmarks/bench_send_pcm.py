"""send_pcm on a long input: framed whole (before issue 24) or 10 s at a time (now).

60 s of int16 (3000 chunks of 20 ms) sent to a server that reads and drops everything
(a few lines of asyncio, in this process), on one open session: the time of one call, for
the framing batch the package uses (``lazy``) and for a batch larger than the input
(``whole``: how send_pcm framed before, one buffer for the whole input). The two
should cost the same; the lazy one's memory does not grow with the input
(tests/test_transport_hostile.py measures that).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fishjam_fast import Agent, OutgoingAudioTrackOptions, track

GROUP = "send_pcm: 60 s int16 at 16 kHz, 3000 chunks, one call"


_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_AUTHENTICATED = b"\x82\x02\x0a\x00"  # a binary frame: AgentResponse{authenticated{}}


async def _drop_everything(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts the upgrade, answers any first frame with ``authenticated``, then reads
    and drops everything."""
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.partition(b":")[2].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    await reader.read(1)  # the auth request has begun: answer it
    writer.write(_AUTHENTICATED)
    while await reader.read(1 << 20):
        pass
    writer.close()


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    loop = asyncio.new_event_loop()

    async def start() -> Any:
        server = await asyncio.start_server(_drop_everything, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        agent = Agent("a", "r", "t", url, reconnect=False, close_timeout=0.5)
        context = agent.connect()
        opened = await context.__aenter__()
        sender = await opened.add_track(OutgoingAudioTrackOptions())
        return context, sender

    context, sender = loop.run_until_complete(start())
    yield loop, sender
    loop.run_until_complete(context.__aexit__(None, None, None))
    loop.close()


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("batch", ["lazy", "whole"])
def test_send_pcm_long_input(
    benchmark: Any,
    session: tuple[asyncio.AbstractEventLoop, Any],
    batch: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop, sender = session
    if batch == "whole":
        monkeypatch.setattr(track, "_BATCH_CHUNKS", 1 << 40)
    samples = np.resize((np.arange(2000) - 1000).astype(np.int16), 60 * 16000)
    benchmark.name = f"send_pcm[{batch}]"
    sent = benchmark(lambda: loop.run_until_complete(sender.send_pcm(samples)))
    assert sent == 3000
