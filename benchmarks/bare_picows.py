"""The floor of a Python echo agent: bare picows and fishjam_fast's codec, nothing else.

The real-time benchmark's ``bare_picows`` client. It has just enough of the agent API
for the benchmark's echo agents (``Agent.connect``, ``add_track``, ``receive`` with
``send_chunk`` for ``iterator``: a future per message, the least asyncio allows;
``on_track_data`` with ``send_chunk_nowait`` for ``callback``), and none of what makes
an agent library: no validation, no counters, no playout clock, no flow control, no keepalive,
no reconnection, no handling of anything but ``track_data``. A frame is decoded from
picows' buffer where it arrives and the callback's chunk is framed and handed to
picows. Measured beside fishjam_fast in the same run, it says how close fishjam_fast
comes to what a Python agent can cost at all on this machine (the kernel's share
included).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from picows import WSListener, WSMsgType, WSTransport, ws_connect

from fishjam_fast import _codec
from fishjam_fast.agent import websocket_url

_BINARY = WSMsgType.BINARY


class _Listener(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.callback: Callable[[Any], object] | None = None
        self.reader: asyncio.Future[Any] | None = None  # receive()'s, per message
        self.authenticated = asyncio.get_running_loop().create_future()
        self.disconnected = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if frame.msg_type != _BINARY:
            return
        message = _codec.decode_response(frame.get_payload_as_memoryview())
        if type(message) is _codec.IncomingTrackData:
            if self.callback is not None:
                self.callback(message)
            elif self.reader is not None and not self.reader.done():
                self.reader.set_result(message)  # (a chunk with no reader is dropped)
        elif not self.authenticated.done():
            self.authenticated.set_result(None)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)


class Track:
    def __init__(self, transport: WSTransport) -> None:
        self.id = uuid.uuid4().hex
        self._transport = transport
        self._encoder = _codec.TrackDataEncoder(self.id)

    def send_chunk_nowait(self, data: bytes) -> None:
        self._transport.send(_BINARY, self._encoder.encode(data))

    async def send_chunk(self, data: bytes) -> None:
        self._transport.send(_BINARY, self._encoder.encode(data))


class Session:
    def __init__(self, transport: WSTransport, listener: _Listener) -> None:
        self._transport = transport
        self._listener = listener

    async def add_track(self, options: Any) -> Track:
        track = Track(self._transport)
        frame = _codec.encode_add_track(
            track.id, "null", int(options.encoding), options.sample_rate, options.channels
        )
        self._transport.send(_BINARY, frame)
        return track

    def on_track_data(self, callback: Callable[[Any], object] | None) -> None:
        self._listener.callback = callback

    async def receive(self) -> AsyncIterator[Any]:
        listener = self._listener
        if listener.callback is not None:
            await listener.disconnected  # audio goes to the callback; nothing else
            return
        loop = asyncio.get_running_loop()
        while not listener.disconnected.done():
            listener.reader = loop.create_future()
            yield await listener.reader


class Agent:
    def __init__(self, id: str, room_id: str, token: str, fishjam_url: str, **_: Any) -> None:
        self._url = websocket_url(fishjam_url)
        self._token = token

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Session]:
        transport, listener = await ws_connect(_Listener, self._url)
        try:
            transport.send(_BINARY, _codec.encode_auth_request(self._token))
            await listener.authenticated
            yield Session(transport, listener)
        finally:
            transport.disconnect()


def OutgoingAudioTrackOptions() -> Any:  # the agent API's name
    import fishjam_fast

    return fishjam_fast.OutgoingAudioTrackOptions()
