"""Server notifications: decoding, and the notifier's CPU for a burst, against the plain SDK.

- Decode one ``TrackAdded`` notification into usable objects: the native decoder, the
  fallback (google.protobuf, then our classes), google.protobuf alone (parse, the member,
  its fields read) and the plain SDK's betterproto parse (what its notifier does).
- A burst of 10,000 notifications through a notifier: the process CPU time (client only:
  the server runs in another process) from connecting until the last one reached the
  handler, ours and the plain SDK's ``FishjamNotifier``, same run, same event loop.

    pytest benchmarks/bench_notifications.py --benchmark-only

``FISHJAM_FAST_BENCH_QUICK=1`` shortens the burst rounds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import betterproto
import pytest
from fishjam.events._protos.fishjam import ServerMessage as BpServerMessage

from fishjam_fast import _notifications_py
from fishjam_fast._proto.server_notifications_pb2 import ServerMessage

native: Any
try:
    from fishjam_fast import _ext as native
except ImportError:  # pragma: no cover
    native = None

needs_native = pytest.mark.skipif(native is None, reason="native extension unavailable")
QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
BURST = 10_000
BURST_ROUNDS = 2 if QUICK else 4

TRACK_ADDED = ServerMessage(
    track_added=ServerMessage.TrackAdded(
        room_id="8d0a0e2e4a1b4c8e9d6f2b7f3c1a5e90",
        peer_id="0f4e1c2b9a8d4c3e8f7a6b5c4d3e2f1a",
        track={"id": "0f4e1c2b9a8d4c3e8f7a6b5c4d3e2f1a:7c1d", "type": 2, "metadata": "{}"},
    )
).SerializeToString()


def _run(benchmark: Any, function: Any, *args: Any) -> Any:
    return benchmark.pedantic(function, args=args, iterations=200, rounds=50, warmup_rounds=2)


# -- decode -----------------------------------------------------------------------------
GROUP = "decode notification TrackAdded"


@needs_native
def test_decode_notification_native(benchmark: Any) -> None:
    benchmark.group = GROUP
    (got,) = _run(benchmark, native.decode_server_message, TRACK_ADDED)
    assert got.track.id.endswith(":7c1d")


def test_decode_notification_fallback(benchmark: Any) -> None:
    benchmark.group = GROUP
    (got,) = _run(benchmark, _notifications_py.decode_server_message, TRACK_ADDED)
    assert got.track.id.endswith(":7c1d")


def _google_protobuf(frame: bytes) -> tuple[str, str, str, int, str]:
    message = ServerMessage.FromString(frame)
    member = getattr(message, message.WhichOneof("content") or "track_added")
    track = member.track
    return member.room_id, member.peer_id, track.id, track.type, track.metadata


def test_decode_notification_google_protobuf(benchmark: Any) -> None:
    benchmark.group = GROUP
    assert _run(benchmark, _google_protobuf, TRACK_ADDED)[2].endswith(":7c1d")


def _betterproto(frame: bytes) -> Any:
    return betterproto.which_one_of(BpServerMessage().parse(frame), "content")[1]


def test_decode_notification_betterproto_sdk(benchmark: Any) -> None:
    benchmark.group = GROUP
    assert _run(benchmark, _betterproto, TRACK_ADDED).track.id.endswith(":7c1d")


# -- a burst through a notifier ---------------------------------------------------------
SERVER = r"""
import asyncio, sys
from websockets.asyncio.server import serve
from fishjam_fast._proto.server_notifications_pb2 import ServerMessage

BURST = int(sys.argv[1])
AUTHENTICATED = ServerMessage(authenticated={}).SerializeToString()
SUBSCRIBED = ServerMessage(
    subscribe_response=ServerMessage.SubscribeResponse(event_type=1)
).SerializeToString()
NOTIFICATION = bytes.fromhex(sys.argv[2])

async def handler(socket):
    await socket.recv()
    await socket.send(AUTHENTICATED)
    await socket.recv()
    await socket.send(SUBSCRIBED)
    for _ in range(BURST):
        await socket.send(NOTIFICATION)
    await socket.wait_closed()

async def main():
    async with serve(handler, "127.0.0.1", 0, max_queue=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def burst_server() -> Iterator[str]:
    """A notification server in another process: a burst after each subscription."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(BURST), TRACK_ADDED.hex()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def _burst_fast(url: str) -> float:
    import fishjam_fast

    done = asyncio.Event()
    count = 0
    notifier = fishjam_fast.FishjamNotifier(url, "token", reconnect=False)

    @notifier.on_server_notification
    def handler(notification: Any) -> None:
        nonlocal count
        count += 1
        if count == BURST:
            done.set()

    start = time.process_time()
    async with notifier:
        await asyncio.wait_for(done.wait(), 60)
        cpu = time.process_time() - start
    return cpu


async def _burst_plain(url: str) -> float:
    from fishjam import FishjamNotifier

    done = asyncio.Event()
    count = 0
    notifier = FishjamNotifier(url, "token")

    @notifier.on_server_notification
    def handler(notification: Any) -> None:
        nonlocal count
        count += 1
        if count == BURST:
            done.set()

    start = time.process_time()
    task = asyncio.create_task(notifier.connect())
    await asyncio.wait_for(done.wait(), 120)
    cpu = time.process_time() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return cpu


def _burst(benchmark: Any, run: Any, url: str) -> None:
    benchmark.group = f"notifier: burst of {BURST} notifications (client CPU)"
    cpus: list[float] = []
    benchmark.pedantic(
        lambda: cpus.append(asyncio.run(run(url))), rounds=BURST_ROUNDS, iterations=1
    )
    benchmark.extra_info["cpu_seconds"] = min(cpus)
    benchmark.extra_info["cpu_us_per_notification"] = min(cpus) / BURST * 1e6


@needs_native
def test_burst_fishjam_fast(benchmark: Any, burst_server: str) -> None:
    _burst(benchmark, _burst_fast, burst_server)


def test_burst_plain_sdk(benchmark: Any, burst_server: str) -> None:
    _burst(benchmark, _burst_plain, burst_server)
