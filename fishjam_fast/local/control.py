"""Control endpoints of the local server, for tests and benchmarks in another process.

The real Fishjam has no such thing: these routes live under ``/local/`` (never under
the hosted prefix) and drive what :class:`LocalFishjam`'s methods drive in-process, so
a server started with ``python -m fishjam_fast.local`` can be given speaking peers and
read back what agents sent. Same bearer token as the REST API.

``POST /local/room/{room_id}/speaking_peer``
    body ``{"source": "tone"|"chirp"|"noise"|"speech", "seconds": 1.0, "text": "...",
    "realtime": true, "loop": false, "chunks": null}`` -> 201
    ``{"data": {"peer_id", "track_id"}}``
``POST /local/room/{room_id}/video_peer``
    body ``{"width": 32, "height": 24}`` -> 201 ``{"data": {"peer_id", "track_id"}}``
``GET /local/agent/{peer_id}``
    -> ``{"data": {"connected", "connections", "track_data_sent", "echo_latencies",
    "tracks": [{"id", "sample_rate", "channels", "chunk_count", "total_bytes",
    "interrupts", "bytes_played", "bytes_dropped", "removed"}]}}``
``POST /local/agent/{peer_id}/flood``
    body ``{"count": 1000, "chunk_bytes": null}`` -> ``{"data": {"sent": n}}``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .signals import AudioSource

if TYPE_CHECKING:
    from .server import LocalFishjam

PREFIX = "/local"


class ControlError(Exception):
    """A control request that cannot be carried out (answered with ``status``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _source(body: dict[str, Any]) -> AudioSource:
    kind = body.get("source", "tone")
    seconds = float(body.get("seconds", 1.0))
    if not 0 < seconds <= 600:
        raise ControlError(400, "seconds must be in (0, 600]")
    if kind == "tone":
        return AudioSource.tone(float(body.get("frequency", 440.0)), seconds)
    if kind == "chirp":
        return AudioSource.chirp(seconds=seconds)
    if kind == "noise":
        return AudioSource.noise(seconds, int(body.get("seed", 0)))
    if kind == "speech":
        return AudioSource.speech(str(body.get("text", "Hello from the local Fishjam server")))
    raise ControlError(400, f"unknown source {kind!r}: use tone, chirp, noise or speech")


def _int_or_none(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ControlError(400, f"{key} must be a non-negative integer")
    return value


def agent_summary(server: LocalFishjam, peer_id: str) -> dict[str, Any]:
    """What an agent sent and received, as JSON (the ``GET /local/agent/{id}`` body)."""
    record = server.agent(peer_id)
    connections = record.connections
    return {
        "connected": server.connection(peer_id) is not None,
        "connections": len(connections),
        "track_data_sent": sum(c.track_data_sent for c in connections),
        "echo_latencies": [x for c in connections for x in c.echo_latencies],
        "tracks": [
            {
                "id": t.track_id,
                "sample_rate": t.sample_rate,
                "channels": t.channels,
                "chunk_count": t.chunk_count,
                "total_bytes": t.total_bytes,
                "interrupts": t.interrupt_count,
                "bytes_played": t.bytes_played,
                "bytes_dropped": t.bytes_dropped,
                "removed": t.removed,
            }
            for t in record.tracks.values()
        ],
    }


def control_routes(server: LocalFishjam) -> list[web.RouteDef]:
    """The ``/local/...`` routes."""

    async def body_of(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise ControlError(400, "body must be JSON") from None
        if not isinstance(body, dict):
            raise ControlError(400, "body must be a JSON object")
        return body

    def answer(data: dict[str, Any], status: int = 200) -> web.Response:
        return web.json_response({"data": data}, status=status)

    async def guarded(request: web.Request, handler: Any) -> web.Response:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except ControlError as exc:
            return web.json_response({"errors": str(exc)}, status=exc.status)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"errors": f"bad request: {exc}"}, status=400)

    async def speaking_peer(request: web.Request) -> web.Response:
        room_id = request.match_info["room_id"]
        if room_id not in server.rooms:
            raise ControlError(404, f"Room {room_id} does not exist")
        body = await body_of(request)
        speaker = await server.add_speaking_peer(
            room_id,
            _source(body),
            realtime=bool(body.get("realtime", True)),
            loop=bool(body.get("loop", False)),
            chunks=_int_or_none(body, "chunks"),
        )
        return answer({"peer_id": speaker.peer_id, "track_id": speaker.track_id}, 201)

    async def video_peer(request: web.Request) -> web.Response:
        room_id = request.match_info["room_id"]
        if room_id not in server.rooms:
            raise ControlError(404, f"Room {room_id} does not exist")
        body = await body_of(request)
        width = _int_or_none(body, "width") or 32
        height = _int_or_none(body, "height") or 24
        track = await server.add_video_peer(room_id, width=width, height=height)
        peer_id = next(p.id for p in server.rooms[room_id].peers.values() if track in p.tracks)
        return answer({"peer_id": peer_id, "track_id": track.id}, 201)

    async def agent(request: web.Request) -> web.Response:
        peer_id = request.match_info["peer_id"]
        try:
            return answer(agent_summary(server, peer_id))
        except KeyError:
            raise ControlError(404, f"Agent {peer_id} does not exist") from None

    async def flood(request: web.Request) -> web.Response:
        peer_id = request.match_info["peer_id"]
        body = await body_of(request)
        count = _int_or_none(body, "count") or 0
        if server.connection(peer_id) is None:
            raise ControlError(409, f"Agent {peer_id} is not connected")
        sent = await server.flood_agent(
            peer_id, count, chunk_bytes=_int_or_none(body, "chunk_bytes")
        )
        return answer({"sent": sent})

    def route(handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.Response:
            return await guarded(request, handler)

        return wrapped

    return [
        web.post(PREFIX + "/room/{room_id}/speaking_peer", route(speaking_peer)),
        web.post(PREFIX + "/room/{room_id}/video_peer", route(video_peer)),
        web.get(PREFIX + "/agent/{peer_id}", route(agent)),
        web.post(PREFIX + "/agent/{peer_id}/flood", route(flood)),
    ]
