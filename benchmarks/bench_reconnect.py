"""Reconnection: 100 agents, every connection dropped at once (a load balancer reset).

The server runs in a child process (``LocalFishjamProcess``, recording arrivals); the
agents run here, each sending 20 ms chunks in real time on one track. After the drop
the figures come from the server's records (``CLOCK_MONOTONIC``, comparable across
processes on Linux):

- recovery: from the drop (the server's close of the old connection) to the first
  chunk of audio on the new one, p50 / p99 / max;
- audio after accept: from the server accepting the new authentication to that chunk;
- spread of the attempts: when the authentication requests reached the server after
  the drop (first / p50 / last), and the most that arrived within any 10 ms: with
  jitter they spread over the first delay; the same-run baseline without jitter
  shows the thundering herd it avoids.

Figures only (``extra_info`` and the terminal), no floor: they depend on the machine's
load more than on the code.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from fishjam_fast import Agent, OutgoingAudioTrackOptions, ReconnectPolicy
from fishjam_fast.local import LocalFishjamProcess


def _load_app() -> Any:
    """The agent application of the reconnect tests (tests/reconnect_app.py), loaded by
    path: ``tests`` is not importable from benchmarks/ (a site-packages namespace of
    that name shadows it)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "reconnect_app.py"
    spec = importlib.util.spec_from_file_location("reconnect_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.App


App = _load_app()

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
AGENTS = 100
BIN = 0.010  # seconds: the window of the herd figure
POLICIES = {
    "jitter": ReconnectPolicy(),  # the default
    "no-jitter": ReconnectPolicy(jitter=0.0),  # the baseline: every agent at once
}


@dataclass
class ReconnectResult:
    agents: int
    recovery_p50_ms: float
    recovery_p99_ms: float
    recovery_max_ms: float
    audio_after_accept_p50_ms: float
    audio_after_accept_max_ms: float
    attempts: int
    attempts_first_ms: float
    attempts_p50_ms: float
    attempts_last_ms: float
    attempts_max_per_10ms: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(server: LocalFishjamProcess, policy: ReconnectPolicy) -> ReconnectResult:
    specs = [await asyncio.to_thread(server.create_agent) for _ in range(AGENTS)]
    agents = [Agent(s.peer_id, s.room_id, s.token, s.url, reconnect=policy) for s in specs]
    async with AsyncExitStack() as stack:
        apps = [
            await App(agent, options=(OutgoingAudioTrackOptions(),)).start(stack)
            for agent in agents
        ]
        await _until(lambda: all(app.sent > 5 for app in apps))
        await asyncio.to_thread(server.drop_all_agents)
        await _until(lambda: all(app.session.stats.reconnects == 1 for app in apps))
        await _until(lambda: all(app.sent > 5 for app in apps))  # sending again
        await asyncio.sleep(0.2)
        summaries = [await asyncio.to_thread(server.agent, a.id) for a in agents]
        tracks = [
            await asyncio.to_thread(server.track, a.id, app.tracks[0].id)
            for a, app in zip(agents, apps, strict=True)
        ]
        for app in apps:
            await app.stop()
        assert all(app.errors == [] for app in apps)
    recovery, after_accept, attempts = [], [], []
    for summary, track in zip(summaries, tracks, strict=True):
        dropped = summary["connection_log"][0]["closed_at"]
        accepted = [a["at"] for a in summary["auth_attempts"] if a["accepted"]][1]
        first_audio = track["arrivals"][0][0]
        assert track["connection_index"] == 1
        recovery.append(first_audio - dropped)
        after_accept.append(first_audio - accepted)
        attempts += [a["at"] - dropped for a in summary["auth_attempts"][1:]]
    bins: dict[int, int] = {}
    for at in attempts:
        bins[int(at // BIN)] = bins.get(int(at // BIN), 0) + 1
    ms = 1000.0
    return ReconnectResult(
        agents=AGENTS,
        recovery_p50_ms=statistics.median(recovery) * ms,
        recovery_p99_ms=_percentile(recovery, 0.99) * ms,
        recovery_max_ms=max(recovery) * ms,
        audio_after_accept_p50_ms=statistics.median(after_accept) * ms,
        audio_after_accept_max_ms=max(after_accept) * ms,
        attempts=len(attempts),
        attempts_first_ms=min(attempts) * ms,
        attempts_p50_ms=statistics.median(attempts) * ms,
        attempts_last_ms=max(attempts) * ms,
        attempts_max_per_10ms=max(bins.values()),
    )


async def _until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout} s")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_reconnect_after_dropping_every_agent(benchmark: Any, policy: str) -> None:
    benchmark.group = "reconnect-100"
    benchmark.name = f"reconnect[{policy}]"
    results: list[ReconnectResult] = []

    def run_once() -> None:
        import fishjam_fast

        with LocalFishjamProcess(seconds=120, record=True) as server:
            results.append(fishjam_fast.run(_run(server, POLICIES[policy])))

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    result = results[0]
    benchmark.extra_info.update(asdict(result))
    print(f"\n{benchmark.name}: " + ", ".join(f"{k}={v:.1f}" for k, v in asdict(result).items()))
