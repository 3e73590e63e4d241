"""The local Fishjam server in a child process, for benchmarks, demos and other tests.

Running the server in its own process keeps its CPU time out of the client's
measurements (and off the client's event loop). The in-process API of
:class:`~fishjam_fast.local.LocalFishjam` is reached over REST: Fishjam's own routes
and the ``/local/`` control routes (:mod:`fishjam_fast.local.control`).
"""

from __future__ import annotations

import contextlib
import json
import os
import site
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fishjam_fast


def _child_environment() -> dict[str, str]:
    """This process's environment, with the directory holding the ``fishjam_fast`` it
    imported first on ``PYTHONPATH`` unless that is a site directory (which the child
    has anyway, after the standard library, where it belongs)."""
    env = dict(os.environ)
    root = Path(fishjam_fast.__file__).resolve().parent.parent
    site_dirs = [*site.getsitepackages(), site.getusersitepackages()]
    if all(Path(d).resolve() != root for d in site_dirs):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(root), env.get("PYTHONPATH"))))
    return env


@dataclass(frozen=True)
class AgentSpec:
    """Where one agent connects: ``Agent(spec.peer_id, spec.room_id, spec.token, spec.url)``."""

    peer_id: str
    room_id: str
    token: str
    url: str


class LocalFishjamProcess:
    """``python -m fishjam_fast.local`` in a child process, driven over REST.

    Use as ``with LocalFishjamProcess(seconds=60) as server:``; ``server.url`` and
    ``server.token`` are set on entry, and the process is stopped on exit (or by
    itself after ``seconds``).
    """

    def __init__(
        self, seconds: float, *, record: bool = False, webhook_secret: str | None = None
    ) -> None:
        """Configures the child process.

        Args:
            seconds: The server stops by itself after this long, whatever happens.
            record: Keep chunk bodies and requests (memory grows with traffic).
            webhook_secret: Sign webhook bodies with this secret (``--webhook-secret``).
        """
        self._seconds = seconds
        self._record = record
        self._webhook_secret = webhook_secret
        self._process: subprocess.Popen[str] | None = None
        self.url = ""
        self.token = ""

    def __enter__(self) -> LocalFishjamProcess:
        # -P: the working directory does not go first on the child's sys.path, so a
        # source checkout there (no compiled extension) cannot shadow the package this
        # process imported; the child imports that one, wherever it lives.
        command = [sys.executable, "-P", "-m", "fishjam_fast.local", "--port", "0"]
        command += ["--seconds", str(self._seconds), "--heartbeat", "0"]
        if not self._record:
            command.append("--no-record")
        if self._webhook_secret is not None:
            command += ["--webhook-secret", self._webhook_secret]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env=_child_environment()
        )
        assert self._process.stdout is not None
        for _ in range(2):
            key, _, value = self._process.stdout.readline().strip().partition(" ")
            if key == "URL":
                self.url = value
            elif key == "MANAGEMENT_TOKEN":
                self.token = value
        if not (self.url and self.token):
            self.__exit__()
            raise RuntimeError("the local Fishjam server did not start")
        return self

    @property
    def pid(self) -> int | None:
        """The child's process id (None before ``__enter__``): benchmarks read its CPU."""
        return self._process.pid if self._process is not None else None

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One REST call (Fishjam's subset or the /local/ control routes).

        Returns:
            The ``data`` member of the JSON answer (None for an empty one).

        Raises:
            urllib.error.HTTPError: the server answered with an error status.
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
        return json.loads(payload)["data"] if payload else None

    def create_agent(self, speaker: dict[str, Any] | None = None) -> AgentSpec:
        """A new room with an agent peer in it (16 kHz output), over REST.

        Args:
            speaker: When given, the body of a ``/local/room/{id}/speaking_peer`` call:
                a simulated peer speaking in the room (see :mod:`.control`).

        Returns:
            What an Agent needs to connect.
        """
        room_id = self.call("POST", "/room", {})["room"]["id"]
        peer = self.call("POST", f"/room/{room_id}/peer", {"type": "agent", "options": {}})
        if speaker is not None:
            self.call("POST", f"/local/room/{room_id}/speaking_peer", speaker)
        return AgentSpec(peer["peer"]["id"], room_id, peer["token"], self.url)

    def agent(self, peer_id: str) -> dict[str, Any]:
        """What an agent did: the ``GET /local/agent/{id}`` summary (see :mod:`.control`)."""
        return self.call("GET", f"/local/agent/{peer_id}")  # type: ignore[no-any-return]

    def track(self, peer_id: str, track_id: str) -> dict[str, Any]:
        """One agent track's recording, playout and arrivals (``GET
        /local/agent/{id}/track/{id}``)."""
        return self.call("GET", f"/local/agent/{peer_id}/track/{track_id}")  # type: ignore[no-any-return]

    def track_playout(self, peer_id: str, track_id: str) -> tuple[float, float]:
        """``(played_s, held_s)`` of an agent track at this instant, as
        :meth:`LocalFishjam.track_playout` reads it in the server process."""
        data = self.track(peer_id, track_id)
        return float(data["played_s"]), float(data["held_s"])

    def join_person(
        self,
        room_id: str,
        *,
        audio: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[str, str]:
        """A simulated person joins a room (``POST /local/room/{id}/person``).

        Args:
            room_id: The room.
            audio: What it says, as the control route takes it (``{"source": "speech",
                "text": "..."}``); None: silent.
            metadata: Its peer metadata.

        Returns:
            ``(peer_id, track_id)``.
        """
        data = self.call(
            "POST", f"/local/room/{room_id}/person", {"audio": audio, "metadata": metadata}
        )
        return str(data["peer_id"]), str(data["track_id"])

    def leave_person(self, room_id: str, peer_id: str) -> None:
        """A simulated person leaves (``DELETE /local/room/{id}/person/{peer_id}``)."""
        self.call("DELETE", f"/local/room/{room_id}/person/{peer_id}")

    def drop_agent(self, peer_id: str) -> None:
        """Drop one agent's TCP connection without a close frame.

        Raises:
            urllib.error.HTTPError: 409 if the agent is not connected.
        """
        self.call("POST", f"/local/agent/{peer_id}/drop", {})

    def drop_all_agents(self) -> int:
        """Drop every agent socket without a close frame; returns how many."""
        return int(self.call("POST", "/local/agents/drop", {})["dropped"])

    def revoke_token(self, token: str) -> None:
        """Refuse ``token`` from its next auth_request on (close 1000 ``invalid token``).

        Raises:
            urllib.error.HTTPError: 404 for a token the server never issued.
        """
        self.call("POST", "/local/token/revoke", {"token": token})

    def restart(self, downtime: float = 0.0, timeout: float = 10.0) -> None:
        """Restart the server keeping its state (:meth:`LocalFishjam.restart`) and wait
        until it listens again.

        Args:
            downtime: Seconds during which connections are refused.
            timeout: Seconds to wait for it to be back (after ``downtime``).

        Raises:
            TimeoutError: If it was not back in time.
        """
        target = int(self.call("POST", "/local/restart", {"downtime": downtime})["restarts"])
        deadline = time.monotonic() + downtime + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # refused while it is down
                if int(self.call("GET", "/local/server")["restarts"]) >= target:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"the local Fishjam server was not back within {timeout} s")
