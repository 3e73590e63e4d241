"""End to end: client CPU per message, sending and receiving 640-byte chunks.

The local Fishjam runs in another process (``LocalFishjamProcess``); the client sends
``MESSAGES`` chunks through ``send_chunk`` or receives ``MESSAGES`` track_data messages
through ``receive()``. Each round is timed with ``time.process_time`` (the client
process's CPU, not wall time), so the report's figures are CPU seconds per round of
``MESSAGES`` messages. Four clients in the same run, on uvloop and on asyncio:

- ``fishjam_fast``: this library;
- ``plain_sdk``: ``fishjam.agent`` (fishjam-server-sdk);
- ``bare_websockets``: a websockets client sending prebuilt frames / receiving raw
  frames without decoding: the ceiling of any websockets-based client.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop
import websockets

import fishjam_fast
from fishjam_fast import _codec_py
from fishjam_fast.local import LocalFishjamProcess

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
MESSAGES = 2_000 if QUICK else 20_000
ROUNDS = 3 if QUICK else 5
CHUNK = bytes(640)  # 20 ms of 16 kHz mono PCM16

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalFishjamProcess]:
    with LocalFishjamProcess(seconds=900) as process:
        yield process


class Client:
    """One connected client of one kind on its own event loop, reused across rounds."""

    def __init__(self, kind: str, loop_name: str, server: LocalFishjamProcess) -> None:
        self.kind = kind
        self.server = server
        self.spec = server.create_agent()
        self.loop = LOOPS[loop_name]()
        self._exit: Callable[[], Any] = lambda: None
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        spec = self.spec
        if self.kind == "bare_websockets":
            url = spec.url.replace("http", "ws", 1) + "/socket/agent/websocket"
            self.ws = await websockets.connect(url, compression=None)
            await self.ws.send(_codec_py.encode_auth_request(spec.token))
            await self.ws.recv()
            self.frame = _codec_py.encode_track_data("0" * 32, CHUNK)
            self._exit = self.ws.close
            return
        if self.kind == "fishjam_fast":
            module: Any = fishjam_fast
        else:
            import fishjam.agent as module
        agent = module.Agent(spec.peer_id, spec.room_id, spec.token, spec.url)
        self._context = agent.connect()
        self.session = await self._context.__aenter__()
        self.track = await self.session.add_track(module.OutgoingAudioTrackOptions())
        self.messages = self.session.receive()

        async def close() -> None:
            await self._context.__aexit__(None, None, None)

        self._exit = close

    def close(self) -> None:
        self.loop.run_until_complete(self._exit())
        self.loop.close()

    # -- one round each way -------------------------------------------------------

    def send_round(self) -> None:
        self.loop.run_until_complete(self._send(MESSAGES))

    async def _send(self, n: int) -> None:
        if self.kind == "bare_websockets":
            send, frame = self.ws.send, self.frame
            for _ in range(n):
                await send(frame)
            return
        send_chunk = self.track.send_chunk
        for _ in range(n):
            await send_chunk(CHUNK)

    def flood(self) -> threading.Thread:
        """Has the server send MESSAGES chunks to this client, from another thread."""
        path = f"/local/agent/{self.spec.peer_id}/flood"
        thread = threading.Thread(target=self.server.call, args=("POST", path, {"count": MESSAGES}))
        thread.start()
        return thread

    def receive_round(self, flood: threading.Thread) -> None:
        self.loop.run_until_complete(self._receive(MESSAGES))
        flood.join(60)

    async def _receive(self, n: int) -> None:
        if self.kind == "bare_websockets":
            recv = self.ws.recv
            for _ in range(n):
                await recv(decode=False)
            return
        messages = self.messages
        for _ in range(n):
            message = await messages.__anext__()
            message.data  # noqa: B018 - the application would read it


KINDS = ["fishjam_fast", "plain_sdk", "bare_websockets"]


@pytest.mark.benchmark(timer=time.process_time, disable_gc=False)
@pytest.mark.parametrize("loop_name", list(LOOPS))
@pytest.mark.parametrize("kind", KINDS)
def test_send(benchmark: Any, server: LocalFishjamProcess, kind: str, loop_name: str) -> None:
    benchmark.group = f"session-send-{loop_name}"
    benchmark.name = f"send[{kind}]"
    benchmark.extra_info["messages"] = MESSAGES
    client = Client(kind, loop_name, server)
    try:
        benchmark.pedantic(client.send_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    finally:
        client.close()


@pytest.mark.benchmark(timer=time.process_time, disable_gc=False)
@pytest.mark.parametrize("loop_name", list(LOOPS))
@pytest.mark.parametrize("kind", KINDS)
def test_receive(benchmark: Any, server: LocalFishjamProcess, kind: str, loop_name: str) -> None:
    benchmark.group = f"session-receive-{loop_name}"
    benchmark.name = f"receive[{kind}]"
    benchmark.extra_info["messages"] = MESSAGES
    client = Client(kind, loop_name, server)
    try:
        benchmark.pedantic(
            client.receive_round,
            setup=lambda: ((client.flood(),), {}),
            rounds=ROUNDS,
            warmup_rounds=1,
        )
    finally:
        client.close()
