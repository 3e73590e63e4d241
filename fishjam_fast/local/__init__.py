"""A faithful local Fishjam server for tests, benchmarks and demos.

Install with ``pip install fishjam-fast[local]``.

One aiohttp server on 127.0.0.1 serves both faces of Fishjam on one port:

- the REST subset ``FishjamClient`` needs: ``POST/GET /room``, ``GET/DELETE /room/{id}``,
  ``POST /room/{id}/peer`` (``agent`` and ``webrtc``), ``DELETE /room/{id}/peer/{id}``,
  ``POST /room/{id}/peer/{id}/refresh_token``, ``GET /validate``; bearer-token checked,
  JSON shaped as the plain SDK's OpenAPI models parse it, errors as ``{"errors": "..."}``
  with the real statuses (400 bad body, 401 bad/missing token, 404 unknown room/peer);
- the agent socket at ``/socket/agent/websocket``, with the real authentication and close
  reasons (``unauthenticated``, ``missing token``, ``invalid token``, ``peer not found``,
  ``room not found``, ``peer already connected``; ``Peer removed``, ``Room stopped``).

Both are also served under the hosted path prefix ``/api/v1/connect/<fishjam_id>``, and a
new peer's ``peer_websocket_url`` keeps the prefix it was created under, so
``FishjamClient(fj.url, fj.management_token).create_agent(...)`` (plain SDK or ours)
returns an Agent that connects here.

The server side decodes with google.protobuf (``fishjam_fast._proto``), never with
fishjam_fast's own codec, which is what it tests.

Programmatic API (all on the server's event loop)::

    async with LocalFishjam(port=0, *, management_token=None, heartbeat=30.0,
                            auth_timeout=30.0, max_message_size=4 MiB,
                            record_chunks=True, record_requests=True, ssl=None,
                            webhook_secret=None, webhook_timeout=5.0, webhook_retries=3,
                            notification_queue=10_000) as fj:
        fj.url, fj.ws_url, fj.agent_socket_url, fj.management_token, fj.port
        room_id = await fj.create_room(**camelCaseRoomConfig)          -> str
        peer = await fj.add_agent(room_id, sample_rate=16000)           -> Peer (.id, .token)
        speaker = await fj.add_speaking_peer(room_id, source=None, *, source_sample_rate=16000,
                                             realtime=True, loop=False, chunks=None,
                                             metadata=None, start=True)  -> SpeakingPeer
        track = await fj.add_video_peer(room_id, *, width=32, height=24, image=None,
                                        content_type="image/jpeg", metadata=None)
                                                                        -> SimulatedTrack
        person = await fj.join_person(room_id, *, audio=None, metadata=None,
                                      source_sample_rate=16000, realtime=True,
                                      track_metadata=None)   -> Person (.peer_id, .track_id,
                                                                .speaker, wait_done(timeout))
        await fj.leave_person(peer_id)
        fj.update_track_metadata(peer_id, track_id, metadata)
        fj.notifications -> NotificationHub (.history, .emitted, .overflows,
                            .subscriber_count); fj.notification_socket_url
        fj.webhooks -> WebhookPoster (.stats); await fj.wait_webhooks(timeout)
        await fj.flood_notifications(count); fj.drop_notification_sockets() -> int
        await fj.remove_peer(room_id, peer_id); await fj.delete_room(room_id)
        fj.refresh_token(peer_id) -> str; fj.revoke_token(token) -> peer_id
        fj.rooms, fj.peer(peer_id), fj.agent(peer_id) -> AgentRecord, fj.connection(peer_id),
        fj.connections -> [ConnectionRecord], fj.state -> ServerState (the registry)
        fj.track_playout(peer_id, track_id) -> (played_s, held_s)
        await fj.wait_for(predicate, timeout); fj.wait_connected / wait_disconnected /
        wait_track(peer_id, index) / wait_bytes(track, n) / wait_requests(peer_id, n)
        # fault injection (faults.py) and restarts
        await fj.kick(peer_id)                       # close 1000 "Peer removed" (peer deleted)
        await fj.close_agent(peer_id, code=1011, reason="internal error")  # peer kept
        fj.drop_agent(peer_id)                       # TCP abort, client sees 1006
        fj.drop_all_agents() -> int                  # every agent socket, TCP abort
        fj.stall_agent(peer_id, seconds)             # stop reading: backpressure
        await fj.send_raw(peer_id, data)             # any binary frame
        await fj.flood_agent(peer_id, count, chunk_bytes=None) -> int
        await fj.restart(downtime=0.0)   # like a deploy: sockets dropped, port reopened,
                                         # rooms/peers/tokens kept; fj.restarts counts

Recordings: ``fj.agent(peer_id)`` is an :class:`AgentRecord`: ``.auth_attempts`` (each
an :class:`AuthAttempt`: time, token, accepted, reason), ``.connections`` (each a
:class:`ConnectionRecord` with ``.requests``, every decoded ``AgentRequest`` in order,
``.track_log`` (add_track / first track_data / remove_track per track, in order), the
close code/reason the server sent and ``.echo`` round trips, bounded) and ``.tracks``
(each a :class:`TrackRecording`: codec params, metadata, ``chunks``, ``total_bytes``,
``interrupts``, ``bytes_played`` / ``bytes_dropped`` / ``bytes_queued``,
``playout() -> (played_s, held_s)``, ``arrivals``, ``max_held_seconds``,
``played_audio``, ``removed``). A track re-added after a reconnect replaces its ended
recording in ``.tracks``; ``.track_history`` keeps them all.

Simulated peers speak PCM16 mono at each agent's output rate in 20 ms chunks, from an
:class:`AudioSource` (``tone``, ``chirp``, ``noise``, ``speech`` via espeak-ng when
installed, else a speech-like synthetic signal, or ``from_array``).

Notifications and people: the notification socket ``/socket/server/websocket`` (the
plain SDK's ``FishjamNotifier`` works against it), webhooks to a room's ``webhookUrl``
(batched, signed with ``webhook_secret``), the WebRTC peer socket
``/socket/peer/websocket`` (authentication only), and simulated people
(``await fj.join_person(room_id, audio=..., metadata=...)`` -> :class:`Person`,
``await fj.leave_person(peer_id)``); see :mod:`.notifications` for what is emitted when.

Deliberate simplifications: no WebRTC (a ``webrtc`` peer made over REST is connected
while a client is authenticated on its peer socket; simulated peers count as
connected); subscriptions only gate what agents hear (``manual`` agents hear the peers
and tracks they subscribed to); tokens
are random strings that never expire and stay valid after ``refresh_token`` (unless
revoked with :meth:`LocalFishjam.revoke_token`); OPUS audio
from agents is recorded but not paced; one agent's slow socket delays the speaking
peer's delivery to the other agents of its room.
A restart keeps all state in memory (the process stays): it models a deploy, not a
crash that loses state.
See :mod:`fishjam_fast.local.agent_socket` for the protocol decisions (malformed frames
close 1011 ``invalid message``, capture_image of an unknown track is ignored, ...).

For synchronous code, ``with ThreadedLocalFishjam() as t:`` runs the server on its own
loop in a thread; ``t.call(t.server.add_agent, room_id, 24000)`` runs any of the methods
above there and returns the result.

Also: the pytest fixture ``local_fishjam`` (:mod:`fishjam_fast.local.pytest_plugin`) and
the command line ``python -m fishjam_fast.local --port 5002``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .images import make_png
from .peers import Person, SimulatedTrack, SpeakingPeer
from .process import AgentSpec, LocalFishjamProcess
from .records import (
    AgentRecord,
    Arrival,
    AuthAttempt,
    ConnectionRecord,
    LatencySample,
    TrackEvent,
    TrackRecording,
)
from .signals import AudioSource
from .state import Peer, Room, RoomFullError, ServerState
from .vad import VoiceActivity

if TYPE_CHECKING:
    from .server import PEER_REMOVED, ROOM_STOPPED, LocalFishjam
    from .threaded import ThreadedLocalFishjam

_SERVER_NAMES = {
    "LocalFishjam": "server",
    "PEER_REMOVED": "server",
    "ROOM_STOPPED": "server",
    "ThreadedLocalFishjam": "threaded",
}
"""The names that need aiohttp (the ``local`` extra), imported on first use, so that
``python -m fishjam_fast.local`` can say what to install and ``LocalFishjamProcess``
(a REST client on urllib) works without it."""


def __getattr__(name: str) -> Any:
    module = _SERVER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "PEER_REMOVED",
    "ROOM_STOPPED",
    "AgentRecord",
    "AgentSpec",
    "Arrival",
    "AudioSource",
    "AuthAttempt",
    "ConnectionRecord",
    "LatencySample",
    "LocalFishjam",
    "LocalFishjamProcess",
    "Peer",
    "Person",
    "Room",
    "RoomFullError",
    "ServerState",
    "SimulatedTrack",
    "SpeakingPeer",
    "ThreadedLocalFishjam",
    "TrackEvent",
    "TrackRecording",
    "VoiceActivity",
    "make_png",
]
