"""LocalFishjamProcess (the server in a child process) drives reconnect scenarios and
reads playout over the control routes; ``kill -HUP`` restarts ``python -m
fishjam_fast.local``. The client is a synchronous raw websockets agent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets
from websockets.sync.client import ClientConnection, connect

from fishjam_fast._proto import agent_pb2, notifications_pb2
from fishjam_fast.local import LocalFishjamProcess
from fishjam_fast.local.process import AgentSpec
from tests.raw_agent import AUTHENTICATED, TIMEOUT, request


def _ws_url(spec: AgentSpec) -> str:
    return spec.url.replace("http", "ws", 1) + "/socket/agent/websocket"


def _auth(spec: AgentSpec, token: str | None = None) -> ClientConnection:
    ws = connect(_ws_url(spec), open_timeout=TIMEOUT)
    auth = agent_pb2.AgentRequest.AuthRequest(token=token or spec.token)
    ws.send(request(auth_request=auth))
    try:
        reply = ws.recv(TIMEOUT)
    except websockets.ConnectionClosed:
        return ws
    assert reply == AUTHENTICATED
    return ws


def _add_track(ws: ClientConnection, track_id: str) -> None:
    track = notifications_pb2.Track(id=track_id, type=notifications_pb2.TRACK_TYPE_AUDIO)
    ws.send(request(add_track=agent_pb2.AgentRequest.AddTrack(track=track)))


def _ended_without_close_frame(ws: ClientConnection) -> bool:
    with pytest.raises(websockets.ConnectionClosed) as info:
        ws.recv(TIMEOUT)
    return info.value.rcvd is None


def _wait(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {TIMEOUT} s"
        time.sleep(0.01)


def test_process_drop_restart_revoke_and_playout() -> None:
    with LocalFishjamProcess(60, record=True) as server:
        spec = server.create_agent()
        ws = _auth(spec)
        _add_track(ws, "t")
        sent_at = time.monotonic()
        ws.send(
            request(track_data=agent_pb2.AgentRequest.TrackData(track_id="t", data=bytes(32000)))
        )
        _wait(lambda: server.agent(spec.peer_id)["tracks"], "the track")
        _wait(lambda: server.track(spec.peer_id, "t")["total_bytes"] == 32000, "the audio")
        track = server.track(spec.peer_id, "t")
        (arrived, nbytes, held), read_at = track["arrivals"][0], track["at"]
        # the server's monotonic clock is this process's (CLOCK_MONOTONIC)
        assert sent_at <= arrived <= read_at <= time.monotonic()
        assert nbytes == 32000 and held == 1.0
        before = time.monotonic()
        played, held = server.track_playout(spec.peer_id, "t")
        assert played + held == pytest.approx(1.0, abs=1e-12)
        assert played <= time.monotonic() - arrived and held <= 1.0 - (before - arrived) + 1e-4

        server.drop_agent(spec.peer_id)
        assert _ended_without_close_frame(ws)
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.drop_agent(spec.peer_id)  # no longer connected
        assert refused.value.code == 409
        ws = _auth(spec)
        server.restart(downtime=0.1)
        assert _ended_without_close_frame(ws)
        ws = _auth(spec)  # rooms, peers and tokens survived the restart
        assert server.drop_all_agents() == 1
        assert _ended_without_close_frame(ws)
        server.revoke_token(spec.token)
        ws = _auth(spec)
        with pytest.raises(websockets.ConnectionClosedOK):
            ws.recv(TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (1000, "invalid token")
        attempts = server.agent(spec.peer_id)["auth_attempts"]
        assert [(a["token"], a["accepted"]) for a in attempts] == [(spec.token, True)] * 3 + [
            (spec.token, False)
        ]
        assert server.call("GET", "/local/server")["restarts"] == 1


def test_the_child_imports_this_process_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a source checkout as the working directory: its fishjam_fast (without the compiled
    # extension) must not shadow the package this process imported
    shadow = tmp_path / "fishjam_fast"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the working directory was imported')")
    monkeypatch.chdir(tmp_path)
    with LocalFishjamProcess(30) as server:
        assert server.call("GET", "/local/server")["restarts"] == 0
    # stopped, its pipe closed (no ResourceWarning)
    assert server._process is not None and server._process.returncode is not None
    assert server._process.stdout is not None and server._process.stdout.closed


def test_sighup_restarts_the_command_line_server() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fishjam_fast.local", "--port", "0", "--seconds", "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        token = proc.stdout.readline().split()[1]

        def restarts() -> int:
            req = urllib.request.Request(url + "/local/server")
            req.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
                    return int(json.load(response)["data"]["restarts"])
            except OSError:  # refused while it restarts
                return -1

        assert restarts() == 0
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: restarts() == 1, "the restart")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
