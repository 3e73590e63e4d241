"""Runs the whole benchmark suite and writes benchmarks/results/.

    python benchmarks/report.py            # full mode (a few minutes)
    python benchmarks/report.py --quick    # CI-sized run
    python benchmarks/report.py --only bench_realtime.py   # these files alone, merged
                                                           # into the stored results

Writes ``results/results.md`` (every guarded ratio, the per-benchmark figures beside
their baselines, the fan-out table, machine / Python / dependency versions and the
date), ``results/chart.png`` (plain SDK vs fishjam_fast per benchmark, log scale; needs
matplotlib, the ``bench`` extra) and ``results/benchmarks.json`` (pytest-benchmark's
raw output). Every figure comes from this one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ratios  # run as a script: benchmarks/ is sys.path[0] (pytest imports benchmarks.ratios)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# (label, group, fishjam_fast benchmark, plain SDK benchmark, unit divisor, unit)
VERSUS_PLAIN = [
    ("encode 640 B chunk", "encode track_data 640 B", "test_encode_native_encoder",
     "test_encode_betterproto_sdk", 1, "µs"),
    ("decode 640 B chunk", "decode track_data 640 B", "test_decode_native",
     "test_decode_betterproto_sdk", 1, "µs"),
    ("frame 10 s of float32 audio", "pcm: float32 10 s 24 kHz mono -> 20 ms track_data frames",
     "test_native_frame_pcm", "test_plain_sdk_betterproto_per_chunk", 1, "µs"),
    ("send one chunk, end to end (uvloop)", "session-send-uvloop", "send[fishjam_fast]",
     "send[plain_sdk]", "messages", "µs CPU"),
    ("receive one chunk, end to end (uvloop)", "session-receive-uvloop", "receive[fishjam_fast]",
     "receive[plain_sdk]", "messages", "µs CPU"),
    ("send one chunk, end to end (asyncio)", "session-send-asyncio", "send[fishjam_fast]",
     "send[plain_sdk]", "messages", "µs CPU"),
    ("receive one chunk, end to end (asyncio)", "session-receive-asyncio", "receive[fishjam_fast]",
     "receive[plain_sdk]", "messages", "µs CPU"),
]  # fmt: skip


def run_suite(quick: bool, json_path: Path, *targets: Path) -> int:
    """pytest-benchmark over ``targets`` (default: the whole suite)."""
    env = dict(os.environ, FISHJAM_FAST_BENCH_QUICK="1" if quick else "0")
    paths = [str(t) for t in targets or (HERE,)]
    command = [sys.executable, "-m", "pytest", *paths, "--benchmark-only", "-q",
               "-p", "no:cacheprovider", f"--benchmark-json={json_path}"]  # fmt: skip
    return subprocess.call(command, env=env, cwd="/")


def merge_fresh(stored: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with every group measured in ``fresh`` replaced by ``fresh``'s runs.

    Ratios are read within a group, so each group's figures still come from one run;
    the real-time table states its own date and load (each of its runs records them).
    """
    groups = {b.get("group") for b in fresh["benchmarks"]}
    kept = [b for b in stored["benchmarks"] if b.get("group") not in groups]
    return {**stored, "benchmarks": kept + fresh["benchmarks"]}


def per_op(bench: dict[str, Any], divisor: int | str) -> float:
    """Microseconds per operation: min time over the round's operations."""
    count = bench["extra_info"].get(divisor, 1) if isinstance(divisor, str) else divisor
    return 1e6 * float(bench["stats"]["min"]) / count


def versions(machine: dict[str, Any]) -> str:
    found = machine.get("fishjam_fast_versions", {})
    return ", ".join(f"{k} {v}" for k, v in found.items())


