"""A minimal real-time PACER server for the real-time benchmark (run in its own process).

    python benchmarks/pacer.py [--host 127.0.0.1] [--port 0] [--lifetime 900]

It speaks just enough of the WebSocket handshake (RFC 6455 section 4.2) and of the agent
protocol (/work/shared/wire-protocol.md) for echo agents: it answers ``auth_request``
with ``authenticated``, accepts ``add_track``, and counts the ``track_data`` the agents
echo. Every authenticated connection receives one PREBUILT ``track_data`` frame (640
bytes of PCM16: 20 ms at 16 kHz mono) every 20 ms, built once with google.protobuf (the
reference codec, never fishjam_fast's).

Why not the local Fishjam: it decodes and re-encodes every message in Python and cannot
keep pace beyond about 400 agents. Here one timer walks a wheel of ``SLOTS`` slots over
the 20 ms period; each new connection joins the least-loaded slot, so the connections
are spread evenly over the period, and a slot's tick writes the same bytes object to
each of its connections. Receiving costs one header parse per frame: an echo is
recognised by its first unmasked payload byte (the ``track_data`` tag), never decoded.

Cheap enough for N=1000 on a shared 2-core machine: once a connection streams, the
loop no longer reads it (``pause_reading``): its slot's tick reads it every
``READ_PERIODS`` periods, everything queued in one large ``read`` (five per-chunk
echoes, or one window's, per read instead of a read, an epoll wake-up and a Python
call per echo). What the agents receive is unchanged; echoes are counted up to 100 ms
later, which two snapshots' difference does not notice.

Honesty of the pace: a tick that runs more than one whole period late is skipped (the
chunks are ``late``: the pacer's fault), and a connection whose write buffer is over its
bound is skipped for that tick (``blocked``: the client does not read fast enough); both
count as due and not delivered. So per connection ``due``, ``sent``, ``late`` and
``blocked`` say who kept pace, and a benchmark counts a run only when the pacer itself
delivered at least 95% of the chunks due (see ``PacerServer.snapshot``).

Control, one line each on stdin -> stdout: it prints ``listening <port>`` once ready;
``snapshot`` prints one JSON line of cumulative counters (see ``PacerServer.snapshot``);
``start`` starts the stream of the connections held back by ``--hold`` (so that N agents
connect before the first chunk, not while earlier ones are being fed); ``quit`` or the
end of stdin (the parent went away) aborts every connection and stops it, and so does
``--lifetime``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import json
import os
import resource
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, cast

PERIOD = 0.020
"""Seconds between two chunks of one connection (20 ms of audio)."""
SLOTS = 20
"""Timer-wheel slots per period: 1 ms apart, the resolution of uvloop's timers."""
CHUNK_BYTES = 640
"""PCM16, 16 kHz, mono, 20 ms."""
PEER_ID = "pacer-peer"
TRACK_ID = "pacer-track"
MAX_REQUEST = 16384
"""Largest HTTP upgrade request accepted, in bytes."""
MAX_FRAME = 1 << 20
"""Largest client frame accepted (an echo is under 700 bytes); beyond it: close 1009."""
WRITE_HIGH = 64 * 1024
"""Write-buffer bound per connection: over it, ticks skip the connection."""
TRACK_DATA_TAG = 0x22
"""First byte of an ``AgentRequest`` holding ``track_data`` (field 4, length-delimited)."""
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
READ_PERIODS = 5
"""A streaming connection's echoes are read every this many periods (100 ms), at once."""
READ_MAX = 1 << 18
"""Bytes one read of a streaming connection takes (it reads again while they come full)."""


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked, unfragmented server frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, size])
    elif size < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")
    return header + payload


def chunk_payload() -> bytes:
    """The ``AgentResponse{track_data}`` every connection receives, by google.protobuf."""
    from fishjam_fast._proto import agent_pb2, notifications_pb2

    pcm = bytes((i * 37) & 0xFF for i in range(CHUNK_BYTES))  # not silence, not compressible
    track = notifications_pb2.Track(id=TRACK_ID, type=notifications_pb2.TRACK_TYPE_AUDIO)
    data = agent_pb2.AgentResponse.TrackData(peer_id=PEER_ID, track=track, data=pcm)
    return agent_pb2.AgentResponse(track_data=data).SerializeToString()


def authenticated_payload() -> bytes:
    from fishjam_fast._proto import agent_pb2

    message = agent_pb2.AgentResponse(authenticated=agent_pb2.AgentResponse.Authenticated())
    return message.SerializeToString()


