"""Ratios of benchmarks measured in the same run, and the floors they must stay above.

Shared by ``conftest.py`` (the CI guard, printed after every benchmark run) and
``report.py`` (benchmarks/results/).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLOORS_FILE = Path(__file__).with_name("floors.toml")


@dataclass(frozen=True)
class Floor:
    """One guarded ratio (see floors.toml)."""

    name: str
    group: str
    subject: str
    baseline: str
    min: float
    metric: str | None = None


@dataclass(frozen=True)
class Verdict:
    """A floor checked against a run."""

    floor: Floor
    ratio: float | None  # None: the run lacks one of the two benchmarks

    @property
    def ok(self) -> bool:
        return self.ratio is not None and self.ratio >= self.floor.min


def load_floors(path: Path = FLOORS_FILE) -> list[Floor]:
    with path.open("rb") as file:
        return [Floor(**entry) for entry in tomllib.load(file)["floor"]]


def figure(bench: dict[str, Any], metric: str | None) -> float:
    """A benchmark's figure (lower is better): its min time, or an extra_info metric."""
    if metric is None:
        return float(bench["stats"]["min"])
    return float(bench["extra_info"][metric])


def index(benchmarks: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(group, name) -> benchmark`` for pytest-benchmark's JSON-like dicts."""
    return {(b.get("group") or "", b["name"]): b for b in benchmarks}


def check(floors: list[Floor], benchmarks: list[dict[str, Any]]) -> list[Verdict]:
    by_key = index(benchmarks)
    verdicts = []
    for floor in floors:
        subject = by_key.get((floor.group, floor.subject))
        baseline = by_key.get((floor.group, floor.baseline))
        ratio = None
        if subject is not None and baseline is not None:
            ratio = figure(baseline, floor.metric) / figure(subject, floor.metric)
        verdicts.append(Verdict(floor, ratio))
    return verdicts


def node_ids(floors: list[Floor], benchmarks: list[dict[str, Any]]) -> list[str]:
    """The pytest node ids (``fullname``) of the floors' subjects and baselines, in order.

    Several benchmarks of a parametrized test share one node id only when they are the
    same test; each id appears once.
    """
    by_key = index(benchmarks)
    ids: dict[str, None] = {}
    for floor in floors:
        for name in (floor.subject, floor.baseline):
            bench = by_key.get((floor.group, name))
            if bench is not None and bench.get("fullname"):
                ids[bench["fullname"]] = None
    return list(ids)


def render(verdicts: list[Verdict]) -> list[str]:
    width = max(len(v.floor.name) for v in verdicts)
    lines = []
    for v in verdicts:
        if v.ratio is None:
            state, shown = "NOT RUN", "-"
        else:
            state, shown = ("ok" if v.ok else "BELOW FLOOR"), f"{v.ratio:.2f}x"
        lines.append(f"  {v.floor.name:<{width}}  {shown:>10}  floor {v.floor.min:g}x  {state}")
    return lines
