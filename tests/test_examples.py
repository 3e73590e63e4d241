"""Every program in examples/ runs as a user runs it: a real subprocess, against the
local Fishjam it starts (and the echo bot against a Fishjam given by FISHJAM_ID, as a
user's real one would be), ending by itself; what it printed is checked against what
the server recorded."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = pytest.mark.slow  # a few seconds of real-time audio each


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FISHJAM_")}
    env.update(extra)
    return env


def _run(name: str, *args: str) -> str:
    """Runs an example from / (the source tree is not on its path: the installed
    package is what it imports) against its own local Fishjam; returns its output."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env=_environment(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("local Fishjam at http://127.0.0.1:"), result.stdout
    return result.stdout


def _number(pattern: str, out: str) -> int:
    match = re.search(pattern, out, re.MULTILINE)
    assert match, f"no {pattern!r} in:\n{out}"
    return int(match.group(1))


def test_every_example_has_a_test_and_a_docstring_saying_how_to_run_it() -> None:
    tested = {
        "echo_bot.py",
        "one_line.py",
        "voice_bot.py",
        "fleet.py",
        "greeter.py",
        "agent_server.py",
        "pipecat_bot.py",
    }
    programs = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert programs == tested
    for name in programs:
        source = (EXAMPLES / name).read_text()
        assert source.startswith('"""'), name
        assert f"python examples/{name} --seconds" in source, name


def test_greeter() -> None:
    out = _run("greeter.py", "--seconds", "4")
    hello = re.findall(r"^hello, (\w+)!$", out, re.MULTILINE)
    assert len(hello) == 1, out  # the simulated person, not the agent
    person = hello[0]
    assert f"{person} is speaking" in out and f"goodbye, {person}" in out, out
    assert out.index("hello") < out.index("is speaking") < out.index("goodbye"), out
    # the greeting (2 x 150 ms) reached the server: 15 chunks of 20 ms
    assert _number(r"^the local Fishjam recorded (\d+) chunks", out) == 15, out


def test_echo_bot() -> None:
    out = _run("echo_bot.py", "--seconds", "3")
    echoed = _number(r"^echoed (\d+) chunks", out)
    recorded = _number(r"^the local Fishjam recorded (\d+) chunks", out)
    assert echoed > 75, out  # 150 chunks due in 3 s (20 ms each): most of them
    # the session closed before the count was read: every echo reached the server (the
    # one in flight when the time was up may or may not have been written)
    assert abs(recorded - echoed) <= 1, out


async def test_echo_bot_on_a_given_fishjam(local_fishjam: Any) -> None:
    """FISHJAM_ID/FISHJAM_MANAGEMENT_TOKEN: the example makes its room there, says so,
    echoes whoever speaks in it, and deletes the room at the end."""
    fj = local_fishjam
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "echo_bot.py"),
        "--seconds",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd="/",
        env=_environment(FISHJAM_ID=fj.url, FISHJAM_MANAGEMENT_TOKEN=fj.management_token),
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        match = re.fullmatch(r"room (\S+): join it and speak\n", line)
        assert match, line
        room_id = match.group(1)
        await fj.add_speaking_peer(room_id, loop=True)  # someone joins and speaks
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    out = stdout.decode()
    assert process.returncode == 0, out + stderr.decode()
    assert "local Fishjam" not in out  # no local server of its own
    echoed = _number(r"^echoed (\d+) chunks", out)
    [agent_peer] = {c.peer_id for c in fj.connections}
    assert agent_peer is not None
    recorded = sum(t.chunk_count for t in fj.agent(agent_peer).tracks.values())
    assert echoed > 75 and abs(recorded - echoed) <= 1, (echoed, recorded, out)
    assert room_id not in fj.rooms  # the example cleaned up after itself


def test_one_line_makes_a_plain_sdk_program_fast() -> None:
    pytest.importorskip("fishjam", reason="the plain SDK (the sdk extra)")
    out = _run("one_line.py", "--seconds", "3")
    # the plain SDK's FishjamClient handed out fishjam_fast's agent
    assert re.search(r"^agent: fishjam_fast\.", out, re.MULTILINE), out
    echoed = _number(r"^echoed (\d+) chunks", out)
    recorded = _number(r"^the local Fishjam recorded (\d+) chunks", out)
    assert echoed > 75 and abs(recorded - echoed) <= 1, out


