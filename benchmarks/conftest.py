"""Records versions with the results and prints each group's min-time ratios."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    session = getattr(terminalreporter.config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", []) if b]
    if not benchmarks:
        return
    write = terminalreporter.write_line
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
