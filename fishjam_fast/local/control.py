"""Control endpoints of the local server, for tests and benchmarks in another process.

The real Fishjam has no such thing: these routes live under ``/local/`` (never under
the hosted prefix) and drive what :class:`LocalFishjam`'s methods drive in-process, so
a server started with ``python -m fishjam_fast.local`` can be given speaking peers and
read back what agents sent. Same bearer token as the REST API.

``POST /local/room/{room_id}/speaking_peer``
    body ``{"source": "tone"|"chirp"|"noise"|"speech", "seconds": 1.0, "text": "...",
    "realtime": true, "loop": false, "chunks": null}`` -> 201
    ``{"data": {"peer_id", "track_id"}}``
``POST /local/room/{room_id}/person``
    body ``{"metadata": {...} | null, "audio": null | {"source": "tone"|"chirp"|"noise"|
    "speech", "seconds": 1.0, "text": "..."}, "realtime": true}`` -> 201
    ``{"peer_id", "track_id", "data": {"peer_id", "track_id"}}``: a simulated person
    joins (``LocalFishjam.join_person``; no ``audio``: it stays silent); 409 if the
    room is full
``DELETE /local/room/{room_id}/person/{peer_id}``
    -> ``{"peer_id", "data": {"peer_id"}}``: the person leaves
    (``LocalFishjam.leave_person``; 404 for an unknown room or peer)
``POST /local/room/{room_id}/video_peer``
    body ``{"width": 32, "height": 24}`` -> 201 ``{"data": {"peer_id", "track_id"}}``
``GET /local/agent/{peer_id}``
    -> ``{"data": {"connected", "connections", "track_data_sent", "echo_latencies",
    "echo_count", "echo_mean", "auth_attempts": [{"at", "token", "accepted",
    "reason"}], "connection_log": [{"opened_at", "closed_at", "token", "close_code",
    "close_reason", "track_log": [[index, kind, track_id]], "data_without_track"}],
    "tracks": [TRACK]}}`` where TRACK is ``{"id", "connection_index", "encoding",
    "sample_rate", "channels", "chunk_count", "total_bytes", "interrupts",
    "bytes_played", "bytes_dropped", "bytes_queued", "played_s", "held_s",
    "max_held_s", "removed", "ended"}`` (the latest recording of each track id).
    Times are ``time.monotonic()`` of the server process: CLOCK_MONOTONIC on Linux,
    which a client on the same machine can compare with its own ``time.monotonic()``.
``GET /local/agent/{peer_id}/track/{track_id}``
    -> ``{"data": TRACK + {"at", "arrivals": [[at, nbytes, held_s]...]}}``: ``played_s``
    and ``held_s`` read at server time ``at``.
``POST /local/agent/{peer_id}/flood``
    body ``{"count": 1000, "chunk_bytes": null}`` -> ``{"data": {"sent": n}}``
``POST /local/agent/{peer_id}/drop``
    TCP drop without a close frame -> ``{"data": {"dropped": 1}}`` (409 if not connected)
``POST /local/agents/drop``
    every agent socket dropped -> ``{"data": {"dropped": n}}``
``POST /local/token/revoke``
    body ``{"token": "..."}`` -> ``{"data": {"peer_id"}}`` (404 for an unknown token)
``POST /local/restart``
    body ``{"downtime": 0.0}`` -> 202 ``{"data": {"restarts": n}}``: the restart runs
    after the answer; it is done when ``GET /local/server`` shows ``restarts >= n``.
``POST /local/notifications/flood``
    body ``{"count": 1000}`` -> ``{"data": {"emitted": n}}``
    (``LocalFishjam.flood_notifications``)
``POST /local/notifications/drop``
    every notification socket dropped -> ``{"data": {"dropped": n}}``
``GET /local/server``
    -> ``{"data": {"restarts", "open_sockets", "rooms", "notification_sockets",
    "notifications_emitted", "notification_overflows", "webhooks": {"posted",
    "notifications", "retries", "failed", "dropped", "pending"}}}``
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .signals import AudioSource
from .state import RoomFullError

if TYPE_CHECKING:
    from .records import ConnectionRecord, TrackRecording
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


def track_summary(track: TrackRecording) -> dict[str, Any]:
    """One track recording as JSON (its playout read now)."""
    played, held = track.playout()
    return {
        "id": track.track_id,
        "connection_index": track.connection_index,
        "encoding": track.encoding,
        "sample_rate": track.sample_rate,
        "channels": track.channels,
        "chunk_count": track.chunk_count,
        "total_bytes": track.total_bytes,
        "interrupts": track.interrupt_count,
        "bytes_played": track.bytes_played,
        "bytes_dropped": track.bytes_dropped,
        "bytes_queued": track.bytes_queued,
        "played_s": played,
        "held_s": held,
        "max_held_s": track.max_held_seconds,
        "removed": track.removed,
        "ended": track.ended,
    }


def _connection_summary(rec: ConnectionRecord) -> dict[str, Any]:
    return {
        "opened_at": rec.opened_at,
        "closed_at": rec.closed_at,
        "token": rec.token,
        "close_code": rec.close_code,
        "close_reason": rec.close_reason,
        "track_log": [list(event) for event in rec.track_log],
        "data_without_track": rec.data_without_track,
    }


def agent_summary(server: LocalFishjam, peer_id: str) -> dict[str, Any]:
    """What an agent sent and received, as JSON (the ``GET /local/agent/{id}`` body)."""
    record = server.state.agent(peer_id)
    connections = record.connections
    echo_count = sum(c.echo.count for c in connections)
    return {
        "connected": server.state.connection(peer_id) is not None,
        "connections": len(connections),
        "track_data_sent": sum(c.track_data_sent for c in connections),
        "echo_latencies": [x for c in connections for x in c.echo.samples],
        "echo_count": echo_count,
        "echo_mean": sum(c.echo.total for c in connections) / echo_count if echo_count else None,
        "auth_attempts": [
            {"at": a.at, "token": a.token, "accepted": a.accepted, "reason": a.reason}
            for a in record.auth_attempts
        ],
        "connection_log": [_connection_summary(c) for c in connections],
        "tracks": [track_summary(t) for t in record.tracks.values()],
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

    def known_room(request: web.Request) -> str:
        room_id = request.match_info["room_id"]
        if room_id not in server.state.rooms:
            raise ControlError(404, f"Room {room_id} does not exist")
        return room_id

    def live_agent(request: web.Request) -> str:
        peer_id = request.match_info["peer_id"]
        if server.state.connection(peer_id) is None:
            raise ControlError(409, f"Agent {peer_id} is not connected")
        return peer_id

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
        room_id = known_room(request)
        body = await body_of(request)
        speaker = await server.add_speaking_peer(
            room_id,
            _source(body),
            realtime=bool(body.get("realtime", True)),
            loop=bool(body.get("loop", False)),
            chunks=_int_or_none(body, "chunks"),
        )
        return answer({"peer_id": speaker.peer_id, "track_id": speaker.track_id}, 201)

    async def join_person(request: web.Request) -> web.Response:
        room_id = known_room(request)
        body = await body_of(request)
        audio = body.get("audio")
        if audio is not None and not isinstance(audio, dict):
            raise ControlError(400, 'audio must be null or an object like {"source": "speech"}')
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ControlError(400, "metadata must be null or a JSON object")
        try:
            person = await server.join_person(
                room_id,
                audio=_source(audio) if audio is not None else None,
                metadata=metadata,
                realtime=bool(body.get("realtime", True)),
            )
        except RoomFullError as exc:
            raise ControlError(409, str(exc)) from None
        ids = {"peer_id": person.peer_id, "track_id": person.track_id}
        # top-level keys as the contract names them; "data" as every control route
        return web.json_response({**ids, "data": ids}, status=201)

    async def leave_person(request: web.Request) -> web.Response:
        room_id = known_room(request)
        peer_id = request.match_info["peer_id"]
        if peer_id not in server.state.rooms[room_id].peers:
            raise ControlError(404, f"Peer {peer_id} is not in room {room_id}")
        await server.leave_person(peer_id)
        return web.json_response({"peer_id": peer_id, "data": {"peer_id": peer_id}})

    async def video_peer(request: web.Request) -> web.Response:
        room_id = known_room(request)
        body = await body_of(request)
        width = _int_or_none(body, "width") or 32
        height = _int_or_none(body, "height") or 24
        track = await server.add_video_peer(room_id, width=width, height=height)
        room = server.state.room(room_id)
        peer_id = next(p.id for p in room.peers.values() if track in p.tracks)
        return answer({"peer_id": peer_id, "track_id": track.id}, 201)

    async def agent(request: web.Request) -> web.Response:
        peer_id = request.match_info["peer_id"]
        try:
            return answer(agent_summary(server, peer_id))
        except KeyError:
            raise ControlError(404, f"Agent {peer_id} does not exist") from None

    async def track(request: web.Request) -> web.Response:
        peer_id, track_id = request.match_info["peer_id"], request.match_info["track_id"]
        try:
            recording = server.state.agent(peer_id).tracks[track_id]
        except KeyError:
            raise ControlError(404, f"Agent {peer_id} has no track {track_id}") from None
        at = time.monotonic()
        data = track_summary(recording)
        data["at"] = at
        data["arrivals"] = [list(a) for a in recording.arrivals]
        return answer(data)

    async def flood(request: web.Request) -> web.Response:
        body = await body_of(request)
        count = _int_or_none(body, "count") or 0
        peer_id = live_agent(request)
        sent = await server.flood_agent(
            peer_id, count, chunk_bytes=_int_or_none(body, "chunk_bytes")
        )
        return answer({"sent": sent})

    async def drop(request: web.Request) -> web.Response:
        server.drop_agent(live_agent(request))
        return answer({"dropped": 1})

    async def drop_all(request: web.Request) -> web.Response:
        return answer({"dropped": server.drop_all_agents()})

    async def revoke(request: web.Request) -> web.Response:
        token = (await body_of(request)).get("token")
        if not isinstance(token, str):
            raise ControlError(400, "token must be a string")
        try:
            peer_id = server.revoke_token(token)
        except KeyError:
            raise ControlError(404, "no such token") from None
        return answer({"peer_id": peer_id})

    async def restart(request: web.Request) -> web.Response:
        downtime = (await body_of(request)).get("downtime", 0.0)
        if isinstance(downtime, bool) or not isinstance(downtime, (int, float)):
            raise ControlError(400, "downtime must be a number of seconds")
        if not 0 <= downtime <= 60:
            raise ControlError(400, "downtime must be in [0, 60] seconds")
        return answer({"restarts": server.restart_soon(float(downtime))}, 202)

    async def status(request: web.Request) -> web.Response:
        return answer(
            {
                "restarts": server.restarts,
                "open_sockets": server.sockets.open_count,
                "rooms": len(server.state.rooms),
                "notification_sockets": server.server_sockets.open_count,
                "notifications_emitted": server.notifications.emitted,
                "notification_overflows": server.notifications.overflows,
                "webhooks": {**vars(server.webhooks.stats), "pending": server.webhooks.pending},
            }
        )

    async def flood_notifications(request: web.Request) -> web.Response:
        count = _int_or_none(await body_of(request), "count") or 0
        if count > 10_000_000:
            raise ControlError(400, "count must be at most 10000000")
        return answer({"emitted": await server.flood_notifications(count)})

    async def drop_notification_sockets(request: web.Request) -> web.Response:
        return answer({"dropped": server.drop_notification_sockets()})

    def route(handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.Response:
            return await guarded(request, handler)

        return wrapped

    return [
        web.post(PREFIX + "/room/{room_id}/speaking_peer", route(speaking_peer)),
        web.post(PREFIX + "/room/{room_id}/person", route(join_person)),
        web.delete(PREFIX + "/room/{room_id}/person/{peer_id}", route(leave_person)),
        web.post(PREFIX + "/room/{room_id}/video_peer", route(video_peer)),
        web.get(PREFIX + "/agent/{peer_id}", route(agent)),
        web.get(PREFIX + "/agent/{peer_id}/track/{track_id}", route(track)),
        web.post(PREFIX + "/agent/{peer_id}/flood", route(flood)),
        web.post(PREFIX + "/agent/{peer_id}/drop", route(drop)),
        web.post(PREFIX + "/agents/drop", route(drop_all)),
        web.post(PREFIX + "/token/revoke", route(revoke)),
        web.post(PREFIX + "/restart", route(restart)),
        web.get(PREFIX + "/server", route(status)),
        web.post(PREFIX + "/notifications/flood", route(flood_notifications)),
        web.post(PREFIX + "/notifications/drop", route(drop_notification_sockets)),
    ]
