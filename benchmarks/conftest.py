"""Records versions with the results and prints each group's min-time ratios."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from benchmarks import ratios

PACKAGES = ["fishjam-fast", "fishjam-server-sdk", "betterproto", "protobuf", "Cython", "numpy"]


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return versions


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    machine_info["fishjam_fast_versions"] = _versions()


GUARD_MODE = os.environ.get("FISHJAM_FAST_BENCH_GUARD", "")
GUARD = GUARD_MODE in ("1", "remeasure")
"""Set by .ci/run: every floor must be measured and met, or the run fails.

``remeasure`` is the guard's second look (see .ci/run): only the benchmarks of the floors
that fell below were run again, so a floor this run did not measure is not a failure;
one it measured must hold again.
"""

REMEASURE_FILE = os.environ.get("FISHJAM_FAST_BENCH_REMEASURE_FILE")
"""Where the guard lists the benchmarks (pytest node ids) of every floor below its min.

A floor is a ratio of two timings on a shared machine: one neighbour's burst can push a
single measurement under it. .ci/run measures those benchmarks once more; a real
regression falls below twice.
"""


def _as_dict(bench: Any) -> dict[str, Any]:
    return {
        "group": bench.group,
        "name": bench.name,
        "stats": {"min": bench.stats.min},
        "extra_info": dict(bench.extra_info),
        "fullname": bench.fullname,
    }


def _benchmarks(config: Any) -> list[dict[str, Any]]:
    session = getattr(config, "_benchmarksession", None)
    return [_as_dict(b) for b in getattr(session, "benchmarks", []) if b]


def _judged(verdicts: list[ratios.Verdict]) -> list[ratios.Verdict]:
    """The verdicts the guard holds this run to (remeasure: only the floors measured)."""
    if GUARD_MODE == "remeasure":
        return [v for v in verdicts if v.ratio is not None]
    return verdicts


def _verdicts(benchmarks: list[dict[str, Any]]) -> list[ratios.Verdict]:
    return _judged(ratios.check(ratios.load_floors(), benchmarks)) if benchmarks else []


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if not GUARD:
        return
    benchmarks = _benchmarks(session.config)
    verdicts = _verdicts(benchmarks)
    if not verdicts or not all(v.ok for v in verdicts):
        session.exitstatus = 1
    if REMEASURE_FILE:
        # only timings get a second look: a failed test or a floor this run did not
        # measure fails the guard as it is (an empty list: nothing to measure again)
        below = [v.floor for v in verdicts if not v.ok]
        second_look = exitstatus == 0 and all(v.ratio is not None for v in verdicts)
        node_ids = ratios.node_ids(below, benchmarks) if second_look else []
        with open(REMEASURE_FILE, "w", encoding="utf-8") as file:
            file.writelines(f"{node_id}\n" for node_id in node_ids)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    write = terminalreporter.write_line
    verdicts = _verdicts(_benchmarks(terminalreporter.config))
    if verdicts:
        write("")
        write("ratio floors (benchmarks/floors.toml): baseline / fishjam_fast, same run")
        for line in ratios.render(verdicts):
            write(line)
        if GUARD and not all(v.ok for v in verdicts):
            write("BENCHMARK GUARD FAILED: a ratio is below its floor or was not measured")
    session = getattr(terminalreporter.config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", []) if b]
    if not benchmarks:
        return
    write("")
    write(f"min-time ratios ({platform.processor() or platform.machine()}, {_versions()})")
    groups: dict[str, list[Any]] = {}
    for bench in benchmarks:
        groups.setdefault(bench.group or "", []).append(bench)
    for group, members in groups.items():
        fastest = min(b.stats.min for b in members)
        write(f"  {group}")
        for bench in sorted(members, key=lambda b: b.stats.min):
            write(
                f"    {bench.name:<40} min {bench.stats.min * 1e9:>10.0f} ns"
                f"   {bench.stats.min / fastest:>8.1f}x the fastest"
            )
