"""The README's main command: the demo measures a fleet of both implementations, sums it
up and draws the chart."""

from __future__ import annotations

import math
import re
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fishjam_fast.fleet import FleetResult, percentile, window_round_trips

AGENTS = 4


def _demo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fishjam_fast", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )


def _row(out: str, label: str) -> list[str]:
    """A summary row's cells (two or more spaces apart), without its label."""
    line = next((x for x in out.splitlines() if x.startswith(label)), None)
    assert line is not None, f"no {label!r} row in:\n{out}"
    return re.split(r"\s{2,}", line[len(label) :].strip())


@pytest.mark.slow  # two fleets in real time (10 s)
def test_demo_sums_up_the_fleet_and_draws_the_chart(tmp_path: Path) -> None:
    chart = tmp_path / "fleet.png"
    result = _demo("--seconds", "2", "--agents", str(AGENTS), "--chart", str(chart), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^\s+fishjam_fast\s+plain SDK\s+ratio$", out, re.MULTILINE), out
    assert _row(out, "agents connected")[:2] == [f"{AGENTS} of {AGENTS}"] * 2, out
    for cell in _row(out, "chunks delivered of due")[:2]:
        delivered, due = (int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", cell)[:2])
        # 4 agents, a 2 s window of 20 ms chunks: 400 due; most must have come
        assert abs(due - 400) <= 4 and delivered > 200, out
    for label in ("round trip p50 (ms)", "round trip p99 (ms)", "CPU per agent-second (ms)"):
        assert all(float(v) > 0 for v in _row(out, label)[:2]), out
    assert all(v in ("yes", "NO") for v in _row(out, "kept real time")), out
    assert _row(out, "kept real time")[0] == "yes", out  # 4 agents are easy for fishjam_fast
    assert all(int(v.replace(",", "")) > 0 for v in _row(out, "agents per core at 50% CPU")[:2])
    assert re.search(r"\d+\.\dx less", _row(out, "CPU per agent-second (ms)")[-1]), out
    assert _row(out, "errors")[:2] == ["0", "0"], out
    # the live progress line (one a second when stderr is not a terminal)
    assert re.search(r"fishjam_fast\s+\d+\.\d/2 s\s+chunks in\s+\d+", result.stderr)
    png = chart.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1000, 420) and len(png) > 20_000


def test_demo_refuses_bad_arguments() -> None:
    result = _demo("--agents", "0")
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


def test_fleet_figures() -> None:
    result = FleetResult("x", "uvloop", agents=10, connected=10, seconds=2.0, cpu_seconds=0.1,
                         chunks_received=1000, chunks_due=1000, errors=0,
                         round_trip_p50_ms=1.0, round_trip_p99_ms=99.0, lateness_p50_ms=0.0,
                         lateness_p99_ms=0.0, rss_per_agent_kib=0.0)  # fmt: skip
    assert result.cpu_per_agent_second == 0.1 / (1000 * 0.020)
    assert result.agents_per_core_at_half == 0.5 / result.cpu_per_agent_second
    assert result.kept_pace and result.kept_real_time
    slow = replace(result, chunks_received=900, round_trip_p99_ms=101.0)
    assert not slow.kept_pace and not slow.kept_real_time
    late = replace(result, round_trip_p99_ms=101.0)
    assert late.kept_pace and not late.kept_real_time
    assert not replace(result, connected=9).kept_real_time
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and math.isnan(percentile([], 0.5))


def test_window_round_trips_are_the_last_echoes_while_the_server_kept_them_all() -> None:
    samples = [1.0, 2.0, 3.0, 4.0]
    assert window_round_trips(samples, count=4, echoed=2) == [3.0, 4.0]
    assert window_round_trips(samples, count=4, echoed=0) == []
    # beyond its sample size the server keeps a uniform sample of the run: all of it
    assert window_round_trips(samples, count=4000, echoed=2) == samples