def _unmask(payload: bytes, mask: bytes) -> bytes:
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[: len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")


class Wheel:
    """The schedule: ``SLOTS`` lists of connections, one timer over all of them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, frame: bytes) -> None:
        self.loop = loop
        self.frame = frame  # one bytes object, written to every connection
        self.slots: list[list[Connection]] = [[] for _ in range(SLOTS)]
        self.step = PERIOD / SLOTS
        self.start = loop.time()
        self.next_tick = 0  # index of the first tick not yet run
        self.late_max = 0.0  # worst tick lateness since the last snapshot, seconds
        self.ticks_skipped = 0
        loop.call_at(self.start + self.step, self.tick)

    def join(self, conn: Connection) -> None:
        """Puts ``conn`` in the least-loaded slot (the first one on a tie)."""
        index = min(range(SLOTS), key=lambda i: len(self.slots[i]))
        self.slots[index].append(conn)
        conn.slot = self.slots[index]
        conn.slot_index = index
        conn.read_batched()

    def tick(self) -> None:
        now = self.loop.time()
        # libuv keeps time in whole milliseconds, so uvloop may run this up to 1 ms early:
        # run the tick it was set for anyway (waiting for it again would spin the loop)
        current = max(int((now - self.start) / self.step), self.next_tick)
        self.late_max = max(self.late_max, now - (self.start + self.next_tick * self.step))
        frame = self.frame
        for index in range(self.next_tick, current + 1):
            slot = self.slots[index % SLOTS]
            if current - index >= SLOTS:  # over a whole period late: due, not delivered
                self.ticks_skipped += 1
                for conn in slot:
                    conn.due += 1
                    conn.late += 1
                continue
            for conn in slot:
                conn.due += 1
                if conn.writing:
                    conn.write(frame)
                    conn.sent += 1
                else:
                    conn.blocked += 1
            if index // SLOTS % READ_PERIODS == 0:
                for conn in slot[:]:  # (a close frame read here leaves the slot)
                    conn.drain()
        self.next_tick = max(self.next_tick, current + 1)
        self.loop.call_at(self.start + self.next_tick * self.step, self.tick)


class Connection(asyncio.Protocol):
    """One agent socket: the upgrade, then frames; counters for the snapshot."""

    def __init__(self, server: PacerServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.write: Callable[[bytes], None] = lambda data: None
        self.request = b""  # the HTTP upgrade request, until it is complete
        self.upgraded = False
        self.authenticated = False
        self.writing = True  # False while the transport's write buffer is over its bound
        self.pending = b""  # an incomplete frame carried to the next data_received
        self.slot: list[Connection] | None = None  # the wheel's list this connection is in
        self.slot_index = -1  # its index in the wheel (kept after the connection ends)
        self.due = 0  # chunks due since the connection authenticated
        self.late = 0  # due, not sent: the tick ran over a period late
        self.blocked = 0  # due, not sent: the write buffer was over WRITE_HIGH
        self.sent = 0  # chunks written
        self.echoes = 0  # track_data frames received
        self.tracks = 0  # add_track requests received
        self.fd = -1  # the socket, read by the wheel once the connection streams (drain)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, though it is one
        self.transport = tcp = cast(asyncio.Transport, transport)
        self.write = tcp.write
        tcp.set_write_buffer_limits(high=WRITE_HIGH)
        self.server.connections.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.writing = False
        self.fd = -1
        if self.slot is not None:
            self.slot.remove(self)
            self.slot = None

    def read_batched(self) -> None:
        """From now on the wheel reads this connection (``drain``), not the loop."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if transport is None or sock is None or transport.is_closing():
            return
        self.fd = sock.fileno()
        transport.pause_reading()
        self.drain()  # whatever came before the loop stopped reading it

    def drain(self) -> None:
        """Reads everything queued on the socket (the wheel's batched read)."""
        while self.fd >= 0 and self.transport is not None and not self.transport.is_closing():
            try:
                data = os.read(self.fd, READ_MAX)
            except BlockingIOError:
                return
            except OSError:
                self.transport.abort()
                return
            if not data:  # the agent closed its side
                self.transport.close()
                return
            self.data_received(data)
            if len(data) < READ_MAX:
                return

    def pause_writing(self) -> None:
        self.writing = False

    def resume_writing(self) -> None:
        self.writing = self.slot is not None

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self._handshake(data)
            return
        if self.pending:
            data = self.pending + data
        size = len(data)
        pos = 0
        while size - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            if not b1 & 0x80 or b0 & 0x70 or not b0 & 0x80:
                return self._fail(1002, "frames must be masked, final, without extensions")
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if size - head < 2:
                    break
                length = (data[head] << 8) | data[head + 1]
                head += 2
            elif length == 127:
                if size - head < 8:
                    break
                length = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if length > MAX_FRAME:
                return self._fail(1009, f"frame of {length} bytes over {MAX_FRAME}")
            end = head + 4 + length
            if end > size:
                break
            if b0 == 0x82 and length and data[head + 4] ^ data[head] == TRACK_DATA_TAG:
                self.echoes += 1  # the hot path: a track_data echo, counted, not decoded
            else:
                self._message(b0 & 0x0F, _unmask(data[head + 4 : end], data[head : head + 4]))
                if self.transport is None or self.transport.is_closing():
                    return None
            pos = end
        self.pending = data[pos:]
        return None

    def _handshake(self, data: bytes) -> None:
        self.request += data
        if b"\r\n\r\n" not in self.request:
            if len(self.request) > MAX_REQUEST:
                self._reject(b"431 Request Header Fields Too Large")
            return
        head, _, rest = self.request.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get(b"sec-websocket-key")
        if key is None or headers.get(b"upgrade", b"").lower() != b"websocket":
            self._reject(b"400 Bad Request")
            return
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        self.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.upgraded = True
        self.request = b""
        if rest:
            self.data_received(rest)

    def _reject(self, status: bytes) -> None:
        assert self.transport is not None
        self.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.transport.close()

    def _message(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x9:  # ping: pong with the same application data
            self.write(ws_frame(0xA, payload))
        elif opcode == 0x8:  # close: echo the code (section 5.5.1), then close the socket
            self._close(payload[:2])
        elif opcode == 0x2:
            self._agent_request(payload)
        elif opcode != 0xA:  # text frames and continuations have no place in the protocol
            self._fail(1003, f"opcode {opcode} not supported")

    def _agent_request(self, payload: bytes) -> None:
        from fishjam_fast._proto import agent_pb2

        try:
            request = agent_pb2.AgentRequest.FromString(payload)
        except Exception as exc:  # google.protobuf's DecodeError
            self._fail(1002, f"not an AgentRequest: {exc}")
            return
        kind = request.WhichOneof("content")
        if not self.authenticated:
            if kind != "auth_request":
                self._fail(1000, "unauthenticated")
                return
            self.authenticated = True
            self.write(self.server.authenticated_frame)
            self.server.stream(self)
        elif kind == "add_track":
            self.tracks += 1
        elif kind == "track_data":  # an echo the hot path did not see (a split tag byte)
            self.echoes += 1

    def _fail(self, code: int, reason: str) -> None:
        self._close(code.to_bytes(2, "big") + reason.encode()[:120])

    def _close(self, payload: bytes) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            self.write(ws_frame(0x8, payload))
            self.transport.close()
        self.connection_lost(None)


class PacerServer:
    """The listening socket, the wheel and every connection ever accepted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, hold: bool = False) -> None:
        self.connections: list[Connection] = []
        self.authenticated_frame = ws_frame(0x2, authenticated_payload())
        self.wheel = Wheel(loop, ws_frame(0x2, chunk_payload()))
        self.held: list[Connection] | None = [] if hold else None  # waiting for start()

    def stream(self, conn: Connection) -> None:
        """Starts the chunks to an authenticated connection, or holds it until start()."""
        if self.held is None:
            self.wheel.join(conn)
        else:
            self.held.append(conn)

    def start(self) -> None:
        """Streams to the held connections still open, and to every later one at once."""
        held, self.held = self.held or [], None
        # what exists now lives to the end: out of the collector's way, so that no full
        # collection of a thousand connections' objects stalls a tick
        gc.freeze()
        for conn in held:
            if conn.transport is not None and not conn.transport.is_closing():
                self.wheel.join(conn)

    def snapshot(self) -> dict[str, Any]:
        """Cumulative counters; two snapshots' difference is a measurement window.

        ``conns`` lists ``[due, sent, echoes, late, blocked, open, slot]`` per connection
        in accept order (``slot``: its wheel slot, -1 before it streams);
        ``late_max_ms`` is the worst tick lateness since the previous snapshot; ``cpu`` the
        pacer's own CPU seconds (to show its headroom).
        """
        wheel = self.wheel
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out = {
            "time": time.monotonic(),
            "cpu": usage.ru_utime + usage.ru_stime,
            "late_max_ms": 1e3 * wheel.late_max,
            "ticks_skipped": wheel.ticks_skipped,
            "conns": [
                [c.due, c.sent, c.echoes, c.late, c.blocked, c.slot is not None, c.slot_index]
                for c in self.connections
            ],
        }
        wheel.late_max = 0.0
        return out


PRIORITY = -10
"""The pacer's nice value where it may raise its priority (root): it stands for a server
on another machine, so on a machine shared with busy jobs it should not wait behind
them for the CPU (a tick late by a whole period is skipped and spoils the run). Its CPU
time, the agents' and what they receive are the same at any priority."""


def _raise_priority() -> None:
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > PRIORITY:
            os.setpriority(os.PRIO_PROCESS, 0, PRIORITY)
    except OSError:  # not permitted (not root): the default priority
        pass


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(host: str, port: int, lifetime: float, *, hold: bool = False) -> None:
    """Serves until ``quit``, the end of stdin, or ``lifetime`` seconds."""
    loop = asyncio.get_running_loop()
    pacer = PacerServer(loop, hold=hold)
    server = await loop.create_server(lambda: Connection(pacer), host, port, backlog=4096)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    done = loop.create_future()
    commands: asyncio.Queue[bytes] = asyncio.Queue()

    class Control(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                commands.put_nowait(line.strip())

        def connection_lost(self, exc: Exception | None) -> None:
            commands.put_nowait(b"quit")

    await loop.connect_read_pipe(Control, sys.stdin)
    timer = loop.call_later(lifetime, done.set_result, None)
    try:
        while not done.done():
            getter = asyncio.ensure_future(commands.get())
            await asyncio.wait([getter, done], return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            command = getter.result()
            if command == b"snapshot":
                sys.stdout.write(json.dumps(pacer.snapshot(), separators=(",", ":")) + "\n")
                sys.stdout.flush()
            elif command == b"start":
                pacer.start()
            elif command == b"quit":
                break
    finally:
        timer.cancel()
        server.close()
        for conn in pacer.connections:
            if conn.transport is not None:
                conn.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=900.0, help="seconds before exiting")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--hold", action="store_true", help="stream only after `start`")
    args = parser.parse_args()
    _raise_fd_limit()
    _raise_priority()
    main = serve(args.host, args.port, args.lifetime, hold=args.hold)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


class Pacer:
    """Runs the pacer in a child process (the benchmark's side of the control pipe).

    ``with Pacer() as pacer:`` agents connect to ``pacer.url``; ``pacer.snapshot()``
    returns the counters (see :meth:`PacerServer.snapshot`).
    """

    SCRIPT = Path(__file__).resolve()

    def __init__(
        self,
        *,
        lifetime: float = 900.0,
        loop: str = "uvloop",
        hold: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.timeout = timeout
        command = [sys.executable, str(self.SCRIPT), "--lifetime", str(lifetime), "--loop", loop]
        self._process = subprocess.Popen(
            [*command, "--hold"] if hold else command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._buffer = b""
        try:
            word, port = self._readline().split()
            if word != "listening":
                raise RuntimeError(f"pacer said {word!r} instead of listening")
        except BaseException:
            self.close()
            raise
        self.port = int(port)
        self.url = f"http://127.0.0.1:{self.port}"

    def _readline(self) -> str:
        """One line of the pacer's stdout, within ``timeout`` seconds."""
        assert self._process.stdout is not None
        deadline = time.monotonic() + self.timeout
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"the pacer did not answer within {self.timeout} s")
            data = os.read(fd, 1 << 20)
            if not data:
                raise RuntimeError(f"the pacer exited (status {self._process.poll()})")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _command(self, line: bytes) -> None:
        if self._process.stdin is None or self._process.stdin.closed:
            raise RuntimeError("the pacer was closed")
        self._process.stdin.write(line + b"\n")
        self._process.stdin.flush()

    def snapshot(self) -> dict[str, Any]:
        """The pacer's cumulative counters, now."""
        self._command(b"snapshot")
        snapshot: dict[str, Any] = json.loads(self._readline())
        return snapshot

    def start(self) -> None:
        """Starts the stream to the connections held back (``hold=True``)."""
        self._command(b"start")

    def close(self) -> None:
        """Stops the pacer, aborting its connections (``quit``; a kill after ``timeout``)."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.write(b"quit\n")
                stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> Pacer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


if __name__ == "__main__":
    main()
