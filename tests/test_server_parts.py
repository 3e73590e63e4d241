"""The agent server's parts without processes: the dispatch rule fed notifications (the
plain SDK's ``fishjam.events`` classes, the reference for names and fields), the
options' validation, the supervisor-worker channel over a real socket pair."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from fishjam_fast.rest import Peer, Room
from fishjam_fast.server.dispatch import EndJob, OneAgentPerRoom, StartJob
from fishjam_fast.server.ipc import Channel, ChannelClosed, ChannelError
from fishjam_fast.server.job import JobRequest
from fishjam_fast.server.options import ServerOptions
from fishjam_fast.server.worker import _resolved_proxy, resolve, resolve_prewarm

events = pytest.importorskip("fishjam.events")
WEBRTC = events.ServerMessagePeerType.PEER_TYPE_WEBRTC
AGENT = events.ServerMessagePeerType.PEER_TYPE_AGENT


def connected(room: str, peer: str, kind: Any = WEBRTC) -> Any:
    return events.ServerMessagePeerConnected(room_id=room, peer_id=peer, peer_type=kind)


def disconnected(room: str, peer: str, kind: Any = WEBRTC) -> Any:
    return events.ServerMessagePeerDisconnected(room_id=room, peer_id=peer, peer_type=kind)


def test_one_agent_per_room_while_a_webrtc_peer_is_connected() -> None:
    rule = OneAgentPerRoom()
    assert rule.on_notification(connected("r1", "a")) == [
        StartJob(JobRequest("r1", "a", None, key="r1"))
    ]
    assert rule.on_notification(connected("r1", "b")) == []  # one job per room
    assert rule.on_notification(connected("r1", "agent", AGENT)) == []  # agents do not count
    assert rule.on_notification(disconnected("r1", "a")) == []  # b is still there
    assert rule.desired() == {"r1": JobRequest("r1", "a", None, key="r1")}
    assert rule.on_notification(disconnected("r1", "agent", AGENT)) == []
    assert rule.on_notification(disconnected("r1", "b")) == [EndJob("r1")]
    assert rule.desired() == {}
    assert rule.on_notification(disconnected("r1", "b")) == []  # twice: nothing more


@pytest.mark.parametrize(
    "leaving",
    [
        lambda: events.ServerMessagePeerDeleted(room_id="r", peer_id="p", peer_type=WEBRTC),
        lambda: events.ServerMessagePeerCrashed(
            room_id="r", peer_id="p", reason="x", peer_type=WEBRTC
        ),
        lambda: events.ServerMessageRoomDeleted(room_id="r"),
        lambda: events.ServerMessageRoomCrashed(room_id="r"),
    ],
    ids=["peer-deleted", "peer-crashed", "room-deleted", "room-crashed"],
)
def test_the_job_ends_when_the_last_peer_or_the_room_goes(leaving: Any) -> None:
    rule = OneAgentPerRoom()
    rule.on_notification(connected("r", "p"))
    assert rule.on_notification(leaving()) == [EndJob("r")]
    assert rule.desired() == {}


def test_other_notifications_and_rooms_are_independent() -> None:
    rule = OneAgentPerRoom()
    assert rule.on_notification(events.ServerMessageRoomCreated(room_id="r")) == []
    added = events.ServerMessagePeerAdded(room_id="r", peer_id="p", peer_type=WEBRTC)
    assert rule.on_notification(added) == []  # created, not yet joined
    assert rule.on_notification(object()) == []
    rule.on_notification(connected("r1", "a"))
    rule.on_notification(connected("r2", "b"))
    assert rule.on_notification(events.ServerMessageRoomDeleted(room_id="r1")) == [EndJob("r1")]
    assert set(rule.desired()) == {"r2"}


def test_reset_rebuilds_the_view_from_rest() -> None:
    rule = OneAgentPerRoom()
    rule.on_notification(connected("gone", "x"))
    rooms = [
        Room("r1", {}, [Peer("a", "webrtc", "connected"), Peer("g", "agent", "connected")]),
        Room("r2", {}, [Peer("b", "webrtc", "disconnected")]),
        Room("r3", {}, [Peer("c", "agent", "connected")]),
    ]
    rule.reset(rooms)
    assert rule.desired() == {"r1": JobRequest("r1", "a", None, key="r1")}
    # the view continues from there
    assert rule.on_notification(disconnected("r1", "a")) == [EndJob("r1")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers must be 'auto' or at least 1"),
        ({"workers": "many"}, "workers must be 'auto'"),
        ({"max_jobs": 0}, "max_jobs must be an integer of at least 1"),
        ({"when_full": "drop"}, "when_full must be 'wait' or 'refuse'"),
        ({"job_wait_timeout": 0}, "job_wait_timeout must be positive"),
        ({"max_load": -1}, "max_load must be positive"),
        ({"drain_timeout": -1}, "drain_timeout must be zero or positive"),
        ({"metrics_port": 70000}, "metrics_port must be 0..65535"),
        ({"dispatch_token": ""}, "dispatch_token must be None"),
        ({"worker_timeout": 0.5, "report_interval": 1.0}, "worker_timeout .* must exceed"),
    ],
)
def test_options_say_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerOptions(**options)


def test_options_never_show_the_dispatch_token() -> None:
    options = ServerOptions(dispatch_token="s3cret", workers=3)
    assert "s3cret" not in repr(options)
    assert options.worker_count == 3
    assert ServerOptions().worker_count >= 1


def test_resolve_names_what_is_wrong() -> None:
    assert resolve("json:dumps").__name__ == "dumps"
    with pytest.raises(ValueError, match="module:function"):
        resolve("json.dumps")
    with pytest.raises(ValueError, match="has no 'nothing'"):
        resolve("json:nothing")
    with pytest.raises(ValueError, match="is not callable"):
        resolve("json:__doc__")
    with pytest.raises(ImportError):
        resolve("no_such_module_here:x")
    assert resolve_prewarm("json:dumps", None) is None
    assert resolve_prewarm("json:dumps", "json:loads").__name__ == "loads"


async def _pair(max_size: int = 1024) -> tuple[Channel, socket.socket]:
    ours, theirs = socket.socketpair()
    return await Channel.open(ours, max_size), theirs


async def test_channel_round_trip() -> None:
    a_sock, b_sock = socket.socketpair()
    a, b = await Channel.open(a_sock, 1024), await Channel.open(b_sock, 1024)
    a.send({"t": "start", "job": "j", "metadata": {"x": [1, 2]}})
    await a.drain(1.0)
    assert await b.receive() == {"t": "start", "job": "j", "metadata": {"x": [1, 2]}}
    with pytest.raises(ChannelError, match="exceeds 1024"):
        a.send({"t": "x", "pad": "y" * 2000})
    a.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(b.receive(), 1.0)
    b.close()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (struct.pack(">I", 5000) + b"x", "exceeds 1024"),
        (struct.pack(">I", 4) + b"{not", "malformed"),
        (struct.pack(">I", 2) + b"[]", "malformed"),
        (struct.pack(">I", 9) + b'{"t": 1} ', "malformed"),
        (struct.pack(">I", 10) + b"{}", "closed"),  # cut short, then EOF
    ],
    ids=["oversized", "not-json", "not-an-object", "no-type", "truncated"],
)
async def test_channel_refuses_malformed_messages(raw: bytes, error: str) -> None:
    channel, theirs = await _pair()
    theirs.sendall(raw)
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(ChannelError, match=error):
        await asyncio.wait_for(channel.receive(), 1.0)
    channel.close()
    theirs.close()


def test_job_request_checks_its_fields() -> None:
    with pytest.raises(ValueError, match="room_id must be a non-empty string"):
        JobRequest("")
    with pytest.raises(TypeError, match="peer_id must be a string"):
        JobRequest("r", peer_id=3)  # type: ignore[arg-type]


def test_agent_server_checks_its_arguments() -> None:
    pytest.importorskip("prometheus_client")
    from fishjam_fast.server import AgentServer

    with pytest.raises(TypeError, match="unknown AgentServer options"):
        AgentServer("json:dumps", workerz=2)
    with pytest.raises(ValueError, match="management token is needed"):
        AgentServer("json:dumps", fishjam_url="http://127.0.0.1:1", management_token="")
    with pytest.raises(ValueError, match="source must be"):
        AgentServer("json:dumps", source="webhooks")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="entrypoint must be"):
        AgentServer(3)  # type: ignore[arg-type]
    server = AgentServer("json:dumps", fishjam_url="http://h", management_token="m4nage")
    assert "m4nage" not in repr(server)


def test_job_is_light_and_top_level() -> None:
    import fishjam_fast

    assert fishjam_fast.Job.__module__ == "fishjam_fast.server.job"


PROXY_VARIABLES = ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "socks_proxy", "no_proxy")


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_worker_settles_the_default_proxy_once_when_the_environment_names_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clear_proxies(monkeypatch)
    # proxy=True (given or by default) means "the environment's": none here, so direct
    assert _resolved_proxy({}) == {"proxy": False}
    assert _resolved_proxy({"proxy": True, "max_queue": 7}) == {"proxy": False, "max_queue": 7}
    # an explicit choice is kept as given
    assert _resolved_proxy({"proxy": "http://127.0.0.1:3128"}) == {"proxy": "http://127.0.0.1:3128"}
    assert _resolved_proxy({"proxy": None}) == {"proxy": None}


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy", "NO_PROXY"])
def test_worker_keeps_the_environment_lookup_where_a_proxy_is_configured(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    _clear_proxies(monkeypatch)
    monkeypatch.setenv(variable, "http://127.0.0.1:3128")
    # the transport reads the environment at each connection, as without the server
    assert _resolved_proxy({}) == {}
    assert _resolved_proxy({"proxy": True}) == {"proxy": True}
