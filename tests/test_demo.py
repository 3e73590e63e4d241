"""The README's main command: the demo runs end to end and reports real traffic."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_and_sums_up() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fishjam_fast", "demo", "--seconds", "1.5", "--agents", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "fishjam_fast" in out and "plain SDK" in out
    chunks_in = re.search(r"chunks in \(peer -> agent\)\s+([\d,]+)\s+([\d,]+)", out)
    assert chunks_in, out
    # 2 agents, 1.5 s of 20 ms chunks: about 150 each; at least a third must have come
    assert all(int(n.replace(",", "")) > 50 for n in chunks_in.groups()), out
    assert re.search(r"round trip p50 \(ms\)\s+\d+\.\d+", out), out


def test_demo_refuses_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fishjam_fast", "demo", "--agents", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--agents" in result.stderr


def test_remote_mode_needs_a_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fishjam_fast", "demo", "--fishjam-id", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "FISHJAM_MANAGEMENT_TOKEN" in result.stderr
