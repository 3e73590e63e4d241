"""``AsyncFishjamClient``: Fishjam's REST API for rooms and agents, without blocking the loop.

The plain SDK's ``FishjamClient`` is synchronous: an agent server creating a hundred
agents either stalls its event loop for every request or needs a thread pool. This
client speaks the same REST routes on aiohttp's client (:mod:`fishjam_fast.rest_http`:
keep-alive connections, ~7x less CPU per request than httpx under concurrency, proxies
from the environment) and returns fishjam_fast
:class:`~fishjam_fast.Agent` objects, so it needs no plain SDK. Its option classes use
the plain SDK's field names, and the plain SDK's ``RoomOptions``/``AgentOptions`` are
accepted as they are.

    async with AsyncFishjamClient(fishjam_id, management_token) as client:
        room = await client.create_room()
        agent = await client.create_agent(room.id)
        async with agent.connect() as session:
            ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from .agent import Agent
from .errors import AgentError
from .rest_http import HttpError, HttpPool, HttpResponse

__all__ = [
    "AgentOptions",
    "AgentPeer",
    "AsyncFishjamClient",
    "FishjamApiError",
    "Peer",
    "Room",
    "RoomOptions",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds one request may take (connect, each read and write, pool wait), by default."""

HOSTED_URL = "https://fishjam.io/api/v1/connect/{fishjam_id}"
"""Where a Fishjam ID that is not a URL lives (as in the plain SDK)."""

_SOCKET_SUFFIXES = ("/socket/peer/websocket", "/socket/agent/websocket")


class FishjamApiError(AgentError):
    """Fishjam answered a REST request with an error, or did not answer.

    Attributes:
        status: The HTTP status (401 for a wrong management token, 404 for an unknown
            room or peer, ...), or None when no usable answer arrived (timeout, refused
            connection, a body that is not Fishjam's).
        message: The server's error message (its ``errors`` member), or what went wrong.
        method: The request's method.
        path: The request's path, relative to the Fishjam URL.
    """

    def __init__(self, status: int | None, message: str, method: str, path: str) -> None:
        super().__init__(status, message, method, path)
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    def __str__(self) -> str:
        answer = f"HTTP {self.status}" if self.status is not None else "no answer"
        return f"Fishjam {self.method} {self.path}: {answer}: {self.message}"


@dataclass(frozen=True)
class RoomOptions:
    """A new room's configuration (the plain SDK's ``RoomOptions`` fields).

    Attributes:
        max_peers: Most peers at once (None: no limit).
        video_codec: ``"h264"`` or ``"vp8"``, or None for the server's choice.
        webhook_url: Where Fishjam posts the room's notifications.
        room_type: ``"conference"``, ``"audio_only"``, ``"livestream"``, ...
        public: Whether the room is public (livestreams).
        batch_webhook_notifications: Batch the webhook notifications.
    """

    max_peers: int | None = None
    video_codec: Literal["h264", "vp8"] | None = None
    webhook_url: str | None = None
    room_type: str = "conference"
    public: bool = False
    batch_webhook_notifications: bool = False


@dataclass(frozen=True)
class AgentOptions:
    """A new agent peer's options (the plain SDK's ``AgentOptions``, flattened).

    Attributes:
        audio_sample_rate: The rate of the audio the agent receives, 16000 or 24000.
        subscribe_mode: ``"auto"`` (hear every peer) or ``"manual"``.
    """

    audio_sample_rate: Literal[16000, 24000] = 16000
    subscribe_mode: Literal["auto", "manual"] = "auto"


@dataclass(frozen=True)
class Peer:
    """A peer as Fishjam describes it.

    Attributes:
        id: The peer's id.
        type: ``"agent"``, ``"webrtc"``, ...
        status: ``"connected"`` or ``"disconnected"``.
        metadata: The peer's metadata, as the server sent it.
        tracks: The peer's tracks, as the server sent them.
    """

    id: str
    type: str
    status: str
    metadata: Any = None
    tracks: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class AgentPeer:
    """An agent peer just created: what an :class:`~fishjam_fast.Agent` needs to connect.

    Attributes:
        id: The peer's id.
        room_id: Its room.
        token: Its authentication token (a secret: never logged).
        fishjam_url: The URL its agent connects to.
    """

    id: str
    room_id: str
    token: str = field(repr=False)
    fishjam_url: str


