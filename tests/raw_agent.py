"""A raw agent client for local-server tests: websockets plus google.protobuf frames,
so the server's tests do not depend on fishjam_fast's own session code."""

from __future__ import annotations

import asyncio

import websockets
from websockets.asyncio.client import ClientConnection

from fishjam_fast._proto import agent_pb2, notifications_pb2

TIMEOUT = 5.0
AUTHENTICATED = agent_pb2.AgentResponse(
    authenticated=agent_pb2.AgentResponse.Authenticated()
).SerializeToString()


def request(**content: object) -> bytes:
    """A serialized ``AgentRequest`` with one oneof member set."""
    return agent_pb2.AgentRequest(**content).SerializeToString()


class RawAgent:
    """One agent socket driven frame by frame."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, url: str, token: str) -> RawAgent:
        """Open the socket and authenticate; fails the test unless accepted."""
        ws = await websockets.connect(url, compression=None)
        await ws.send(request(auth_request=agent_pb2.AgentRequest.AuthRequest(token=token)))
        reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert reply == AUTHENTICATED
        return cls(ws)

    @staticmethod
    async def refused(url: str, token: str) -> tuple[int | None, str | None]:
        """Try to authenticate with ``token``; the close code and reason it got."""
        async with websockets.connect(url) as ws:
            await ws.send(request(auth_request=agent_pb2.AgentRequest.AuthRequest(token=token)))
            try:
                reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
            except websockets.ConnectionClosed:
                return ws.close_code, ws.close_reason
        raise AssertionError(f"expected a refusal, got {reply!r}")

    async def add_track(
        self, track_id: str, sample_rate: int = 16000, channels: int = 1, encoding: int = 0
    ) -> None:
        """add_track with these codec parameters."""
        await self.ws.send(
            request(
                add_track=agent_pb2.AgentRequest.AddTrack(
                    track=notifications_pb2.Track(
                        id=track_id, type=notifications_pb2.TRACK_TYPE_AUDIO, metadata="null"
                    ),
                    codec_params=agent_pb2.AgentRequest.AddTrack.CodecParameters(
                        encoding=encoding,
                        sample_rate=sample_rate,
                        channels=channels,
                    ),
                )
            )
        )

    async def send(self, track_id: str, data: bytes) -> None:
        """One track_data."""
        await self.ws.send(
            request(track_data=agent_pb2.AgentRequest.TrackData(track_id=track_id, data=data))
        )

    async def interrupt(self, track_id: str) -> None:
        """One interrupt_track."""
        await self.ws.send(
            request(interrupt_track=agent_pb2.AgentRequest.InterruptTrack(track_id=track_id))
        )

    async def wait_closed(self) -> websockets.ConnectionClosed:
        """Read until the socket ends; the exception that ended it."""
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    await self.ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc

    async def close(self) -> None:
        """Close normally."""
        await self.ws.close()
