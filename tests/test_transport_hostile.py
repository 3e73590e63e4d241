"""What the second hostile-server run of issue 24 found, each against a server written here.

Every test runs on both transports (picows with each per-frame listener, websockets)
and both loops, with frames built byte by byte (tests/hostile.py), and asserts what the
application sees: no message over the limit, nothing after a failure or after the
server's close frame, the true cause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from fishjam_fast import (
    Agent,
    AgentConnectionError,
    AgentWouldBlockError,
    IncomingTrackData,
    OutgoingAudioTrackOptions,
    ReconnectPolicy,
    SessionStateChange,
)
from fishjam_fast.session import AgentSession
from tests.conftest import ALL_TRANSPORTS
from tests.hostile import (
    BINARY,
    CLOSE,
    PING,
    RSV1,
    TEXT,
    HostileServer,
    Peer,
    close_payload,
    frame,
    track_data,
)

pytestmark = [pytest.mark.usefixtures("transport"), ALL_TRANSPORTS]

SLOW = 30.0
"""A timeout set long on purpose: the test proves it was not waited for."""
HANG = 5.0
"""Generous bound for "did not hang"."""
MiB = 1024 * 1024


def _agent(server: HostileServer, **options: Any) -> Agent:
    return Agent("agent", "room", "token", server.url, reconnect=False, **options)


async def _drain(session: AgentSession) -> tuple[list[Any], Exception | None]:
    """Everything ``receive()`` yields, and what it raised (None: it ended cleanly)."""
    got: list[Any] = []
    try:
        async with asyncio.timeout(HANG):
            async for message in session.receive():
                got.append(message)
    except AgentConnectionError as exc:
        return got, exc
    return got, None


async def _hold(peer: Peer) -> None:
    """Stops reading, keeps the socket open (until the handler's limit)."""
    await asyncio.sleep(SLOW)


# -- 1. a frame just over max_message_size, then a normal close -------------------------


@pytest.mark.parametrize("limit", [4 * MiB, 64 * 1024])
@pytest.mark.parametrize("then", ["close", "nothing"])
async def test_1_a_frame_just_over_the_limit_never_reaches_the_application(
    limit: int, then: str
) -> None:
    # the frame's header and payload in one write, then (at once) a normal close: picows
    # used to send 1009 but go on parsing, delivering the frame and taking the close as
    # the end
    payload = track_data(b"\0" * (limit + 21 - 16))
    assert len(payload) > limit

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.read_until(BINARY)  # add_track: the session is up
        tail = [frame(CLOSE, close_payload(1000))] if then == "close" else []
        await peer.send(frame(BINARY, payload), *tail)
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _agent(server, max_message_size=limit, close_timeout=SLOW).connect() as session:
            await session.add_track(OutgoingAudioTrackOptions())
            got, error = await _drain(session)
    assert got == []
    assert isinstance(error, AgentConnectionError), error
    assert error.code == 1009
    assert str(limit) in error.reason


async def test_1_a_message_before_the_oversized_frame_is_still_delivered() -> None:
    # the same write: picows parses the oversized header while it holds the message
    # before it, and sends its 1009 first; that message still counts, nothing after
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.read_until(BINARY)  # add_track: the session is up
        await peer.send(
            frame(BINARY, track_data(b"\0\1")),
            frame(BINARY, b"\0" * 2000),
            frame(BINARY, track_data(b"\0\2")),
        )
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _agent(server, max_message_size=1000, close_timeout=SLOW).connect() as session:
            await session.add_track(OutgoingAudioTrackOptions())
            got, error = await _drain(session)
    assert [m.data for m in got] == [b"\0\1"]
    assert isinstance(error, AgentConnectionError) and error.code == 1009


# -- 5. the transports agree on protocol violations ----------------------------------------


@pytest.mark.parametrize("violation", ["reserved-bits", "text"])
async def test_5_nothing_is_delivered_after_the_connection_was_failed(violation: str) -> None:
    bad = {
        "reserved-bits": frame(BINARY, track_data(b"\1\1"), rsv=RSV1),
        "text": frame(TEXT, b"{}"),
    }[violation]
    code = 1002 if violation == "reserved-bits" else 1003

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        # one write: the valid frames after the bad one are parsed in the same read
        await peer.send(
            frame(BINARY, track_data(b"\0\1")),
            bad,
            *(frame(BINARY, track_data(bytes([2, n]))) for n in range(5)),
            frame(CLOSE, close_payload(1000)),
        )
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _agent(server, close_timeout=SLOW).connect() as session:
            got, error = await _drain(session)
    assert [m.data for m in got if isinstance(m, IncomingTrackData)] == [b"\0\1"]
    assert isinstance(error, AgentConnectionError), error
    assert error.code == code


async def test_5_data_after_the_servers_close_frame_is_ignored() -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(
            frame(BINARY, track_data(b"\0\1")),
            frame(CLOSE, close_payload(1000, b"bye")),
            *(frame(BINARY, track_data(bytes([2, n]))) for n in range(5)),
        )
        await peer.read_until(CLOSE)

    async with HostileServer(handler) as server:
        async with _agent(server, close_timeout=SLOW).connect() as session:
            got, error = await _drain(session)
            assert error is None
            assert session.close_code == 1000 and session.close_reason == "bye"
    assert [m.data for m in got if isinstance(m, IncomingTrackData)] == [b"\0\1"]


async def test_5_a_text_frame_then_a_normal_close_is_1003() -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(frame(TEXT, b"{}"), frame(CLOSE, close_payload(1000)))
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _agent(server, close_timeout=SLOW).connect() as session:
            started = time.monotonic()
            got, error = await _drain(session)
            assert time.monotonic() - started < HANG
    assert got == []
    assert isinstance(error, AgentConnectionError), error
    assert error.code == 1003 and "text" in error.reason


async def test_5_a_ping_flood_that_reads_no_pongs_is_answered_or_fails_with_its_cause(
    transport: str,
) -> None:
    # 16 MiB of pings from a server that reads nothing, while the application does not
    # read either: picows keeps answering (one pong for the latest ping while writing is
    # paused, RFC 6455 section 5.5.3); websockets answers each ping as it parses it, so
    # it fails the connection (1008, saying why) once a write buffer's worth of pongs
    # waits unsent, instead of buffering pongs without bound
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        pings = frame(PING, b"p" * 125) * 512
        for _ in range(256):
            await peer.send(pings)
        await peer.send(frame(BINARY, track_data(b"after")))
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _agent(server, write_limit=16384, close_timeout=0.5).connect() as session:
            await asyncio.sleep(0.5)  # the application does not read meanwhile
            got: list[Any] = []
            error: AgentConnectionError | None = None
            try:
                async with asyncio.timeout(HANG * 2):
                    async for message in session.receive():
                        got.append(message)
                        break
            except AgentConnectionError as exc:
                error = exc
    if transport == "websockets":
        assert error is not None and error.code == 1008, (error, got)
        assert "does not read the pongs" in error.reason
    else:
        assert error is None
        assert [m.data for m in got] == [b"after"]


async def test_5_a_flood_of_empty_frames_is_bounded(transport: str) -> None:
    # empty binary frames carry nothing in the agent protocol: picows parses each in C;
    # websockets parses each in Python (18 s of CPU for 2 million before), so it fails
    # the connection with 1008 after MAX_EMPTY_MESSAGES in a row
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        empties = frame(BINARY) * 65536
        for _ in range(4):
            await peer.send(empties)
        await peer.send(frame(BINARY, track_data(b"after")), frame(CLOSE, close_payload(1000)))
        await peer.read_until(CLOSE)

    async with HostileServer(handler) as server:
        async with _agent(server, close_timeout=SLOW).connect() as session:
            got, error = await _drain(session)
    data = [m.data for m in got if isinstance(m, IncomingTrackData)]
    if transport == "websockets":
        assert isinstance(error, AgentConnectionError), (error, data)
        assert error.code == 1008 and "empty messages in a row" in error.reason
        assert data == []
    else:
        assert error is None and data == [b"after"]


# -- 2. a server that drops every connection right after accepting it ------------------------

STORM = {
    "close-1001": lambda: [frame(CLOSE, close_payload(1001))],
    "close-1011": lambda: [frame(CLOSE, close_payload(1011, b"oops"))],
    "partial-frame-then-eof": lambda: [frame(BINARY, track_data(b"\0" * 100))[:7]],
    "reset": lambda: [],
}


@pytest.mark.parametrize("how", list(STORM))
async def test_2_a_reconnection_storm_ends_within_the_budget(how: str) -> None:
    budget = 1.5

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(*STORM[how]())
        if how == "reset":
            peer.writer.transport.abort()
            return
        await peer.writer.drain()
        peer.writer.close()  # EOF after the bytes (or the close frame)

    policy = ReconnectPolicy(budget=budget, first_delay=0.05, max_delay=0.2, jitter=0)
    async with HostileServer(handler) as server:
        agent = Agent("agent", "room", "token", server.url, reconnect=policy, close_timeout=0.5)
        async with agent.connect() as session:
            started = time.monotonic()
            with pytest.raises(AgentConnectionError) as info:
                # each connection is authenticated: without stable_after the budget
                # and the backoff restarted every time, and this never ended
                async with asyncio.timeout(budget + HANG):
                    async for _ in session.receive():
                        pass
            elapsed = time.monotonic() - started
        connections = len(server.peers)
    assert budget * 0.8 < elapsed < budget + 2.0
    assert "could not reconnect within 1.5 s" in str(info.value)
    expected = {"close-1001": 1001, "close-1011": 1011}.get(how, 1006)
    assert info.value.code == expected, info.value
    # the backoff went on growing: 0.05, 0.1, 0.2, 0.2 ... within 1.5 s, not 0.05 each
    assert connections <= 12, connections
    assert session.stats.reconnects == connections - 1


async def test_2_a_connection_that_stays_up_starts_a_new_outage() -> None:
    # each connection lasts longer than stable_after: every drop is a new outage with a
    # fresh budget, so the session outlives the budget many times over
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await asyncio.sleep(0.4)
        await peer.send(frame(CLOSE, close_payload(1011)))
        peer.writer.close()

    policy = ReconnectPolicy(budget=0.3, first_delay=0.02, max_delay=0.05, stable_after=0.2)
    async with HostileServer(handler) as server:
        agent = Agent("agent", "room", "token", server.url, reconnect=policy, close_timeout=0.5)
        async with agent.connect() as session:
            async with asyncio.timeout(HANG):
                while session.stats.reconnects < 4:
                    assert session.state != "closed"
                    await asyncio.sleep(0.05)


# -- 6. closing without the application's help; silent re-authentications ------------------


async def test_6_disconnect_completes_the_handshake_while_the_application_does_not_read() -> None:
    answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        # more than max_queue messages: the client stops reading the socket
        await peer.send(*(frame(BINARY, track_data(bytes([n]) * 64)) for n in range(50)))
        got = await peer.read_until(CLOSE)
        await peer.send(frame(CLOSE, got.payload[:2]))
        answered.set_result(got.close_code)
        peer.writer.close()  # as a server does after the handshake (RFC 6455 7.1.1)

    async with HostileServer(handler) as server:
        agent = _agent(server, max_queue=4, close_timeout=SLOW)
        async with agent.connect() as session:
            async with asyncio.timeout(HANG):
                while not session._transport.reading_paused:
                    await asyncio.sleep(0.01)
            started = time.monotonic()
            await session.disconnect()
            assert time.monotonic() - started < HANG  # not close_timeout, not a reset
            assert session.close_code == 1000
        assert await asyncio.wait_for(answered, HANG) == 1000


async def test_6_a_silent_reauthentication_costs_open_timeout_only() -> None:
    async def handler(peer: Peer) -> None:
        if len(server.peers) == 1:
            await peer.authenticate()
            await peer.send(frame(CLOSE, close_payload(1011)))
            peer.writer.close()
            return
        await peer.handshake()
        await peer.read_until(BINARY)  # the auth request, never answered, nothing read
        await _hold(peer)

    policy = ReconnectPolicy(budget=2.0, first_delay=0.05, max_delay=0.1, jitter=0)
    async with HostileServer(handler) as server:
        agent = Agent(
            "agent", "room", "token", server.url, reconnect=policy,
            open_timeout=0.3, close_timeout=SLOW,
        )  # fmt: skip
        async with agent.connect() as session:
            started = time.monotonic()
            with pytest.raises(AgentConnectionError) as info:
                async with asyncio.timeout(HANG):
                    async for _ in session.receive():
                        pass
            assert time.monotonic() - started < 2.0 + 1.0
        # about budget / (open_timeout + delay) attempts, each aborted at once
        assert len(server.peers) - 1 >= 4, len(server.peers)
    assert "no answer within open_timeout" in str(info.value)


# -- 4. memory bounded in bytes: a child process's RSS ----------------------------------------

_CHILD = """
import asyncio, os, sys
from fishjam_fast import Agent

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

async def main():
    agent = Agent("a", "r", "t", sys.argv[1], reconnect=False, close_timeout=0.2,
                  max_message_size=1 << 20, max_queue=64, max_queue_bytes=4 << 20)
    base = rss()
    async with agent.connect() as session:
        async with asyncio.timeout(20):
            while not session._transport.reading_paused:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # whatever is still in flight arrives
        print(rss() - base, session._transport.queued_messages, flush=True)

asyncio.run(main())
"""


async def test_4_unread_messages_are_bounded_in_bytes(transport: str) -> None:
    import sys

    message = track_data(b"\7" * ((1 << 20) - 64))

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        for _ in range(80):  # 80 MiB offered: 64 messages would fit the count bound
            await peer.send(frame(BINARY, message))
        await _hold(peer)

    async with HostileServer(handler) as server:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, server.url, stdout=asyncio.subprocess.PIPE, cwd="/"
        )  # cwd: the installed package, not the source tree
        out, _ = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0
    growth, queued = (int(x) for x in out.split())
    # 4 MiB of queued messages and what the transport had read before the pause
    # (picows: 12-21 MiB measured in all; websockets: its reader's queue plus at most
    # three frames it holds): well under the 64 MiB the count alone allowed
    assert queued <= 16, queued  # 4 MiB, plus what picows had read before the pause
    assert growth < 40 * MiB, f"RSS grew {growth / MiB:.1f} MiB"