def test_voice_bot_answers_turns_and_stops_when_interrupted() -> None:
    # the simulated person: 0.8 s of speech, 0.6 s pause, 0.8 s over the bot's answer,
    # 2.4 s pause (4.6 s); in 6 s, turns end at about 1.1, 2.5 and 5.7 s
    out = _run("voice_bot.py", "--seconds", "6")
    assert re.search(r"^turn 1: heard <0\.\d s of speech>$", out, re.MULTILINE), out
    assert "barge-in: the person spoke over answer 1; dropped 0." in out, out
    assert "  answer 2 heard in full" in out, out
    turns = _number(r"^turns: (\d+);", out)
    heard = _number(r"answers heard in full: (\d+);", out)
    barge_ins = _number(r"barge-ins: (\d+)$", out)
    assert turns >= 2 and heard >= 1 and barge_ins >= 1, out
    # every barge-in sent one interrupt, and nothing else did
    assert _number(r"^the local Fishjam recorded (\d+) interrupts", out) == barge_ins, out


def test_fleet() -> None:
    out = _run("fleet.py", "--agents", "5", "--seconds", "3")
    assert "5 agents in 5 rooms, one event loop" in out, out
    assert "an agent failed" not in out, out
    echoed = _number(r"^5 of 5 agents ran: (\d+) chunks echoed", out)
    lowest = _number(r"\(per agent (\d+) to \d+\)", out)
    assert lowest > 75, out  # every agent echoed most of its 150 chunks
    # send_chunk_nowait writes before it returns, and every session closed before the
    # count: the server has exactly what the agents counted
    assert _number(r"^the local Fishjam recorded (\d+) chunks", out) == echoed, out


def test_agent_server() -> None:
    pytest.importorskip("prometheus_client", reason="the agent server (the server extra)")
    out = _run("agent_server.py", "--seconds", "3", "--rooms", "4")
    # one job per room with a person in it, spread over the workers
    jobs = _number(r"^(\d+) jobs in 4 rooms", out)
    assert jobs == 4, out
    per_worker = re.search(r"jobs per worker: \[([\d, ]+)\]", out)
    assert per_worker, out
    counts = [int(n) for n in per_worker.group(1).split(",")]
    assert sum(counts) == 4 and max(counts) - min(counts) <= 1, out
    # the people left: every job ended; every agent heard its room and echoed it
    assert _number(r"^after the people left: (\d+) jobs running", out) == 0, out
    assert _number(r"chunks echoed by (\d+) agents", out) == 4, out
    assert _number(r"^the local Fishjam recorded (\d+) chunks", out) > 4 * 50, out


def _pipecat_with_a_voice() -> None:
    """The pipecat example needs pipecat (its extra; CI's pipecat stage) and a voice
    Silero hears as one (espeak-ng: the simulated person's speech)."""
    pytest.importorskip("pipecat", reason="pipecat is not installed (the pipecat extra)")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: Silero hears no voice in the stand-in")


def test_pipecat_bot_hears_turns_and_is_interrupted() -> None:
    _pipecat_with_a_voice()
    out = _run("pipecat_bot.py", "--seconds", "8")
    assert re.search(r"^\w{32} joined$", out, re.MULTILINE), out
    assert re.search(r"^turn 1: heard <\d\.\d s of speech>$", out, re.MULTILINE), out
    turns = _number(r"^turns: (\d+);", out)
    barge_ins = _number(r"barge-ins: (\d+)$", out)
    assert turns >= 2 and barge_ins >= 1, out
    # every barge-in sent one interrupt, and Fishjam dropped what it held of the answer
    assert _number(r"recorded (\d+) interrupts", out) == barge_ins, out
    dropped = re.search(r"dropped (\d+\.\d+) s$", out, re.MULTILINE)
    assert dropped and float(dropped.group(1)) > 0, out


def test_pipecat_bot_as_the_agent_server_s_job() -> None:
    _pipecat_with_a_voice()
    pytest.importorskip("prometheus_client", reason="the agent server (the server extra)")
    out = _run("pipecat_bot.py", "--seconds", "6", "--rooms", "2")
    assert _number(r"^(\d+) pipelines in 2 rooms", out) == 2, out
    assert _number(r"^after the people left: (\d+) jobs running", out) == 0, out
    # both rooms' pipelines heard their person and answered on their agent's track
    assert _number(r"answered by (\d+) agents", out) == 2, out
    assert len(re.findall(r"^turn 1: heard", out, re.MULTILINE)) == 2, out