@dataclass(frozen=True)
class Room:
    """A room as Fishjam describes it.

    Attributes:
        id: The room's id.
        config: Its configuration, in the API's camelCase spelling.
        peers: The peers in it.
    """

    id: str
    config: dict[str, Any]
    peers: list[Peer]


def fishjam_url(fishjam_id: str) -> str:
    """The base URL of a Fishjam given by ID or by URL (as the plain SDK resolves it)."""
    if "://" in fishjam_id:
        return fishjam_id.rstrip("/")
    return HOSTED_URL.format(fishjam_id=fishjam_id)


def _room_body(options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "roomType": options.room_type,
        "public": options.public,
        "batchWebhookNotifications": options.batch_webhook_notifications,
    }
    for name, key in (
        ("max_peers", "maxPeers"),
        ("video_codec", "videoCodec"),
        ("webhook_url", "webhookUrl"),
    ):
        value = getattr(options, name)
        if value is not None:
            body[key] = value
    return body


def _agent_body(options: Any) -> dict[str, Any]:
    output = getattr(options, "output", None)  # the plain SDK nests the output options
    rate = output.audio_sample_rate if output is not None else options.audio_sample_rate
    audio_format = output.audio_format if output is not None else "pcm16"
    if rate not in (16000, 24000):
        raise ValueError(f"audio_sample_rate must be 16000 or 24000, not {rate!r}")
    if options.subscribe_mode not in ("auto", "manual"):
        raise ValueError(
            f"subscribe_mode must be 'auto' or 'manual', not {options.subscribe_mode!r}"
        )
    return {
        "type": "agent",
        "options": {
            "output": {"audioFormat": audio_format, "audioSampleRate": rate},
            "subscribeMode": options.subscribe_mode,
        },
    }


def _peer(data: dict[str, Any]) -> Peer:
    return Peer(
        id=data["id"],
        type=data.get("type", ""),
        status=data.get("status", ""),
        metadata=data.get("metadata"),
        tracks=list(data.get("tracks") or []),
    )


def _room(data: dict[str, Any]) -> Room:
    return Room(
        id=data["id"],
        config=dict(data.get("config") or {}),
        peers=[_peer(p) for p in data.get("peers") or []],
    )


