"""The benchmark guard's arithmetic: floors.toml parses, and a regression trips it."""

from __future__ import annotations

from typing import Any

from benchmarks import ratios


def bench(group: str, name: str, seconds: float, **extra: float) -> dict[str, Any]:
    return {"group": group, "name": name, "stats": {"min": seconds}, "extra_info": extra}


def test_floors_file_names_real_pairs() -> None:
    floors = ratios.load_floors()
    assert len(floors) >= 10
    assert all(f.min > 0 and f.subject != f.baseline for f in floors)


def test_ratio_is_baseline_over_subject() -> None:
    floor = ratios.Floor("x", "g", "fast", "slow", min=10.0)
    ok, below = ratios.check(
        [floor, ratios.Floor("y", "g", "fast", "slow", min=30.0)],
        [bench("g", "fast", 0.5), bench("g", "slow", 10.0)],
    )
    assert ok.ratio == below.ratio == 20.0
    assert ok.ok and not below.ok


def test_missing_benchmark_fails_the_floor() -> None:
    (verdict,) = ratios.check(
        [ratios.Floor("x", "g", "fast", "slow", 1.0)], [bench("g", "fast", 1.0)]
    )
    assert verdict.ratio is None and not verdict.ok
    assert "NOT RUN" in ratios.render([verdict])[0]


def test_metric_floors_read_extra_info() -> None:
    floor = ratios.Floor("x", "g", "a", "b", 3.0, metric="cpu_per_agent_second")
    (verdict,) = ratios.check(
        [floor],
        [
            bench("g", "a", 9.0, cpu_per_agent_second=0.002),
            bench("g", "b", 1.0, cpu_per_agent_second=0.004),
        ],
    )
    assert verdict.ratio == 2.0 and not verdict.ok


def test_node_ids_name_each_floor_s_two_benchmarks_once() -> None:
    benchmarks = [
        {**bench("g", "fast", 1.0), "fullname": "benchmarks/b.py::test_fast"},
        {**bench("g", "slow", 9.0), "fullname": "benchmarks/b.py::test_pair[slow]"},
        {**bench("h", "fast", 1.0), "fullname": "benchmarks/c.py::test_other"},
        {**bench("h", "slow", 2.0), "fullname": "benchmarks/b.py::test_pair[slow]"},
    ]
    floors = [
        ratios.Floor("x", "g", "fast", "slow", 1.0),
        ratios.Floor("y", "h", "fast", "slow", 1.0),
    ]
    assert ratios.node_ids(floors, benchmarks) == [
        "benchmarks/b.py::test_fast",
        "benchmarks/b.py::test_pair[slow]",
        "benchmarks/c.py::test_other",
    ]
    missing = ratios.Floor("z", "g", "fast", "absent", 1.0)
    assert ratios.node_ids([missing], benchmarks) == ["benchmarks/b.py::test_fast"]