def write_markdown(data: dict[str, Any], path: Path) -> list[tuple[str, float, float]]:
    benchmarks = data["benchmarks"]
    by_key = ratios.index(benchmarks)
    machine = data["machine_info"]
    cpu = machine.get("cpu", {})
    when = data["datetime"][:19].replace("T", " ")
    python = f"{machine.get('python_implementation')} {machine.get('python_version')}"
    lines = [
        "# fishjam_fast benchmark results",
        "",
        f"Run {when} UTC on {cpu.get('brand_raw', machine.get('processor', '?'))} "
        f"({cpu.get('count', '?')} cores), {python}; {versions(machine)}.",
        "",
        "Every ratio compares figures measured in the same run (minimum of the rounds).",
        "End-to-end figures are client CPU time (`time.process_time`) per message, with",
        "the local Fishjam in another process.",
        "",
        "## fishjam_fast vs the plain SDK",
        "",
        "| operation | fishjam_fast | plain SDK | ratio |",
        "|---|---:|---:|---:|",
    ]
    chart: list[tuple[str, float, float]] = []
    for label, group, fast, plain, divisor, unit in VERSUS_PLAIN:
        a, b = by_key.get((group, fast)), by_key.get((group, plain))
        if a is None or b is None:
            continue
        fa, fb = per_op(a, divisor), per_op(b, divisor)
        chart.append((label, fa, fb))
        lines.append(f"| {label} | {fa:,.2f} {unit} | {fb:,.1f} {unit} | {fb / fa:,.0f}x |")
    lines += ["", "## Guarded ratios (benchmarks/floors.toml)", "",
              "| ratio | measured | CI floor |", "|---|---:|---:|"]  # fmt: skip
    for verdict in ratios.check(ratios.load_floors(), benchmarks):
        shown = "-" if verdict.ratio is None else f"{verdict.ratio:,.2f}x"
        lines.append(f"| {verdict.floor.name} | {shown} | {verdict.floor.min:g}x |")
    fanout = [b for b in benchmarks if (b.get("group") or "").startswith("fanout-")]
    if fanout:
        ours = [b["extra_info"] for b in fanout if b["extra_info"]["implementation"] != "plain_sdk"]
        sustained = max((x["agents"] for x in ours if x["kept_pace"]), default=0)
        lines += [
            "",
            "## Fan-out: N real-time echo agents in one process",
            "",
            "Each agent hears one peer (16 kHz, 20 ms chunks, real time) and echoes it.",
            "Agents per core at 50% CPU = 0.5 / (CPU seconds per agent-second), a linear",
            "reading of the cost measured at that N. `server kept pace`: the local server",
            "(one Python process) delivered at least 95% of the chunks due; a row marked NO",
            "measures an overloaded server, not the client. The largest N the local server",
            f"kept pace with here: {sustained}.",
            "",
            "| client | loop | N | CPU per agent-second | agents per core at 50% "
            "| lateness p50 / p99 | RSS per agent | server kept pace |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for b in sorted(
            fanout, key=lambda b: (b["extra_info"]["implementation"], b["extra_info"]["agents"])
        ):
            x = b["extra_info"]
            lines.append(
                f"| {x['implementation']} | {x['loop']} | {x['agents']} | "
                f"{1e3 * x['cpu_per_agent_second']:.2f} ms | {x['agents_per_core_at_half']:,.0f} | "
                f"{x['lateness_p50_ms']:.1f} / {x['lateness_p99_ms']:.1f} ms | "
                f"{x['rss_per_agent_kib']:.0f} KiB | {'yes' if x['kept_pace'] else 'NO'} |"
            )
    lines += realtime_section(benchmarks)
    lines += ["", "![plain SDK vs fishjam_fast](chart.png)", ""]
    path.write_text("\n".join(lines))
    return chart


# issue 9's goals for the real-time benchmark (bench_realtime.py)
REALTIME_GOALS = {"agents_per_core_at_400": 600.0, "ratio_at_30": 18.0, "user_us_at_400": 3.0}


