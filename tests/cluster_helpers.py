"""Helpers of the fleet tests: a real redis-server on a random loopback port, boxes
(``python -m fishjam_fast serve ... --redis``) as real processes, a TCP proxy to cut a
box from Redis, and a watch on the local Fishjam's agents per room."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.server_helpers import APPS

REQUIRE = "FISHJAM_FAST_REQUIRE_REDIS"
"""Set to 1 (as .ci/run does): a missing redis-server fails the tests instead of
skipping them."""

DISPATCH_TOKEN = "d1spatch"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of our own: 127.0.0.1, a random port, no persistence."""

    def __init__(self, binary: str, directory: Path) -> None:
        self._binary = binary
        self._directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self._binary,
                "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly",
                "no", "--dir", str(self._directory), "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


class Box:
    """One ``serve --redis`` process; its log goes to a file (read, never piped)."""

    def __init__(self, name: str, log: Path, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.log = log
        self.process = process
        self.url = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while not self.url:
            for line in self.text().splitlines():
                if "agent server ready" in line:
                    self.url = line.rsplit("HTTP ", 1)[1].strip()
            if self.process.returncode is not None:
                raise AssertionError(f"box {self.name} exited: {self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"box {self.name} not ready: {self.text()}")
            await asyncio.sleep(0.05)

    def kill(self, number: int = signal.SIGKILL) -> None:
        if self.process.returncode is None:
            self.process.send_signal(number)


async def start_box(
    name: str,
    directory: Path,
    fishjam: Any,
    redis_url: str,
    *,
    entry: str = "server_apps:idle",
    lease_ttl: float = 2.0,
    extra: tuple[str, ...] = ("--source", "none"),
) -> Box:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [APPS, os.environ.get("PYTHONPATH")])),
        "FISHJAM_MANAGEMENT_TOKEN": fishjam.management_token,
        "FISHJAM_FAST_DISPATCH_TOKEN": DISPATCH_TOKEN,
    }
    log = directory / f"box-{name}.log"
    # not from the repository's root: a worker puts its working directory first on its
    # path and would import the source tree (no extension) instead of the installed one
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-P", "-m", "fishjam_fast", "serve", entry,
            "--fishjam-url", fishjam.url, "--workers", "1", "--metrics-port", "0",
            "--drain-timeout", "5", "--redis", redis_url, "--lease-ttl", str(lease_ttl),
            *extra, env=env, stdout=out, stderr=out, cwd=directory,
        )  # fmt: skip
    return Box(name, log, process)


async def stop_boxes(boxes: list[Box]) -> None:
    for box in boxes:
        box.kill(signal.SIGKILL)
    for box in boxes:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(box.process.wait(), 10)


def connected_agents(fishjam: Any) -> dict[str, list[str]]:
    """Room id -> its agent peers connected now."""
    out: dict[str, list[str]] = {}
    for room_id, room in fishjam.rooms.items():
        out[room_id] = [
            p.id for p in room.peers.values() if p.type == "agent" and p.connection is not None
        ]
    return out


class AgentWatch:
    """Samples the local Fishjam every 10 ms: how long any room had two agents at once."""

    def __init__(self, fishjam: Any) -> None:
        self._fishjam = fishjam
        self._since: dict[str, float] = {}
        self.longest_overlap = 0.0
        self.overlaps: list[tuple[str, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            for room_id, agents in connected_agents(self._fishjam).items():
                if len(agents) > 1:
                    self._since.setdefault(room_id, now)
                elif room_id in self._since:
                    took = now - self._since.pop(room_id)
                    self.overlaps.append((room_id, took))
                    self.longest_overlap = max(self.longest_overlap, took)
            for started in self._since.values():
                self.longest_overlap = max(self.longest_overlap, now - started)
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Proxy:
    """A TCP proxy to Redis on loopback; :meth:`cut` closes it and every connection."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start
