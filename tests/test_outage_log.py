"""A fleet-wide outage is logged as a few aggregated lines, not one WARNING per agent per
drop, and nothing reaches stderr when the application configured no logging (the
package logger has a NullHandler). Real sessions against the local Fishjam."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from fishjam_fast import ReconnectPolicy, logs
from fishjam_fast.local import LocalFishjam
from tests.reconnect_app import TIMEOUT, agents

FLEET = 60
INTERVAL = 0.25
QUICK = ReconnectPolicy(budget=20.0, first_delay=0.05, max_delay=0.3)
LINE = re.compile(r"^fishjam_fast: in the last [0-9.e+-]+ s (.+); (\d+) reconnecting now$")


def _count(text: str, what: str) -> int:
    """The sum of ``N sessions <what>`` over ``text``."""
    return sum(int(n) for n in re.findall(rf"(\d+) sessions? {what}", text))


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> logs.OutageReport:
    """A fresh report of this test's sessions only, with a short interval."""
    fresh = logs.OutageReport()
    monkeypatch.setattr(logs, "report", fresh)
    monkeypatch.setattr(logs, "REPORT_INTERVAL", INTERVAL)
    return fresh


def _aggregated(caplog: pytest.LogCaptureFixture) -> list[tuple[int, re.Match[str]]]:
    out = []
    for record in caplog.records:
        if record.name == "fishjam_fast" and record.getMessage().startswith("fishjam_fast:"):
            match = LINE.match(record.getMessage())
            assert match is not None, record.getMessage()
            out.append((record.levelno, match))
    return out


async def test_a_fleet_wide_drop_is_a_few_counted_lines(
    local_fishjam: LocalFishjam,
    caplog: pytest.LogCaptureFixture,
    report: logs.OutageReport,
) -> None:
    fj = local_fishjam
    caplog.set_level(logging.DEBUG, logger="fishjam_fast")
    fleet = await agents(fj, FLEET, per_room=20, reconnect=QUICK)
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(agent.connect()) for agent in fleet]
        await fj.wait_for(lambda: fj.sockets.open_count == FLEET, TIMEOUT)
        started = time.monotonic()
        assert fj.drop_all_agents() == FLEET
        await fj.wait_for(lambda: all(s.stats.reconnects == 1 for s in sessions), 4 * TIMEOUT)
        assert all(s.state == "connected" for s in sessions)

        def recovered() -> int:
            return sum(_count(m[1], "recovered") for _, m in _aggregated(caplog))

        await fj.wait_for(lambda: recovered() == FLEET, TIMEOUT)
        elapsed = time.monotonic() - started
    lines = _aggregated(caplog)
    # at most one line per interval, and every drop and recovery counted exactly once
    assert 1 <= len(lines) <= elapsed / INTERVAL + 1
    assert len(lines) < FLEET / 4
    assert sum(_count(m[1], "lost their connection") for _, m in lines) == FLEET
    assert not any("gave up" in m[1] for _, m in lines)
    causes = "".join(m[1] for _, m in lines)
    assert sum(int(n) for n in re.findall(r"code 1006: (\d+)", causes)) == FLEET
    assert int(lines[-1][1][2]) == 0  # nobody reconnecting any more
    # WARNING for the interval where sessions dropped, INFO where they only recovered
    for level, match in lines:
        assert level == (logging.WARNING if "lost" in match[1] else logging.INFO)
    # the per-agent lines are all there, at DEBUG
    per_agent = [r for r in caplog.records if r.getMessage().startswith("agent ")]
    assert {r.levelno for r in per_agent} == {logging.DEBUG}
    dropped = [r for r in per_agent if "; reconnecting (budget" in r.getMessage()]
    back = [r for r in per_agent if "reconnected after" in r.getMessage()]
    assert len(dropped) == len(back) == FLEET


async def test_report_memory_is_counters_with_bounded_causes(report: logs.OutageReport) -> None:
    for code in range(1000, 1100):
        report.lost(f"code {code}")
    assert len(report._causes) == logs.MAX_CAUSES + 1  # the first ones and "other"
    assert report._causes["other"] == 100 - logs.MAX_CAUSES


SCRIPT = """
import asyncio, contextlib, logging, sys
from fishjam_fast import Agent, ReconnectPolicy, logs
from fishjam_fast.local import LocalFishjam

if sys.argv[1] == "configured":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
logs.REPORT_INTERVAL = 0.2

async def main():
    async with LocalFishjam(0) as fj, contextlib.AsyncExitStack() as stack:
        room = await fj.create_room()
        policy = ReconnectPolicy(budget=0.6, first_delay=0.05, max_delay=0.1)
        fleet = []
        for _ in range(8):
            peer = await fj.add_agent(room)
            fleet.append(Agent(peer.id, room, peer.token, fj.url, reconnect=policy))
        sessions = [await stack.enter_async_context(agent.connect()) for agent in fleet]
        fj.drop_all_agents()  # they come back
        await fj.wait_for(lambda: all(s.stats.reconnects == 1 for s in sessions), 10)
        await fj.restart(downtime=2.0)  # they give up: the budget is shorter
        await fj.wait_for(lambda: all(s.state == "closed" for s in sessions), 10)
        await asyncio.sleep(0.5)  # the last line is due

asyncio.run(main())
"""


@pytest.mark.parametrize("logging_configured", [False, True])
def test_stderr_stays_empty_unless_logging_is_configured(
    tmp_path: Path, logging_configured: bool
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "configured" if logging_configured else "bare"],
        cwd=tmp_path,  # the installed package, not the source tree
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    if not logging_configured:
        # no last-resort handler output: the package logger has a NullHandler
        assert result.stderr == ""
        return
    ours = [line for line in result.stderr.splitlines() if line.split(" ")[1] == "fishjam_fast"]
    lines = [line for line in ours if "fishjam_fast: in the last" in line]
    assert 2 <= len(lines) <= 12, result.stderr  # 16 events of 8 agents: a few lines
    text = "\n".join(lines)
    lost, recovered = _count(text, "lost their connection"), _count(text, "recovered")
    assert (lost, recovered, _count(text, "gave up reconnecting")) == (16, 8, 8), text
    assert "budget spent: " in text
    assert not [line for line in ours if " agent " in line]  # those are at DEBUG
