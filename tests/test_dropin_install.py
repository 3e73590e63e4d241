"""``fishjam_fast.install()`` and ``python -m fishjam_fast run``: a program written for
the plain SDK, unchanged but for the one line (or not at all), runs on fishjam_fast.

The program (tests/dropin_app.py) runs in a child process against the local Fishjam:
first on the plain SDK alone (the reference), then with install() before its imports,
after them (its names bound to the plain classes, its FishjamClient made before), and
under ``python -m fishjam_fast run`` (a path, and ``-m``). What the server records
(requests, chunks, tracks, authentication attempts) must be the reference's, and what
the program saw (messages matched, the auth error caught) too, but made by fishjam_fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fishjam_fast
from fishjam_fast import _dropin
from fishjam_fast.local import LocalFishjam
from tests.hidden_imports import run_without
from tests.test_dropin import _normalized

EVENT_LOOPS = ("asyncio",)  # the programs run their own loops, in their processes

APP = Path(__file__).with_name("dropin_app.py")
CHUNKS = 20
TIMEOUT = 60.0  # a child process: its imports, its REST calls and its echo


@pytest.fixture(autouse=True)
def _uninstalled() -> Any:
    """No test leaves the plain SDK patched for the ones after it."""
    yield
    fishjam_fast.uninstall()


async def _run_app(fj: LocalFishjam, tmp_path: Path, mode: str, how: str) -> dict[str, Any]:
    """Runs the program; returns what it printed and what the server recorded."""
    shutil.copy(APP, tmp_path / "dropin_app.py")
    command = {
        "python": [sys.executable, "dropin_app.py"],
        "run": [sys.executable, "-m", "fishjam_fast", "run", "dropin_app.py"],
        "run-m": [sys.executable, "-m", "fishjam_fast", "run", "-m", "dropin_app"],
    }[how]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FISHJAM")}
    env |= {
        "FISHJAM_URL": fj.url,
        "FISHJAM_MANAGEMENT_TOKEN": fj.management_token,
        "DROPIN_MODE": mode,
    }
    process = await asyncio.create_subprocess_exec(
        *command,
        str(CHUNKS),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        if not ready.startswith(b"READY "):
            _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
            pytest.fail(f"the program did not start: {ready!r} {err.decode()}")
        _, room_id, agent_id = ready.decode().split()
        speaker = await fj.add_speaking_peer(room_id, realtime=False, chunks=CHUNKS)
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 3, err.decode()  # its own exit status, passed through
    result = json.loads(out.decode().split("RESULT ", 1)[1])
    assert result.pop("peer") == speaker.peer_id
    await fj.wait_disconnected(agent_id, TIMEOUT)
    record = fj.agent(agent_id)
    token = record.auth_attempts[0].token
    # the refused attempt: the same token, after the peer was deleted
    attempts = [(a.token == token, a.accepted, a.reason) for a in record.auth_attempts]
    tracks = [
        (t.type, t.metadata, t.encoding, t.sample_rate, t.channels, t.chunks)
        for t in record.tracks.values()
    ]
    assert len(tracks[0][-1]) == CHUNKS  # every chunk was echoed
    result["server"] = [_normalized(record.requests, token), tracks, attempts]
    return result


@pytest.mark.parametrize(
    ("mode", "how"),
    [
        ("install-first", "python"),
        ("install-after", "python"),
        ("plain", "run"),
        ("plain", "run-m"),
    ],
)
async def test_a_plain_sdk_program_runs_on_fishjam_fast(
    local_fishjam: LocalFishjam, tmp_path: Path, mode: str, how: str
) -> None:
    fj = local_fishjam
    reference = await _run_app(fj, tmp_path, "plain", "python")
    fast = await _run_app(fj, tmp_path, mode, how)
    # the reference is the plain SDK's own objects ...
    assert reference["agent"] == reference["session"] == "fishjam.agent.agent"
    assert reference["message"] == "fishjam.events._protos.fishjam"
    assert reference["auth"][0] == "fishjam.agent.errors"
    # ... the program under install() or run gets fishjam_fast's everywhere
    assert fast.pop("agent") == "fishjam_fast.agent"
    assert fast.pop("session") == "fishjam_fast.session"
    assert fast.pop("message") == fishjam_fast.IncomingTrackData.__module__
    assert fast["auth"][0] == "fishjam_fast.errors"
    # run: uvloop as the loop; and the program's own view of its command line
    assert fast.pop("loop") == ("uvloop" if how.startswith("run") else "asyncio.unix_events")
    assert fast["argv"] == [str(CHUNKS)] and fast["name"] == "__main__"
    for key in ("agent", "session", "message", "loop"):
        del reference[key]
    fast["auth"][0] = reference["auth"][0] = "<module>"
    # every message matched, the auth error caught with the same reason and text, and
    # the server saw the same traffic: requests, chunks, tracks, attempts
    assert fast == reference
    assert reference["echoed"] == CHUNKS and "unmatched" not in reference


def test_install_is_idempotent_and_uninstall_restores_the_plain_sdk() -> None:
    import fishjam
    import fishjam.agent as plain
    import fishjam.agent.agent as plain_agent
    import fishjam.agent.errors as plain_errors

    before = {
        name: getattr(module, name)
        for module in (plain, plain_agent, plain_errors)
        for name in dir(module)
        if not name.startswith("__")
    }
    agent_dict = dict(vars(plain_agent.Agent))
    create_agent = vars(fishjam.FishjamClient)["create_agent"]
    bases = (fishjam_fast.AgentError.__bases__, fishjam_fast.AgentAuthError.__bases__)
    message = fishjam_fast.IncomingTrackData(peer_id="p", data=b"x")
    auth_error = fishjam_fast.AgentAuthError("bad")

    for _ in range(2):  # idempotent
        fishjam_fast.install()
        assert _dropin.installed()
        assert plain.IncomingTrackData is fishjam_fast.IncomingTrackData
        assert plain_agent.AgentSession is fishjam_fast.AgentSession
        assert plain_errors.AgentAuthError is fishjam_fast.AgentAuthError
        assert isinstance(message, before["IncomingTrackData"])
        assert issubclass(fishjam_fast.AgentAuthError, before["AgentAuthError"])
        assert issubclass(fishjam_fast.AgentProtocolError, before["AgentError"])
        made = before["Agent"]("id", "room", "token", "http://127.0.0.1:1")
        assert type(made) is fishjam_fast.Agent and made._socket_url.startswith("ws://")
    with pytest.raises(before["AgentAuthError"]):
        raise auth_error

    for _ in range(2):  # and so is uninstall
        fishjam_fast.uninstall()
        assert not _dropin.installed()
    after = {
        name: getattr(module, name)
        for module in (plain, plain_agent, plain_errors)
        for name in dir(module)
        if not name.startswith("__")
    }
    assert after == before
    assert dict(vars(plain_agent.Agent)) == agent_dict
    assert vars(fishjam.FishjamClient)["create_agent"] is create_agent
    assert (fishjam_fast.AgentError.__bases__, fishjam_fast.AgentAuthError.__bases__) == bases
    assert not isinstance(message, plain.IncomingTrackData)
    assert not issubclass(fishjam_fast.AgentAuthError, plain.AgentError)
    assert type(plain.Agent("id", "room", "token", "http://127.0.0.1:1")) is plain.Agent
    with pytest.raises(fishjam_fast.AgentAuthError):  # not caught as the plain one
        try:
            raise auth_error
        except plain.AgentError:
            pytest.fail("the plain AgentError caught ours after uninstall()")


async def test_the_plain_sdk_works_again_after_uninstall(local_fishjam: LocalFishjam) -> None:
    import fishjam
    import fishjam.agent as plain

    fj = local_fishjam
    client = fishjam.FishjamClient(fj.url, fj.management_token)
    room = await asyncio.to_thread(client.create_room)
    early = await asyncio.to_thread(client.create_agent, room.id)  # before install()
    assert type(early) is plain.Agent
    fishjam_fast.install()
    ours = await asyncio.to_thread(client.create_agent, room.id, None, max_queue=8)
    assert type(ours) is fishjam_fast.Agent and ours._options.max_queue == 8
    async with early.connect() as early_session:  # a plain agent connects as ours
        assert type(early_session) is fishjam_fast.AgentSession
        await fj.wait_connected(early.id, 5.0)
    fishjam_fast.uninstall()
    agent = await asyncio.to_thread(client.create_agent, room.id)
    assert type(agent) is plain.Agent
    async with agent.connect() as session:
        assert type(session) is plain.AgentSession
        await fj.wait_connected(agent.id, 5.0)
        await fj.add_speaking_peer(room.id, realtime=False, chunks=3)
        got = []
        async with asyncio.timeout(5.0):
            async for message in session.receive():
                assert type(message) is plain.IncomingTrackData
                got.append(message)
                if len(got) == 3:
                    break
    with pytest.raises(plain.AgentAuthError) as info:
        async with plain.Agent(agent.id, room.id, "bogus", fj.url).connect():
            pass
    assert type(info.value) is plain.AgentAuthError


def test_install_maps_the_notifier_names_when_fishjam_fast_has_them(tmp_path: Path) -> None:
    # a stand-in events module with two names shows the mapping is generic (the real
    # one: test_install_maps_the_real_notifier)
    (tmp_path / "events_stand_in.py").write_text(
        "class ServerMessageRoomCreated:\n    pass\n\n"
        "class ServerMessageNotInThePlainSdk:\n    pass\n\n"
        "__all__ = ['ServerMessageRoomCreated', 'ServerMessageNotInThePlainSdk']\n"
    )
    code = """