def realtime_section(benchmarks: list[dict[str, Any]]) -> list[str]:
    """The real-time table (bench_realtime.py) and the goals read off it."""
    runs = [b["extra_info"] for b in benchmarks if (b.get("group") or "").startswith("realtime-")]
    if not runs:
        return []
    when = sorted({x["measured_at"] for x in runs})
    load = max(x["load_average"] for x in runs)
    span = when[0] if len(when) == 1 else f"{when[0][:-4]} to {when[-1][11:]}"
    windows = sorted(x["seconds"] for x in runs)
    window = (
        f"{windows[0]:.0f} s"
        if round(windows[0]) == round(windows[-1])
        else (f"{windows[0]:.0f} to {windows[-1]:.0f} s")
    )
    pacer = max(x.get("pacer_cpu_share", float("nan")) for x in runs)
    lines = [
        "",
        "## Real-time: N echo agents against a pacer",
        "",
        "A pacer in another process (benchmarks/pacer.py) sends every agent one prebuilt",
        "640-byte chunk every 20 ms, the agents spread evenly over the period; each agent",
        "echoes every chunk onto its own track, all agents in one client process on uvloop.",
        "CPU is the client's (`getrusage`), user and kernel apart, per agent-second (50",
        "chunks echoed) and per message (a chunk received or an echo sent). Agents per",
        "core at 50% CPU = 0.5 / (CPU seconds per agent-second), a linear reading of the",
        "cost measured at that N. `pacer kept pace`: the pacer sent every connection at",
        "least 95% of the chunks due, on time; a row marked NO does not count. `client",
        "kept up`: the agents echoed at least 95% of the chunks due, with a median",
        "lateness under 20 ms; a client behind reads its backlog in batches, cheaper per",
        "message than real time, so its row flatters it.",
        f"Measured {span}, windows of {window}; the highest 1-minute load average during",
        f"the runs: {load:.1f}"
        + ("." if math.isnan(pacer) else f"; the pacer's CPU at most {pacer:.0%} of a core."),
        "",
        "`API`: `iterator` is `async for message in session.receive()` with `await",
        "track.send_chunk(...)` (the plain SDK's way, its only one); `callback` is",
        "fishjam_fast's `session.on_track_data(callback)` answering with",
        "`track.send_chunk_nowait(...)`: no task, future or queue per message.",
        "`bare_picows` is the floor, not a client: the same echo agents on picows and",
        "fishjam_fast's codec with nothing else (benchmarks/bare_picows.py: a future per",
        "message for `iterator`; no checks, counters, clock, flow control, keepalive or",
        "reconnection).",
        "",
        "| client | transport | API | N | CPU per agent-second (user + kernel) "
        "| agents per core at 50% | µs per message (user / kernel) | lateness p50 / p99 "
        "| RSS per agent | pacer kept pace | client kept up |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    order = sorted(
        runs,
        key=lambda x: (
            x["client"] != "plain_sdk",
            x["agents"],
            x["client"] == "bare_picows",
            x["transport"],
            x.get("api", "iterator"),
        ),
    )  # fmt: skip
    for x in order:
        lines.append(
            f"| {x['client']} | {x['transport']} | {x.get('api', 'iterator')} | {x['agents']} | "
            f"{1e3 * x['cpu_per_agent_second']:.2f} ms ({1e3 * x['user_per_agent_second']:.2f}"
            f" + {1e3 * x['system_per_agent_second']:.2f}) | "
            f"{x['agents_per_core_at_half']:,.0f} | "
            f"{x['user_us_per_message']:.2f} / {x['system_us_per_message']:.2f} | "
            f"{x['lateness_p50_ms']:.1f} / {x['lateness_p99_ms']:.1f} ms | "
            f"{x['rss_per_agent_kib']:.0f} KiB | {'yes' if x['kept_pace'] else 'NO'} | "
            f"{'yes' if x['client_kept_up'] else 'NO'} |"
        )
    by_key = ratios.index(benchmarks)
    plain30 = by_key.get(("realtime-30", "realtime[plain_sdk]"))
    goals = REALTIME_GOALS

    def caveat(x: dict[str, Any]) -> str:
        if not x["kept_pace"]:
            return f" (does not count: the pacer did not keep pace with {x['client']})"
        if not x["client_kept_up"]:
            return f" ({x['client']} fell behind: batched reads, not real time)"
        return ""

    lines += ["", "Goals (issue 9), read off this table:", ""]
    for api, label in (("iterator", "realtime[fishjam_fast]"), ("callback", None)):
        name = label or f"realtime[fishjam_fast-{api}]"
        at400 = by_key.get(("realtime-400", name))
        fast30 = by_key.get(("realtime-30", name))
        if at400 is not None:
            x = at400["extra_info"]
            kernel_share = x["system_per_agent_second"] / x["cpu_per_agent_second"]
            lines += [
                f"- {api}: agents per core at 50% CPU at N=400 ({x['transport']}): "
                f"{x['agents_per_core_at_half']:,.0f} (goal at least "
                f"{goals['agents_per_core_at_400']:.0f}){caveat(x)}",
                f"- {api}: user-space CPU per message at N=400: {x['user_us_per_message']:.2f}"
                f" µs (goal at most {goals['user_us_at_400']:g} µs); kernel "
                f"{x['system_us_per_message']:.2f} µs per message, {kernel_share:.0%} of the "
                "client's CPU: the floor no client-side Python can lower",
            ]
        elif api == "iterator":
            lines.append("- N=400 not measured in this run (quick mode)")
        floor = by_key.get(("realtime-400", name.replace("fishjam_fast", "bare_picows")))
        if at400 is not None and floor is not None:
            x, f = at400["extra_info"], floor["extra_info"]
            share = x["agents_per_core_at_half"] / f["agents_per_core_at_half"]
            lines.append(
                f"- {api}: at N=400, {share:.0%} of the agents per core of bare picows, {api} "
                f"({f['agents_per_core_at_half']:,.0f}; "
                f"user {f['user_us_per_message']:.2f}, kernel {f['system_us_per_message']:.2f} µs "
                "per message): the floor of a Python agent on this machine"
            )
        if fast30 is not None and plain30 is not None:
            a, b = fast30["extra_info"], plain30["extra_info"]
            # what the ratio could reach if fishjam_fast spent no user time at all
            cap = b["cpu_per_agent_second"] / a["system_per_agent_second"]
            lines.append(
                f"- {api}: CPU vs the plain SDK at N=30 ({a['transport']}): "
                f"{b['cpu_per_agent_second'] / a['cpu_per_agent_second']:.1f}x less (goal at "
                f"least {goals['ratio_at_30']:g}x){caveat(a)}{caveat(b)}; kernel: plain SDK "
                f"{b['system_per_agent_second'] * 1e3:.2f} ms, fishjam_fast "
                f"{a['system_per_agent_second'] * 1e3:.2f} ms per agent-second (its kernel "
                f"time alone caps the ratio at {cap:.0f}x)"
            )
    return lines


