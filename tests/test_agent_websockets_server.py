"""The agent against a Fishjam stand-in written here on websockets' own server.

It needs no extra (websockets and protobuf are dependencies), so the second CI
environment, a bare ``pip install .`` (websockets 17, protobuf 5), runs it too: the
transport's open, frames both ways and every kind of close, on the websockets version
that environment resolves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from fishjam_fast import (
    Agent,
    AgentAuthError,
    AgentConnectionError,
    IncomingTrackData,
    OutgoingAudioTrackOptions,
)
from fishjam_fast._proto import agent_pb2, notifications_pb2

TOKEN = "agent-token"
CHUNKS = [bytes([i]) * 640 for i in range(5)]

Handler = Callable[[ServerConnection], Awaitable[None]]

# both transports: the websockets one on the websockets version this environment has
pytestmark = pytest.mark.usefixtures("transport")


@asynccontextmanager
async def fishjam(handler: Handler) -> AsyncIterator[str]:
    """A server on 127.0.0.1 running ``handler`` per connection; yields its http URL."""
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def authenticate(ws: ServerConnection) -> bool:
    """Reads the auth request; answers ``authenticated`` if the token is right."""
    request = agent_pb2.AgentRequest.FromString(await ws.recv(decode=False))
    if request.auth_request.token != TOKEN:
        await ws.close(4001, "invalid token")
        return False
    response = agent_pb2.AgentResponse()
    response.authenticated.SetInParent()
    await ws.send(response.SerializeToString())
    return True


def track_data(data: bytes) -> bytes:
    response = agent_pb2.AgentResponse()
    response.track_data.peer_id = "speaker"
    response.track_data.track.id = "speaker-track"
    response.track_data.track.type = notifications_pb2.TRACK_TYPE_AUDIO
    response.track_data.data = data
    return response.SerializeToString()


async def test_frames_both_ways_and_a_normal_close_ends_receive() -> None:
    echoed: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        if not await authenticate(ws):
            return
        add = agent_pb2.AgentRequest.FromString(await ws.recv(decode=False))
        assert add.WhichOneof("content") == "add_track"
        for chunk in CHUNKS:
            await ws.send(track_data(chunk))
        for _ in CHUNKS:
            request = agent_pb2.AgentRequest.FromString(await ws.recv(decode=False))
            echoed.append(request.track_data.data)
        await ws.close(1000, "Room stopped")

    async with fishjam(handler) as url:
        agent = Agent("agent", "room", TOKEN, url)
        async with agent.connect() as session, asyncio.timeout(10):  # did not hang
            track = await session.add_track(OutgoingAudioTrackOptions(sample_rate=16000))
            heard = []
            async for message in session.receive():
                assert isinstance(message, IncomingTrackData)
                heard.append(message.data)
                await track.send_chunk(message.data)
            assert (session.close_code, session.close_reason) == (1000, "Room stopped")
    assert heard == CHUNKS and echoed == CHUNKS


async def test_an_abnormal_close_raises_with_its_code() -> None:
    async def handler(ws: ServerConnection) -> None:
        if await authenticate(ws):
            await ws.send(track_data(CHUNKS[0]))
            await ws.close(1011, "internal error")

    async with fishjam(handler) as url:
        # without reconnecting (1011 is a close Fishjam may recover from): the close itself
        async with Agent("agent", "room", TOKEN, url, reconnect=False).connect() as session:
            with pytest.raises(AgentConnectionError) as caught:
                async with asyncio.timeout(10):
                    async for _ in session.receive():
                        pass
    assert caught.value.code == 1011 and caught.value.reason == "internal error"


async def test_a_refused_token_raises_auth_error() -> None:
    async with fishjam(authenticate) as url:
        with pytest.raises(AgentAuthError) as caught:
            async with asyncio.timeout(10), Agent("agent", "room", "wrong", url).connect():
                pass
    assert caught.value.reason == "invalid token"