import sys, events_stand_in, fishjam_fast
from fishjam.events import ServerMessageRoomCreated as Plain
import fishjam.events
sys.modules["fishjam_fast.events"] = events_stand_in
def notifier(*args): pass
fishjam_fast.FishjamNotifier = notifier
fishjam_fast.install()
ours = events_stand_in.ServerMessageRoomCreated
assert fishjam.events.ServerMessageRoomCreated is ours
assert isinstance(ours(), Plain)  # a name bound before install()
assert not hasattr(fishjam.events, "ServerMessageNotInThePlainSdk")
import fishjam
assert fishjam.FishjamNotifier is notifier
assert fishjam.decode_server_notifications is fishjam_fast.decode_server_notifications
fishjam_fast.uninstall()
assert fishjam.decode_server_notifications.__module__.startswith("fishjam.")
assert fishjam.events.ServerMessageRoomCreated is Plain and not isinstance(ours(), Plain)
assert fishjam.FishjamNotifier.__module__.startswith("fishjam.")
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_install_maps_the_real_notifier() -> None:
    code = """
import fishjam, fishjam.events, fishjam_fast
from fishjam_fast import events
fishjam_fast.install()
assert fishjam.FishjamNotifier is fishjam_fast.FishjamNotifier
assert fishjam.events.ServerMessagePeerAdded is events.ServerMessagePeerAdded
assert fishjam.events.ServerMessagePeerType is events.ServerMessagePeerType
assert fishjam.verify_webhook_signature is fishjam_fast.verify_webhook_signature
body = bytes.fromhex("a2010a0a0472")  # a truncated PeerAdded: refused
try:
    fishjam.decode_server_notifications(body)
except fishjam_fast.AgentProtocolError:  # ours: a ValueError naming the offset
    pass
else:
    raise SystemExit("a truncated body was accepted")
fishjam_fast.uninstall()
assert fishjam.FishjamNotifier.__module__.startswith("fishjam.")
print("ok")
"""
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fishjam_fast", "run", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_passes_the_command_line_and_the_exit_status(tmp_path: Path) -> None:
    program = (
        "import sys, asyncio, fishjam_fast._dropin as d\n"
        "print(sys.argv, sys.path[0], __name__, d.installed(),\n"
        "      type(asyncio.new_event_loop()).__module__)\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "prog.py").write_text(program)
    (tmp_path / "prog_module.py").write_text(program)
    result = _run(tmp_path, "sub/prog.py", "7", "-h", "--flag", "--")
    assert result.returncode == 7, result.stderr
    assert result.stdout.split() == [
        "['sub/prog.py',", "'7',", "'-h',", "'--flag',", "'--']",
        str(tmp_path / "sub"), "__main__", "True", "uvloop",
    ]  # fmt: skip
    result = _run(tmp_path, "-m", "prog_module", "0", "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        f"['{tmp_path / 'prog_module.py'}',", "'0',", "'x']",
        str(tmp_path), "__main__", "True", "uvloop",
    ]  # fmt: skip
    # an uncaught exception: its traceback and status 1, as under python
    (tmp_path / "fails.py").write_text("raise LookupError('from the program')\n")
    result = _run(tmp_path, "fails.py")
    assert result.returncode == 1 and "LookupError: from the program" in result.stderr


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["-h"], 0, "usage: python -m fishjam_fast run app.py [args ...]"),
        ([], 2, "error: no program given"),
        (["-m"], 2, "error: -m needs a module name"),
        (["--what"], 2, "error: unknown option --what"),
        (["missing.py"], 2, "cannot open 'missing.py': no such file"),
        (["-m", "no_such_module_here"], 1, "no module named 'no_such_module_here'"),
    ],
)
def test_run_command_line_mistakes(tmp_path: Path, args: list[str], status: int, says: str) -> None:
    result = _run(tmp_path, *args)
    assert result.returncode == status, result
    assert says in (result.stdout if status == 0 else result.stderr), result
    assert "Traceback" not in result.stderr


def test_run_is_listed_in_the_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fishjam_fast", "--help"], capture_output=True, text=True
    )
    assert "run a plain-SDK program unchanged" in result.stdout, result


def test_without_the_plain_sdk_install_and_run_say_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('the program ran')\n")
    result = run_without(("fishjam",), "fishjam_fast", "run", "app.py", cwd=tmp_path)
    assert result.returncode == 2, result
    assert "pip install 'fishjam-fast[sdk]'" in result.stderr, result
    assert "the program ran" not in result.stdout and "Traceback" not in result.stderr
    code = "import fishjam_fast\ntry:\n    fishjam_fast.install()\nexcept ImportError as e:\n"
    code += "    print(e, fishjam_fast._dropin.installed())\n"
    (tmp_path / "install.py").write_text(code)
    result = run_without(("fishjam",), "install", cwd=tmp_path)
    assert "pip install 'fishjam-fast[sdk]'" in result.stdout and "False" in result.stdout
