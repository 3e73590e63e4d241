"""The REST subset of the Fishjam API, as aiohttp routes.

Every route is served at the root and under a deployment-style path prefix
``/api/v1/connect/{fishjam_id}``. Errors are JSON ``{"errors": "..."}`` with the status
the real API uses (the plain SDK maps 400/401/404/409/503 to its own error types);
no request ever gets a traceback: an unexpected exception is a 500 with a generic body.
An unknown path answers 404 (a known path with another method 405) before the token is
checked; 401 is for known routes only. Livestream, MoQ, recording, track-forwarding and
VAPI routes are outside an agent workflow: they answer 501 with a message saying so.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .state import RoomFullError, agent_sample_rate, room_config

if TYPE_CHECKING:
    from .server import LocalFishjam
    from .state import Peer, Room, ServerState

#: The path prefix a hosted deployment puts in front of every route.
PREFIX = "/api/v1/connect/{fishjam_id}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A REST error: its status and the text of ``{"errors": ...}``."""

    def __init__(self, status: int, errors: str) -> None:
        """Args: status: HTTP status. errors: the error text."""
        super().__init__(errors)
        self.status = status
        self.errors = errors


def error(status: int, errors: str) -> web.Response:
    """A JSON error response ``{"errors": errors}``."""
    return web.json_response({"errors": errors}, status=status)


#: The WebSocket paths: they authenticate with a message, not a bearer header.
SOCKETS = ("/socket/agent/websocket", "/socket/peer/websocket", "/socket/server/websocket")
#: Answer of the routes the local server does not implement.
NOT_IMPLEMENTED = (
    "not implemented by the local Fishjam (fishjam_fast.local serves the agent workflow: "
    "rooms, webrtc and agent peers, notifications, webhooks)"
)


def _is_socket(path: str) -> bool:
    return path.endswith(SOCKETS)


