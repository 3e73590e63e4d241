"""Fan-out: N real-time echo agents in one process, fishjam_fast beside the plain SDK.

Each run's figures (CPU per agent-second, agents per core at 50% CPU, lateness p99,
memory per agent, whether the server kept pace) go to the benchmark's ``extra_info``;
the timed figure is the client CPU of the steady window. The measurement is
:mod:`fishjam_fast.fleet`, the same the demo shows.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from fishjam_fast.fleet import FleetResult, measure_local
from fishjam_fast.local import LocalFishjamProcess

QUICK = os.environ.get("FISHJAM_FAST_BENCH_QUICK") == "1"
SECONDS = 2.0 if QUICK else 6.0
# (implementation, agents): the plain SDK saturates a core near 50 agents; both modes
# measure both at 50 (the CI floor's pair), the full one also fishjam_fast further up
CASES = (
    [("fishjam_fast", 50), ("plain_sdk", 50)]
    if QUICK
    else [
        ("fishjam_fast", 50),
        ("plain_sdk", 50),
        ("fishjam_fast", 200),
        ("fishjam_fast", 400),
        ("fishjam_fast", 1000),
    ]
)


def _module(name: str) -> Any:
    if name == "fishjam_fast":
        import fishjam_fast

        return fishjam_fast
    import fishjam.agent

    return fishjam.agent


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize(("implementation", "agents"), CASES)
def test_fanout(benchmark: Any, implementation: str, agents: int) -> None:
    benchmark.group = f"fanout-{agents}"
    benchmark.name = f"fanout[{implementation}]"
    results: list[FleetResult] = []

    def run_once() -> None:
        with LocalFishjamProcess(seconds=180 + 2 * SECONDS + agents / 10) as server:
            results.append(
                measure_local(server, _module(implementation), implementation, agents, SECONDS)
            )

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    result = results[0]
    benchmark.extra_info.update(result.as_dict())
    assert result.errors == 0, f"{result.errors} agents failed"
    assert result.chunks_received > 0
