"""The eight transport faults of issue 9, each against a hostile server written here.

Every test runs on both transports (picows, websockets) and both loops (asyncio,
uvloop), and asserts what the application sees, that it came without waiting for a
timeout that was set long on purpose ("did not hang" bounds, generous), and where a
buffer could grow, that it did not (tracemalloc peaks, write-buffer sizes).
"""

from __future__ import annotations

import asyncio
import gc
import socket as socket_module
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from fishjam_fast import Agent, AgentAuthError, AgentConnectionError, OutgoingAudioTrackOptions
from fishjam_fast.session import AgentSession
from tests.conftest import ALL_TRANSPORTS
from tests.hostile import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    RSV1,
    TEXT,
    HostileServer,
    Peer,
    close_payload,
    fragments,
    frame,
    track_data,
)

pytestmark = [pytest.mark.usefixtures("transport"), ALL_TRANSPORTS]

SLOW = 30.0
"""A timeout set long on purpose: the test proves it was not waited for."""
HANG = 5.0
"""Generous bound for "did not hang"."""
MiB = 1024 * 1024
CHUNK = b"\1\2" * 32768  # 64 KiB: fills a peer's buffers in few sends


def _agent(server: HostileServer, **options: Any) -> Agent:
    # one connection: what the application sees when it ends (no reconnection)
    return Agent("agent", "room", "token", server.url, reconnect=False, **options)


@asynccontextmanager
async def _session(server: HostileServer, **options: Any) -> AsyncIterator[AgentSession]:
    async with _agent(server, **options).connect() as session:
        yield session


async def _receive_error(session: AgentSession) -> AgentConnectionError:
    with pytest.raises(AgentConnectionError) as info:
        async with asyncio.timeout(HANG):
            async for _ in session.receive():
                pass
    return info.value


async def _hold(peer: Peer) -> None:
    """Stops reading, keeps the socket open (until the handler's limit)."""
    await asyncio.sleep(SLOW)


# -- 1. a server that stops reading --------------------------------------------------------


@pytest.mark.slow  # waits out ping_timeout
async def test_1_keepalive_fails_a_send_blocked_by_a_server_that_stopped_reading() -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await _hold(peer)

    async with HostileServer(handler) as server:
        started = time.monotonic()
        tracemalloc.start()
        try:
            async with _session(
                server, ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5
            ) as session:
                track = await session.add_track(OutgoingAudioTrackOptions())
                with pytest.raises(AgentConnectionError) as info:
                    async with asyncio.timeout(HANG):
                        for _ in range(10_000):
                            await track.send_chunk(CHUNK)
                assert info.value.code == 1011
                assert "keepalive" in info.value.reason
                assert session.close_code == 1011 and "keepalive" in session.close_reason
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.monotonic() - started < HANG  # disconnect() did not hang either
        assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.slow  # waits out close_timeout
async def test_1_disconnect_is_bounded_by_close_timeout_with_a_full_buffer() -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await _hold(peer)

    async with HostileServer(handler) as server:
        agent = _agent(server, ping_interval=None, close_timeout=0.3)
        async with agent.connect() as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            with pytest.raises(TimeoutError):  # the buffer is full: sending waits
                async with asyncio.timeout(1.0):
                    for _ in range(10_000):
                        await track.send_chunk(CHUNK)
            started = time.monotonic()
        assert time.monotonic() - started < HANG
        assert session.closed
        with pytest.raises(AgentConnectionError):
            await track.send_chunk(b"\0\0")


# -- 2. a server that never answers the auth request -----------------------------------------


@pytest.mark.slow  # waits out open_timeout
async def test_2_no_answer_to_auth_is_a_connection_error_after_open_timeout() -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await peer.read_until(CLOSE)  # answers the keepalive's pings, never the auth

    async with HostileServer(handler) as server:
        started = time.monotonic()
        with pytest.raises(AgentConnectionError, match="no answer to the authentication") as info:
            async with _session(server, open_timeout=0.5, ping_interval=0.05, ping_timeout=0.2):
                pass
        assert not isinstance(info.value, AgentAuthError)
        assert 0.4 < time.monotonic() - started < HANG
        # the server answered the keepalive meanwhile: that did not count as an answer
        assert any(f.opcode == PING for f in server.peers[0].received)


async def test_2_no_handshake_answer_is_a_connection_error_after_open_timeout() -> None:
    async def handler(peer: Peer) -> None:
        await peer.reader.readuntil(b"\r\n\r\n")
        await _hold(peer)

    async with HostileServer(handler) as server:
        started = time.monotonic()
        with pytest.raises(AgentConnectionError, match="open_timeout"):
            async with _session(server, open_timeout=0.3):
                pass
        assert time.monotonic() - started < HANG


async def test_2_a_close_with_a_reason_before_auth_is_an_auth_error() -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await peer.read_until(BINARY)
        await peer.send(frame(CLOSE, close_payload(1000, b"invalid token")))
        await peer.read_until(CLOSE)

    async with HostileServer(handler) as server:
        with pytest.raises(AgentAuthError) as info:
            async with _session(server, close_timeout=SLOW):
                pass
        assert info.value.reason == "invalid token"