def write_chart(chart: list[tuple[str, float, float]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install 'fishjam-fast[bench]'): no chart", file=sys.stderr)
        return False
    labels = [c[0] for c in chart]
    y = range(len(chart))
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(chart) + 1.5))
    ax.barh(
        [i + 0.2 for i in y], [c[2] for c in chart], height=0.4, label="plain SDK", color="#b0b0b0"
    )
    ax.barh(
        [i - 0.2 for i in y],
        [c[1] for c in chart],
        height=0.4,
        label="fishjam_fast",
        color="#1f77b4",
    )
    for i, (_, ours, theirs) in enumerate(chart):
        ax.text(theirs * 1.1, i + 0.2, f"{theirs / ours:,.0f}x", va="center", fontsize=8)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("µs per operation (log scale; lower is better)")
    ax.legend(loc="lower right")
    ax.set_title("fishjam_fast vs the plain SDK, same run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


README = HERE / "README.md"
START, END = "<!-- results -->", "<!-- /results -->"


def update_readme(results: Path) -> None:
    """Copies the results' tables into benchmarks/README.md between the results markers."""
    text = README.read_text()
    if START not in text or END not in text:
        return
    body = results.read_text().split("\n## ", 1)[1]  # from the first table on
    body = "#### " + body.replace("\n## ", "\n#### ").replace(
        "](chart.png)", "](results/chart.png)"
    )
    head, rest = text.split(START, 1)
    README.write_text(f"{head}{START}\n{body.strip()}\n{END}{rest.split(END, 1)[1]}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the CI-sized run")
    parser.add_argument(
        "--from-json", type=Path, help="reuse a pytest-benchmark JSON instead of running"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="FILE",
        help="run only these benchmark files (e.g. bench_realtime.py) and merge their groups "
        "into the stored results/benchmarks.json (or --from-json)",
    )
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    json_path = RESULTS / "benchmarks.json"
    if args.only:
        fresh_path = RESULTS / "fresh.json"
        status = run_suite(args.quick, fresh_path, *(HERE / name for name in args.only))
        if status:
            print(f"the benchmark run failed (exit {status})", file=sys.stderr)
            return status
        stored = json.loads((args.from_json or json_path).read_text())
        merged = merge_fresh(stored, json.loads(fresh_path.read_text()))
        fresh_path.unlink()
        json_path.write_text(json.dumps(merged, indent=1))
    elif args.from_json is None:
        status = run_suite(args.quick, json_path)
        if status:
            print(f"the benchmark run failed (exit {status})", file=sys.stderr)
            return status
    else:
        json_path.write_bytes(args.from_json.read_bytes())
    data = json.loads(json_path.read_text())
    for bench in data["benchmarks"]:  # every round's time: megabytes nobody reads
        bench["stats"].pop("data", None)
    json_path.write_text(json.dumps(data, indent=1))
    chart = write_markdown(data, RESULTS / "results.md")
    update_readme(RESULTS / "results.md")
    write_chart(chart, RESULTS / "chart.png")
    print((RESULTS / "results.md").read_text())
    print(f"written {datetime.date.today()}: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