def make_middleware(server: LocalFishjam) -> Any:
    """The middleware: bearer-token check, JSON errors, no tracebacks."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        unrouted = request.match_info.http_exception
        if unrouted is not None:  # unknown path (404) or method (405): before the token
            return error(unrouted.status, unrouted.reason)
        if not _is_socket(request.path):
            auth = request.headers.get("Authorization", "")
            if not auth:
                return error(401, "Missing token")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or token.strip() != server.management_token:
                return error(401, "Invalid token")
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, exc.errors)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, exc.reason)
        except Exception:  # a bug in the local server must not leak a traceback
            server.log.exception("local Fishjam: error in %s %s", request.method, request.path)
            return error(500, "Internal server error")

    return middleware


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Invalid request body structure") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request body structure")
    return body


def _room(state: ServerState, room_id: str) -> Room:
    try:
        return state.room(room_id)
    except KeyError:
        raise ApiError(404, f"Room {room_id} does not exist") from None


def _peer(state: ServerState, room_id: str, peer_id: str) -> Peer:
    room = _room(state, room_id)
    try:
        return state.peer(peer_id, room.id)
    except KeyError:
        raise ApiError(404, f"Peer with id {peer_id} doesn't exist") from None


def _prefix(request: web.Request, suffix: str) -> str:
    """The path prefix the request came in under (``""`` or ``/api/v1/connect/<id>``)."""
    path = request.path
    i = path.find(suffix)
    return path[:i] if i > 0 else ""


def routes(server: LocalFishjam) -> list[web.RouteDef]:
    """All routes, at the root and under :data:`PREFIX`.

    Args:
        server: The server: its registry (``server.state``) for reads and changes, its
            methods for what also closes sockets (deleting rooms and peers).

    Returns:
        Route definitions for ``app.add_routes``.
    """
    state = server.state

    async def create_room(request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            config = room_config(body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        room = state.create_room(config)
        return web.json_response({"data": {"room": room.to_json()}}, status=201)

    async def list_rooms(request: web.Request) -> web.Response:
        return web.json_response({"data": [r.to_json() for r in state.rooms.values()]})

    async def get_room(request: web.Request) -> web.Response:
        room = _room(state, request.match_info["room_id"])
        return web.json_response({"data": room.to_json()})

    async def delete_room(request: web.Request) -> web.Response:
        _room(state, request.match_info["room_id"])
        await server.delete_room(request.match_info["room_id"])
        return web.Response(status=204)

    async def add_peer(request: web.Request) -> web.Response:
        room = _room(state, request.match_info["room_id"])
        body = await _json_body(request)
        kind = body.get("type")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise ApiError(400, "Invalid request body structure")
        mode = options.get("subscribeMode", "auto")
        if mode not in ("auto", "manual"):
            raise ApiError(400, f"Invalid subscribe mode: {mode}")
        try:
            if kind == "agent":
                try:
                    rate = agent_sample_rate(options)
                except ValueError as exc:
                    raise ApiError(400, str(exc)) from None
                peer = state.add_agent(room.id, rate, mode)
                socket = "/socket/agent/websocket"
            elif kind == "webrtc":
                metadata = options.get("metadata")
                if metadata is not None and not isinstance(metadata, dict):
                    raise ApiError(400, "Invalid peer metadata")
                peer = state.add_webrtc_peer(room.id, metadata, mode)
                socket = "/socket/peer/websocket"
            elif kind == "vapi":
                raise ApiError(501, f"VAPI peers are {NOT_IMPLEMENTED}")
            elif kind is None:
                raise ApiError(400, "Peer type not provided")
            else:
                raise ApiError(400, f"Invalid peer type: {kind}")
        except RoomFullError as exc:
            raise ApiError(409, str(exc)) from None
        ws_url = server.ws_url + _prefix(request, "/room/") + socket
        data = {"peer": peer.to_json(), "token": peer.token, "peer_websocket_url": ws_url}
        return web.json_response({"data": data}, status=201)

    async def delete_peer(request: web.Request) -> web.Response:
        room_id, peer_id = request.match_info["room_id"], request.match_info["peer_id"]
        _peer(state, room_id, peer_id)
        await server.remove_peer(room_id, peer_id)
        return web.Response(status=204)

    async def refresh_token(request: web.Request) -> web.Response:
        peer = _peer(state, request.match_info["room_id"], request.match_info["peer_id"])
        token = state.refresh_token(peer)
        return web.json_response({"data": {"token": token}}, status=201)

    async def subscribe_peer(request: web.Request) -> web.Response:
        room_id = request.match_info["room_id"]
        peer = _peer(state, room_id, request.match_info["peer_id"])
        target = request.query.get("peer_id")
        if not target:
            raise ApiError(400, "peer_id query parameter not provided")
        _peer(state, room_id, target)
        if target == peer.id:
            raise ApiError(400, "A peer cannot subscribe to itself")
        if target not in peer.subscribed_peers:
            peer.subscribed_peers.append(target)
        return web.Response(status=200)

    async def subscribe_tracks(request: web.Request) -> web.Response:
        room = _room(state, request.match_info["room_id"])
        peer = _peer(state, room.id, request.match_info["peer_id"])
        body = await _json_body(request)
        track_ids = body.get("track_ids")
        if not isinstance(track_ids, list) or not all(isinstance(t, str) for t in track_ids):
            raise ApiError(400, "track_ids must be a list of track ids")
        known = {t["id"] for p in room.peers.values() for t in p.to_json()["tracks"]}
        unknown = [t for t in track_ids if t not in known]
        if unknown:
            raise ApiError(404, f"Tracks not found in room {room.id}: {', '.join(unknown)}")
        for track_id in track_ids:
            if track_id not in peer.subscribed_tracks:
                peer.subscribed_tracks.append(track_id)
        return web.Response(status=200)

    async def validate(request: web.Request) -> web.Response:
        return web.json_response({})

    async def not_implemented(request: web.Request) -> web.Response:
        raise ApiError(501, f"{request.method} {request.path} is {NOT_IMPLEMENTED}")

    async def agent_socket(request: web.Request) -> web.StreamResponse:
        return await server.sockets.handle(request)

    async def server_socket(request: web.Request) -> web.StreamResponse:
        return await server.server_sockets.handle(request)

    async def peer_socket(request: web.Request) -> web.StreamResponse:
        return await server.peer_sockets.handle(request)

    out: list[web.RouteDef] = []
    for p in ("", PREFIX):
        out += [
            web.post(p + "/room", create_room),
            web.get(p + "/room", list_rooms),
            web.get(p + "/room/{room_id}", get_room),
            web.delete(p + "/room/{room_id}", delete_room),
            web.post(p + "/room/{room_id}/peer", add_peer),
            web.delete(p + "/room/{room_id}/peer/{peer_id}", delete_peer),
            web.post(p + "/room/{room_id}/peer/{peer_id}/refresh_token", refresh_token),
            web.post(p + "/room/{room_id}/peer/{peer_id}/subscribe_peer", subscribe_peer),
            web.post(p + "/room/{room_id}/peer/{peer_id}/subscribe_tracks", subscribe_tracks),
            web.get(p + "/validate", validate),
            web.get(p + "/socket/agent/websocket", agent_socket),
            web.get(p + "/socket/server/websocket", server_socket),
            web.get(p + "/socket/peer/websocket", peer_socket),
            # outside an agent workflow: a clear 501 instead of a bare 404
            web.route("*", p + "/livestream", not_implemented),
            web.route("*", p + "/livestream/{tail:.*}", not_implemented),
            web.route("*", p + "/room/{room_id}/viewer", not_implemented),
            web.route("*", p + "/room/{room_id}/streamer", not_implemented),
            web.route("*", p + "/room/{room_id}/track_forwardings", not_implemented),
            web.route("*", p + "/moq/{tail:.*}", not_implemented),
            web.route("*", p + "/recordings", not_implemented),
            web.route("*", p + "/recordings/{tail:.*}", not_implemented),
        ]
    return out
