"""Run every benchmark in bench/ and write bench/results/SUMMARY.md from their JSON results.

    make bench        # = python scripts/withdb.py --name bench -- python bench/run_all.py
    python bench/run_all.py pickup webhook   # only these modules
    python bench/run_all.py --summary        # only rewrite SUMMARY.md from the JSON there

A benchmark is a module bench/<name>.py with a top-level ``main()`` taking no arguments (its
return value is ignored unless it is an exit code) that writes ``bench/results/<name>.json``,
preferably in this shape (other JSON is shown by its "summary" mapping, if any;
"baseline_label" names the baseline column, "baseline" by default):

    {"name": "...", "title": "...", "machine": {...}, "seconds": 12.3, "baseline_label": "...",
     "figures": [{"metric": "pickup p50", "unit": "ms", "value": 2.1, "baseline": 123.0,
                  "ratio": 0.017, "better": "lower", "target": "<= 10", "met": true}],
     "notes": ["..."]}

Each module runs in its own process (its own Django set-up and environment) with a time limit,
so one that hangs or fails cannot stop the others; the summary covers whatever JSON exists.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import hmac
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
MODULE_TIMEOUT = int(os.environ.get("BENCH_MODULE_TIMEOUT", "540"))
# Modules with a main() that are not benchmarks.
NOT_BENCHMARKS = {
    "billing_acceptance": "acceptance against a running server (see its docstring)",
    "faults": "fault scenarios: make faults",
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def benchmark_modules() -> list[str]:
    """Modules of bench/ that define a top-level main(), without importing them."""
    names = []
    for path in sorted(BENCH.glob("*.py")):
        if path.name.startswith("_") or path.stem == "run_all" or path.stem in NOT_BENCHMARKS:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                required = len(node.args.args) - len(node.args.defaults)
                if required == 0:
                    names.append(path.stem)
    return names


def run_module(name: str) -> tuple[int | None, float]:
    started = time.monotonic()
    code = (
        f"import sys; from bench import {name}; status = {name}.main(); "
        "sys.exit(status if isinstance(status, int) else 0)"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, timeout=MODULE_TIMEOUT, check=False
        )
        status = result.returncode
    except subprocess.TimeoutExpired:
        status = None
    return status, time.monotonic() - started


def machine() -> dict:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info = {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version()}
    url = os.environ.get("DATABASE_URL")
    if url:
        try:
            import psycopg

            with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
                info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        except Exception as error:  # the summary is still worth writing
            info["postgresql"] = f"unknown ({type(error).__name__})"
    with contextlib.suppress(OSError):  # busy neighbours skew figures: show it
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def speed_probe() -> float:
    """CPU milliseconds of a fixed pure-Python workload, the best of five: how fast the host is.

    The same code on the same host reads the same; on a shared VM the reading moves with the
    neighbours, and every CPU figure of the run moves with it. It is taken before and after the
    benchmarks, so a figure can be read against the host's speed at the time.
    """
    event = {
        "id": "evt_probe",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_probe", "metadata": {str(n): "x" * 40 for n in range(50)}}},
    }
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for number in range(2000):
            body = json.dumps({**event, "created": number}).encode()
            hmac.new(b"whsec_probe", body, hashlib.sha256).hexdigest()
            json.loads(body)
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def versus(figure: dict) -> str:
    value, baseline = figure.get("value"), figure.get("baseline")
    if not isinstance(value, int | float) or not isinstance(baseline, int | float):
        return ""
    if not value or not baseline:
        return ""
    lower_is_better = figure.get("better", "lower") == "lower"
    gain = baseline / value if lower_is_better else value / baseline
    return f"{gain:.1f}x better" if gain >= 1 else f"{1 / gain:.1f}x worse"


def met(figure: dict) -> str:
    return {True: "yes", False: "**no**"}.get(figure.get("met"), "")


def is_scalar(value: object) -> bool:
    return isinstance(value, int | float | str | bool)


def plain_summary(result: dict) -> list[str]:
    """A result without "figures": its "summary" mapping (or top-level scalars) as a table."""
    pairs = result.get("summary")
    if not isinstance(pairs, dict):
        pairs = {}
        for key, value in result.items():
            if is_scalar(value):
                pairs[key] = value
            elif isinstance(value, dict) and key != "machine":  # e.g. one entry per scenario
                scalars = [f"{k} {fmt(v)}" for k, v in value.items() if is_scalar(v)]
                pairs[key] = ", ".join(scalars)
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {key} | {fmt(value)} |" for key, value in pairs.items() if key != "_file"]
    return [*lines, ""]


def summary(
    results: list[dict],
    runs: dict[str, tuple[int | None, float]],
    probes: list[float],
    started: str,
) -> str:
    lines = ["# Benchmark summary", ""]
    written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines.append(f"Run {started}." if started == written else f"Run {started} (summary {written}).")
    info = machine()
    if probes:
        info["speed probe before then after (ms CPU, lower is faster)"] = " then ".join(
            fmt(probe) for probe in probes
        )
    for result in results:  # without a database here, the version a benchmark recorded
        info["postgresql"] = info.get("postgresql") or (result.get("machine") or {}).get(
            "postgresql"
        )
    info = {k: v for k, v in info.items() if v}
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".")
    lines.append("")
    for name, (status, seconds) in runs.items():
        state = "timed out" if status is None else ("ok" if status == 0 else f"exit {status}")
        lines.append(f"- `bench/{name}.py`: {state} in {seconds:.0f} s")
    lines.append("")
    for result in results:
        lines.append(f"## {result.get('title') or result.get('name') or result['_file']}")
        lines.append("")
        if "figures" not in result:
            lines += plain_summary(result)
            continue
        # A result may name its baseline column (an earlier design measured the same way).
        label = result.get("baseline_label") or "baseline"
        lines.append(f"| figure | value | {label} | vs {label} | target | met |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for figure in result.get("figures", []):
            unit = figure.get("unit", "")
            baseline = figure.get("baseline")
            lines.append(
                f"| {figure['metric']} | {fmt(figure.get('value'))} {unit} "
                f"| {'' if baseline is None else f'{fmt(baseline)} {unit}'} | {versus(figure)} "
                f"| {figure.get('target') or ''} | {met(figure)} |"
            )
        lines.append("")
        for note in result.get("notes", []):
            lines.append(f"- {note}")
        if result.get("notes"):
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    args = sys.argv[1:]
    wanted = [] if args == ["--summary"] else args or benchmark_modules()
    runs: dict[str, tuple[int | None, float]] = {}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    probes = [speed_probe()] if wanted else []  # --summary alone: no run to probe
    for name in wanted:
        log(f"running bench/{name}.py (limit {MODULE_TIMEOUT} s)")
        runs[name] = run_module(name)
        log(f"bench/{name}.py: exit {runs[name][0]} after {runs[name][1]:.0f} s")
    # What ran and how fast the host was, kept for a later --summary (after make faults).
    last_run = RESULTS / "_last_run.json"
    if wanted:
        probes.append(speed_probe())
        kept = {"started": started, "runs": runs, "probes": probes}
        last_run.write_text(json.dumps(kept, indent=2) + "\n")
    elif last_run.exists():
        kept = json.loads(last_run.read_text())
        runs = {name: tuple(run) for name, run in kept["runs"].items()}
        probes = kept["probes"]
        started = kept["started"]
    results = []
    for path in sorted(RESULTS.glob("*.json")):
        if path.name.startswith("_"):
            continue
        try:
            results.append({"_file": path.stem, **json.loads(path.read_text())})
        except json.JSONDecodeError:
            log(f"skipping {path.name}: not JSON")
    text = summary(results, runs, probes, started)
    (RESULTS / "SUMMARY.md").write_text(text + "\n")
    print(text)
    return 0 if not wanted or all(status == 0 for status, _ in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