class AsyncFishjamClient:
    """Manages rooms and agent peers over Fishjam's REST API, asynchronously.

    Use as an async context manager (or call :meth:`aclose`): it keeps one pool of HTTP
    connections, so concurrent requests from one event loop share it.
    """

    def __init__(
        self,
        fishjam_id: str,
        management_token: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_connections: int = 10,
        verify: Any = True,
    ) -> None:
        """Configures the client; nothing is sent before the first request.

        Args:
            fishjam_id: The Fishjam ID, or the Fishjam URL (``http(s)://host[/prefix]``).
            management_token: The management token.
            timeout: Seconds each request may take to connect, to send, to read, and to
                wait for a pooled connection; None waits without a deadline.
            max_connections: Most HTTP connections (and requests in flight) at once;
                more requests wait for one. Ten keep one Fishjam busy: a burst of 500
                agent peer creations against the local Fishjam took the same time
                with 10 and with 50.
            verify: Certificate verification for ``https`` (True, False, or an
                ``ssl.SSLContext``). Proxies come from the environment
                (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), as with the plain SDK.

        Raises:
            ValueError: An argument is empty or out of range.
        """
        if not fishjam_id:
            raise ValueError("fishjam_id must be a Fishjam ID or URL, not empty")
        if not management_token:
            raise ValueError("management_token must not be empty")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds or None, not {timeout!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections!r}")
        self.fishjam_url = fishjam_url(fishjam_id)
        from ._version import __version__

        self._http = HttpPool(
            self.fishjam_url,
            {
                "Authorization": f"Bearer {management_token}",
                "x-fishjam-api-client": f"fishjam-fast/{__version__}",
            },
            timeout=timeout,
            max_connections=max_connections,
            verify=verify,
        )

    async def __aenter__(self) -> AsyncFishjamClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the HTTP connections."""
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        read_data: bool = True,
    ) -> Any:
        """One request; returns the answer's ``data`` member (None for no content, or
        when ``read_data`` is False: the body of a success is then not read as JSON)."""
        data = None if body is None else json.dumps(body).encode()
        try:
            response = await self._http.request(method, path, body=data, params=params)
        except HttpError as exc:
            raise FishjamApiError(None, f"{exc.kind}: {exc}", method, path) from exc
        if response.status >= 400:
            raise FishjamApiError(response.status, _error_text(response), method, path)
        if not read_data or not response.body:
            return None
        try:
            return json.loads(response.body)["data"]
        except (ValueError, KeyError, TypeError):
            answer = f"unexpected answer: {response.body[:200]!r}"
            raise FishjamApiError(None, answer, method, path) from None

    async def create_room(self, options: RoomOptions | Any = None) -> Room:
        """Creates a room.

        Args:
            options: A :class:`RoomOptions` (or the plain SDK's); None for the defaults.

        Returns:
            The new room.

        Raises:
            FishjamApiError: Fishjam refused (e.g. 401 for a wrong management token).
        """
        data = await self._request("POST", "/room", _room_body(options or RoomOptions()))
        room: Room = _parsed(_room, data, "room", "POST", "/room")
        return room

    async def get_room(self, room_id: str) -> Room:
        """Describes a room and its peers.

        Args:
            room_id: The room.

        Returns:
            The room, with its peers.

        Raises:
            FishjamApiError: 404 when there is no such room.
        """
        path = f"/room/{room_id}"
        room: Room = _parsed(_room, await self._request("GET", path), None, "GET", path)
        return room

    async def list_rooms(self) -> list[Room]:
        """Describes every room and its peers.

        Returns:
            The rooms.

        Raises:
            FishjamApiError: Fishjam refused (e.g. 401 for a wrong management token).
        """
        data = await self._request("GET", "/room")
        rooms: list[Room] = _parsed(lambda d: [_room(r) for r in d], data, None, "GET", "/room")
        return rooms

    async def delete_room(self, room_id: str) -> None:
        """Deletes a room; its peers' sessions end (agents' ``receive()`` loops stop).

        Args:
            room_id: The room.

        Raises:
            FishjamApiError: 404 when there is no such room.
        """
        await self._request("DELETE", f"/room/{room_id}")

    async def create_agent(
        self, room_id: str, options: AgentOptions | Any = None, **agent_options: Any
    ) -> Agent:
        """Adds an agent peer to a room.

        The agent connects to the socket URL Fishjam returns with the peer
        (``peer_websocket_url``), or to this client's Fishjam URL when none is given.

        Args:
            room_id: The room.
            options: An :class:`AgentOptions` (or the plain SDK's); None for 16 kHz
                output and automatic subscription.
            **agent_options: Keyword options of :class:`fishjam_fast.Agent` (``ssl``,
                ``max_queue``, ``open_timeout``, ...).

        Returns:
            A fishjam_fast agent, ready to :meth:`~fishjam_fast.Agent.connect`.

        Raises:
            ValueError: The options are invalid (nothing is sent).
            FishjamApiError: Fishjam refused (404: no such room).
        """
        peer = await self.create_agent_peer(room_id, options)
        return Agent(peer.id, room_id, peer.token, peer.fishjam_url, **agent_options)

    async def create_agent_peer(
        self, room_id: str, options: AgentOptions | Any = None
    ) -> AgentPeer:
        """Adds an agent peer to a room and returns what connects it, not an Agent: for
        a process that hands the peer to another one (the agent server's workers).

        Args:
            room_id: The room.
            options: As in :meth:`create_agent`.

        Returns:
            The peer's id, token and the URL its agent connects to.

        Raises:
            ValueError: The options are invalid (nothing is sent).
            FishjamApiError: Fishjam refused (404: no such room).
        """
        body = _agent_body(options or AgentOptions())
        path = f"/room/{room_id}/peer"
        data = await self._request("POST", path, body)
        try:
            peer_id, token = data["peer"]["id"], data["token"]
        except (KeyError, TypeError):
            raise FishjamApiError(None, f"unexpected answer: {data!r:.200}", "POST", path) from None
        socket_base = self._socket_base_url(data.get("peer_websocket_url"))
        return AgentPeer(str(peer_id), room_id, str(token), socket_base)

    def _socket_base_url(self, peer_websocket_url: str | None) -> str:
        # as the plain SDK (>= 0.29): the URL Fishjam gives, less the socket path
        if not peer_websocket_url:
            return self.fishjam_url
        url = peer_websocket_url
        if "://" not in url:
            url = ("wss://" if self.fishjam_url.startswith("https://") else "ws://") + url
        for suffix in _SOCKET_SUFFIXES:
            url = url.removesuffix(suffix)
        return url

    async def delete_peer(self, room_id: str, peer_id: str) -> None:
        """Removes a peer from a room; an agent's session ends.

        Args:
            room_id: The peer's room.
            peer_id: The peer.

        Raises:
            FishjamApiError: 404 when there is no such room or peer.
        """
        await self._request("DELETE", f"/room/{room_id}/peer/{peer_id}")

    async def refresh_peer_token(self, room_id: str, peer_id: str) -> str:
        """Issues a new token for a peer.

        Args:
            room_id: The peer's room.
            peer_id: The peer.

        Returns:
            The new token.

        Raises:
            FishjamApiError: 404 when there is no such room or peer.
        """
        path = f"/room/{room_id}/peer/{peer_id}/refresh_token"
        data = await self._request("POST", path)
        return str(_parsed(lambda d: d["token"], data, None, "POST", path))

    async def subscribe_peer(self, room_id: str, peer_id: str, target_peer_id: str) -> None:
        """Subscribes a peer to every track of another peer (for a peer created with
        ``subscribe_mode="manual"``, which hears nothing it did not subscribe to).

        Args:
            room_id: The room.
            peer_id: The subscribing peer (an agent, typically).
            target_peer_id: The peer whose tracks it will receive.

        Raises:
            FishjamApiError: 404 when there is no such room or peer, 400 when Fishjam
                refuses the subscription.
        """
        path = f"/room/{room_id}/peer/{peer_id}/subscribe_peer"
        await self._request("POST", path, params={"peer_id": target_peer_id}, read_data=False)

    async def subscribe_tracks(self, room_id: str, peer_id: str, track_ids: list[str]) -> None:
        """Subscribes a peer to particular tracks of other peers (manual subscribe mode).

        Args:
            room_id: The room.
            peer_id: The subscribing peer.
            track_ids: The tracks it will receive.

        Raises:
            TypeError: ``track_ids`` is not a list of strings.
            FishjamApiError: 404 when there is no such room, peer or track.
        """
        if isinstance(track_ids, str) or not all(isinstance(t, str) for t in track_ids):
            raise TypeError(f"track_ids must be a list of track id strings, not {track_ids!r}")
        path = f"/room/{room_id}/peer/{peer_id}/subscribe_tracks"
        await self._request("POST", path, {"track_ids": list(track_ids)}, read_data=False)


def _parsed(parse: Any, data: Any, key: str | None, method: str, path: str) -> Any:
    try:
        return parse(data[key] if key is not None else data)
    except (KeyError, TypeError):
        raise FishjamApiError(None, f"unexpected answer: {data!r:.200}", method, path) from None


def _error_text(response: HttpResponse) -> str:
    """The server's error message: ``{"errors": ...}``, else the body's start."""
    try:
        errors = json.loads(response.body)["errors"]
    except (ValueError, KeyError, TypeError):
        return response.body[:200].decode("utf-8", "replace") or response.reason
    return errors if isinstance(errors, str) else json.dumps(errors)