async def test_2_a_drop_before_auth_is_a_connection_error_not_an_auth_error() -> None:
    async def handler(peer: Peer) -> None:
        await peer.handshake()
        await peer.read_until(BINARY)
        peer.writer.transport.abort()

    async with HostileServer(handler) as server:
        with pytest.raises(AgentConnectionError) as info:
            async with _session(server):
                pass
        assert not isinstance(info.value, AgentAuthError)
        assert info.value.code == 1006


# -- 3. the client fails the connection: the real cause, at once -------------------------------

CLIENT_FAILURES = {
    # name: (what the server sends, Agent options, code, words in the reason)
    "too-big": (frame(BINARY, b"\0" * 2000), {"max_message_size": 1000}, 1009, ["2000", "1000"]),
    "reserved-bits": (frame(BINARY, track_data(b"\0\0"), rsv=RSV1), {}, 1002, []),
    "bad-utf8-close-reason": (frame(CLOSE, close_payload(1000, b"\xff\xfe")), {}, 1007, []),
    "keepalive": (b"", {"ping_interval": 0.1, "ping_timeout": 0.2}, 1011, ["keepalive"]),
}


@pytest.mark.parametrize("case", list(CLIENT_FAILURES))
async def test_3_a_client_side_failure_carries_its_code_and_reason_at_once(case: str) -> None:
    sent, options, code, words = CLIENT_FAILURES[case]
    peer_closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.read_until(BINARY)  # add_track
        if sent:
            await peer.send(sent)
        # reads (never answering pings, never closing the socket) until the client's close
        got = await peer.read_until(CLOSE, answer_pings=False)
        peer_closed.set_result(got.close_code)
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _session(server, close_timeout=SLOW, **options) as session:
            track = await session.add_track(OutgoingAudioTrackOptions())
            started = time.monotonic()
            error = await _receive_error(session)
            assert time.monotonic() - started < HANG  # not after close_timeout
            assert error.code == code, error
            assert session.close_code == code and session.close_reason == error.reason
            for word in words:
                assert word in error.reason
            with pytest.raises(AgentConnectionError) as info:
                await track.send_chunk(b"\0\0")
            assert info.value.code == code
        if case != "keepalive":  # a dead peer is aborted: its close may not go out
            assert await asyncio.wait_for(peer_closed, HANG) == code


@pytest.mark.parametrize("case", list(CLIENT_FAILURES))
@pytest.mark.slow  # 27 cases, each waiting for the failure
async def test_3_a_client_side_failure_leaves_no_unretrieved_exception(case: str) -> None:
    # the cause reaches the application through AgentConnectionError; no exception of the
    # transport's own bookkeeping may be left for asyncio to report when it is collected
    sent, options, code, _ = CLIENT_FAILURES[case]
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reports.append(context))

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        if sent:
            await peer.send(sent)
        await peer.read_until(CLOSE, answer_pings=False)
        await _hold(peer)

    try:
        async with HostileServer(handler) as server:
            async with _session(server, close_timeout=SLOW, **options) as session:
                assert (await _receive_error(session)).code == code
            del session
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        await asyncio.sleep(0)
        messages = [str(report.get("message")) for report in reports]
        assert [m for m in messages if "never retrieved" in m] == [], messages
    finally:
        loop.set_exception_handler(None)


# -- 4. fragmented messages: one buffer, capped in size and in frames -------------------------


async def test_4_fragments_with_a_control_frame_between_them_make_one_message() -> None:
    data = bytes(range(256)) * 2
    message = track_data(data)

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        parts = fragments(message, 2)  # 2-byte fragments, within the frame cap
        parts = [*parts[:10], frame(PING, b"between"), frame(CONT, b"", fin=False), *parts[10:]]
        await peer.send(*parts)
        await peer.serve_pings()

    async with HostileServer(handler) as server:
        async with _session(server) as session:
            received = await asyncio.wait_for(anext(session.receive()), HANG)
            assert received.data == data
        pongs = [f for f in server.peers[0].received if f.opcode == PONG]
        assert [p.payload for p in pongs] == [b"between"]