_SENDER = """
import asyncio, sys
import numpy as np
from fishjam_fast import Agent, OutgoingAudioTrackOptions

def status(field):
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) restarts from the current RSS

async def main():
    agent = Agent("a", "r", "t", sys.argv[1], reconnect=False, close_timeout=0.5)
    pattern = (np.arange(2000) - 1000).astype(np.int16)
    samples = np.resize(pattern, int(sys.argv[2]) * 16000)
    if sys.argv[3] == "bytes":
        samples = samples.tobytes()
    async with agent.connect() as session:
        track = await session.add_track(OutgoingAudioTrackOptions())
        await track.send_pcm(samples[:64000])  # warm: the first send's allocations
        reset_peak()
        base = status("VmRSS")
        sent = await track.send_pcm(samples)
        print(status("VmHWM") - base, sent, flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["bytes", "array"])
async def test_4_send_pcm_memory_does_not_grow_with_the_input(kind: str) -> None:
    import sys

    seconds = 600  # 19 MB of int16: framed whole, the frames alone were as much again

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        while await peer.reader.read(1 << 20):  # reads (and drops) everything
            pass

    async with HostileServer(handler) as server:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _SENDER, server.url, str(seconds), kind,
            stdout=asyncio.subprocess.PIPE, cwd="/",  # the installed package
        )  # fmt: skip
        out, _ = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0
    growth, sent = (int(x) for x in out.split())
    assert sent == seconds * 50
    assert growth < 8 * MiB, f"peak RSS grew {growth / MiB:.1f} MiB"


async def test_4_a_bad_sample_late_in_a_long_input_sends_nothing() -> None:
    import numpy as np

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.serve_pings()

    samples = np.zeros(16000 * 25, dtype=np.float32)  # 25 s: three pieces
    samples[-5] = np.nan
    async with HostileServer(handler) as server:
        async with _agent(server).connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            before = session.stats.messages_sent
            with pytest.raises(ValueError, match="NaN"):
                await track.send_pcm(samples)
            assert session.stats.messages_sent == before
            samples[-5] = 0.5
            assert await track.send_pcm(samples) == 25 * 50
            assert session.stats.messages_sent == before + 25 * 50


# -- 3. loss is reported, never silent -----------------------------------------------------------


async def _fill(track: Any) -> int:
    """Sends 100 ms chunks without waiting until the write buffer is full; how many."""
    sent = 0
    with pytest.raises(AgentWouldBlockError):
        for _ in range(100_000):  # bounded: the kernel buffers fill long before
            track.send_chunk_nowait(b"\1\0" * 1600)
            sent += 1
    return sent


async def test_3_a_drop_reports_the_audio_queued_and_the_bytes_never_read() -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        if len(server.peers) == 1:
            await _hold(peer)  # stops reading: the keepalive fails the connection
        else:
            await peer.serve_pings()

    policy = ReconnectPolicy(budget=10.0, first_delay=0.05, max_delay=0.1)
    changes: list[SessionStateChange] = []
    async with HostileServer(handler) as server:
        agent = Agent(
            "agent", "room", "token", server.url, reconnect=policy,
            ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5,
        )  # fmt: skip
        async with agent.connect() as session:
            session.on_state_change(changes.append)
            track = await session.add_track(OutgoingAudioTrackOptions())
            chunks = await _fill(track)
            async with asyncio.timeout(HANG):
                while session.stats.reconnects < 1:
                    await asyncio.sleep(0.02)
            stats = session.stats
    drop = changes[0]
    assert drop.state == "reconnecting" and drop.cause is not None
    # by the playout clock, nearly all of it was still queued (0.1 s per chunk)
    assert chunks * 0.1 - 2.0 < drop.lost_audio[track.id] <= chunks * 0.1
    assert drop.unsent_bytes > 0
    assert drop.unsent_bytes <= chunks * 3300  # at most what was written
    assert stats.audio_lost_seconds == pytest.approx(drop.lost_audio[track.id])
    assert stats.bytes_unsent == drop.unsent_bytes
    assert changes[1].state == "connected" and changes[1].unsent_bytes == 0


async def test_3_disconnect_returns_and_logs_what_it_could_not_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await _hold(peer)  # never reads again

    changes: list[SessionStateChange] = []
    async with HostileServer(handler) as server:
        async with _agent(server, close_timeout=0.3, ping_interval=None).connect() as session:
            session.on_state_change(changes.append)
            track = await session.add_track(OutgoingAudioTrackOptions())
            await _fill(track)
            with caplog.at_level(logging.WARNING, logger="fishjam_fast"):
                unsent = await session.disconnect()
    assert unsent > 0
    assert session.stats.bytes_unsent == unsent
    assert [c.state for c in changes] == ["closed"]
    assert f"could not send {unsent} bytes" in caplog.text


async def test_3_a_complete_disconnect_reports_nothing_lost() -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.serve_pings()

    async with HostileServer(handler) as server:
        async with _agent(server, close_timeout=SLOW).connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            for _ in range(20):
                await track.send_chunk(b"\1\0" * 1600)
            assert await session.disconnect() == 0
    assert session.stats.bytes_unsent == 0