@pytest.mark.parametrize("fragment_size", [0, 2])
async def test_4_tiny_fragments_are_counted_against_a_cap(
    fragment_size: int, transport: str
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(frame(BINARY, b"\x12", fin=False))
        # 8 MB of 2-byte fragments (or empty ones without end), written as it drains
        batch = frame(CONT, b"\0" * fragment_size, fin=False) * 4096
        for _ in range(8 * MiB // max(fragment_size, 1) // 4096):
            await peer.send(batch)

    async with HostileServer(handler) as server:
        tracemalloc.start()
        try:
            async with _session(server, close_timeout=SLOW) as session:
                error = await _receive_error(session)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert error.code == 1009 and "1024 fragments" in error.reason
    assert peak < 1 * MiB, f"peak {peak / MiB:.1f} MiB"


async def test_4_fragments_over_max_message_size_fail_with_1009() -> None:
    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(*fragments(b"\0" * 50_000, 1000))
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _session(server, max_message_size=10_000, close_timeout=SLOW) as session:
            error = await _receive_error(session)
    assert error.code == 1009 and "10000" in error.reason


# -- 5. a ping flood while the server does not read -------------------------------------------


@pytest.mark.slow  # waits for pings
async def test_5_pong_replies_do_not_pile_up_behind_a_server_that_does_not_read() -> None:
    flood_done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await asyncio.sleep(0.5)  # the client fills its write buffer meanwhile
        pings = 0
        try:
            async with asyncio.timeout(2.0):  # its own writes back up too, eventually
                for _ in range(400):
                    await peer.send(frame(PING, b"p" * 125) * 50)
                    pings += 50
        except TimeoutError:
            pass
        flood_done.set_result(pings)
        await _hold(peer)

    write_limit = 64 * 1024
    async with HostileServer(handler) as server:
        async with _session(
            server, ping_interval=None, close_timeout=0.3, write_limit=write_limit
        ) as session:
            track = await session.add_track(OutgoingAudioTrackOptions())

            async def fill() -> None:
                for _ in range(10_000):
                    await track.send_chunk(CHUNK)

            filler = asyncio.create_task(fill())
            tracemalloc.start()
            try:
                pings = await asyncio.wait_for(flood_done, HANG)
                await asyncio.sleep(0.1)
                socket = session._transport._socket  # type: ignore[attr-defined]
                buffered = socket.get_write_buffer_size()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
                filler.cancel()
    assert pings >= 1000
    # the high-water mark, one chunk over it, one pong: not a pong per ping
    assert buffered <= write_limit + len(CHUNK) + 1024, buffered
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"


# -- 6. an application slow to consume receive() ----------------------------------------------


@pytest.mark.slow  # a long pause
async def test_6_a_long_pause_in_receive_does_not_trip_the_keepalive() -> None:
    count = 300

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(*(frame(BINARY, track_data(n.to_bytes(4, "big"))) for n in range(count)))
        await peer.serve_pings()

    async with HostileServer(handler) as server:
        async with _session(server, max_queue=8, ping_interval=0.05, ping_timeout=0.1) as session:
            await asyncio.sleep(1.0)  # 20 ping intervals without reading a message
            assert not session.closed
            assert session._transport.reading_paused
            got = []
            async with asyncio.timeout(HANG):
                async for message in session.receive():
                    got.append(int.from_bytes(message.data, "big"))
                    if len(got) == count:
                        break
            assert got == list(range(count))
            assert not session.closed
    assert session.close_code == 1000


# -- 7. statistics of cancelled sends ----------------------------------------------------------


@pytest.mark.slow  # waits for a full buffer (1.5 s a case)
async def test_7_cancelled_sends_leave_stats_saying_exactly_what_went_out() -> None:
    release = asyncio.Event()

    async def handler(peer: Peer) -> None:
        sock = peer.writer.get_extra_info("socket")
        sock.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 4096)
        await peer.authenticate()
        await release.wait()  # reads nothing until then
        await peer.serve_pings()  # then everything, up to the client's close

    async with HostileServer(handler) as server:
        async with _session(server, ping_interval=None) as session:
            sock = session._transport.get_extra_info("socket")
            sock.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_SNDBUF, 4096)
            track = await session.add_track(OutgoingAudioTrackOptions())
            stats = session.stats
            task = asyncio.create_task(track.send_pcm(b"\1\0" * 16000 * 60))  # 3000 chunks
            last = -1
            async with asyncio.timeout(HANG):
                while stats.messages_sent != last:  # until the buffer is full
                    last = stats.messages_sent
                    await asyncio.sleep(0.2)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(TimeoutError):  # written, then waiting: cancelled
                await asyncio.wait_for(track.send_chunk(b"\2\0" * 320), 0.1)
            sent, sent_bytes = stats.messages_sent, stats.bytes_sent
            assert 3 < sent < 3000
            release.set()
    binary = [f.payload for f in server.peers[0].received if f.opcode == BINARY]
    assert len(binary) == sent  # auth, add_track, the chunks the cancelled calls wrote
    assert sum(map(len, binary)) == sent_bytes
    assert binary[-1].endswith(b"\2\0" * 320)


# -- 8. text frames ---------------------------------------------------------------------------


async def test_8_a_text_frame_fails_the_connection_with_1003() -> None:
    peer_closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(peer: Peer) -> None:
        await peer.authenticate()
        await peer.send(frame(TEXT, b'{"not": "protobuf"}'))
        got = await peer.read_until(CLOSE)
        peer_closed.set_result(got.close_code)
        await _hold(peer)

    async with HostileServer(handler) as server:
        async with _session(server, close_timeout=SLOW) as session:
            error = await _receive_error(session)
            assert session.stats.frames_skipped == 0  # never handed to the decoder
    assert error.code == 1003 and "text" in error.reason
    assert await asyncio.wait_for(peer_closed, HANG) == 1003
