"""Job pickup benchmark: our PostgresBroker against stock django-q2 settings, both real qclusters.

Pickup latency: a job is enqueued in its own transaction while the cluster is idle; latency is
from the commit returning to the first line of the job running (the job appends time.time() to
a file). Throughput: N trivial jobs enqueued in one transaction, timed from that commit until
every one is acknowledged (so result saving in the monitor is included). Writes
bench/results/pickup.json.

    python scripts/withdb.py --name bench -- python bench/pickup.py
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOG_ENV = "BENCH_PICKUP_LOG"

# Counts are cut for the baseline: at its ~120 ms pickup and ~60 jobs/s the full counts would
# take about 5 minutes on their own.
PICKUP_JOBS = int(os.environ.get("BENCH_PICKUP_JOBS", "1000"))
PICKUP_JOBS_BASELINE = int(os.environ.get("BENCH_PICKUP_JOBS_BASELINE", "200"))
THROUGHPUT_JOBS = int(os.environ.get("BENCH_THROUGHPUT_JOBS", "10000"))
THROUGHPUT_JOBS_BASELINE = int(os.environ.get("BENCH_THROUGHPUT_JOBS_BASELINE", "1000"))
DEADLINE_SECONDS = 90  # per measurement: the bench stops by itself whatever happens

# Stock django-q2 as this project configured it before the broker: ORM broker, poll 0.2 s,
# 2 workers, bulk 1, save_limit 1000 (from config/settings.py).
BASELINE_ENV = {
    "Q_BROKER_CLASS": "",
    "Q_POLL": "0.2",
    "Q_WORKERS": "2",
    "Q_BULK": "1",
    "Q_SAVE_LIMIT": "1000",
    "Q_RECYCLE": "500",
}
# Ours, tuned: the monitor saving every success into django_q_task (jobs.JobAttempt already
# records each attempt) and pruning it to save_limit is what caps throughput; bulk 4 claims
# a few rows per query. BENCH_Q_* override for experiments.
OURS_ENV = {
    "Q_BROKER_CLASS": "jobs.broker.PostgresBroker",
    "Q_POLL": "1.0",
    "Q_WORKERS": os.environ.get("BENCH_Q_WORKERS", "2"),
    "Q_BULK": os.environ.get("BENCH_Q_BULK", "4"),
    "Q_SAVE_LIMIT": os.environ.get("BENCH_Q_SAVE_LIMIT", "-1"),
    "Q_RECYCLE": os.environ.get("BENCH_Q_RECYCLE", "500"),
}
# Where the time goes: our broker with django-q2's result saving as configured, throughput only.
VARIANTS = {
    "ours, save_limit 1000 (project setting), bulk 1": {
        **OURS_ENV,
        "Q_SAVE_LIMIT": "1000",
        "Q_BULK": "1",
    },
    "ours, save_limit 0 (keep all, no pruning), bulk 4": {**OURS_ENV, "Q_SAVE_LIMIT": "0"},
    "ours, save_limit -1, bulk 1": {**OURS_ENV, "Q_BULK": "1"},
}
VARIANT_JOBS = THROUGHPUT_JOBS_BASELINE  # same count as the baseline: comparable


def record(n: int) -> None:
    """The benchmark's job: its first line notes when it started running."""
    started = time.time()
    with open(os.environ[LOG_ENV], "a") as log:
        log.write(f"{n} {started:.6f}\n")


def log(message: str) -> None:
    print(f"[pickup] {message}", file=sys.stderr, flush=True)


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


class TaskLog:
    """The file the jobs append to; read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")
        self.offset = 0
        self.started: dict[int, float] = {}

    def read(self) -> dict[int, float]:
        with self.path.open() as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            n, started = line.split()
            self.started[int(n)] = float(started)
        return self.started


class Cluster:
    """A real `manage.py qcluster` in its own process group."""

    def __init__(self, env: dict[str, str], task_log: Path, output: Path) -> None:
        self.output = output.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**os.environ, **env, LOG_ENV: str(task_log), "Q_LOG_LEVEL": "WARNING"},
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> float:
        """SIGTERM the process group; SIGKILL after 10 s. Returns how long the stop took."""
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            log("cluster did not stop within 10 s of SIGTERM: killed")
        self.output.close()
        return time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def clear_queue() -> None:
    from django_q.models import OrmQ, Task

    OrmQ.objects.all().delete()
    Task.objects.all().delete()


def wait_until(condition, timeout: float, poll: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def measure_pickup(broker, task_log: TaskLog, jobs: int, first: int) -> list[float]:
    """Enqueue one job at a time while idle; milliseconds from commit to the job's first line."""
    from django.db import transaction
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    latencies = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    for n in range(first, first + jobs):
        with transaction.atomic():
            async_task("bench.pickup.record", n, broker=broker)
        committed = time.time()
        if not wait_until(lambda n=n: n in task_log.read(), 10, 0.0005):
            raise RuntimeError(f"job {n} did not start within 10 s")
        latencies.append((task_log.started[n] - committed) * 1000)
        # Idle again: acknowledged, then a random pause so enqueues fall anywhere in a poll.
        wait_until(lambda: not OrmQ.objects.exists(), 10, 0.002)
        time.sleep(random.uniform(0.005, 0.025))
        if time.monotonic() > deadline:
            log(f"pickup cut at {len(latencies)} jobs by the {DEADLINE_SECONDS} s deadline")
            break
    return latencies


def measure_throughput(broker, task_log: TaskLog, jobs: int, first: int) -> dict:
    """Enqueue `jobs` in one transaction; time until all are acknowledged."""
    from django.db import transaction
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    enqueue_started = time.monotonic()
    with transaction.atomic():
        for n in range(first, first + jobs):
            async_task("bench.pickup.record", n, broker=broker)
    committed_wall, committed = time.time(), time.monotonic()
    enqueue_seconds = committed - enqueue_started
    done = wait_until(lambda: not OrmQ.objects.exists(), DEADLINE_SECONDS, 0.05)
    elapsed = time.monotonic() - committed
    acknowledged = jobs - OrmQ.objects.count()
    started = [t for n, t in task_log.read().items() if n >= first]
    last_start = max(started) - committed_wall if started else float("nan")
    # Workers start jobs faster than the monitor saves and acknowledges them when the
    # monitor is the bottleneck: both rates tell where the time goes.
    return {
        "jobs": jobs,
        "acknowledged": acknowledged,
        "finished": done,
        "seconds": round(elapsed, 3),
        "jobs_per_second": round(acknowledged / elapsed, 1),
        "started_per_second": round(len(started) / last_start, 1) if started else 0.0,
        "enqueue_per_second": round(jobs / enqueue_seconds, 1),
    }


def run_scenario(name: str, env: dict[str, str], broker, pickup_jobs: int, jobs: int) -> dict:
    clear_queue()
    slug = name.split(",")[0] if pickup_jobs else "variant"
    task_log = TaskLog(RESULTS / f"pickup-{slug}-tasks.log")
    cluster = Cluster(env, task_log.path, RESULTS / f"pickup-{slug}-qcluster.log")
    try:
        # Warm up: the cluster is up and its workers have imported the job.
        warm = measure_pickup(broker, task_log, 5, first=-100)
        log(f"{name}: cluster ready, warm-up pickups {[round(x, 1) for x in warm]} ms")
        if not pickup_jobs:
            throughput = measure_throughput(broker, task_log, jobs, first=1_000_000)
            log(f"{name}: throughput {throughput}")
            return {"settings": env, "throughput": throughput}
        latencies = measure_pickup(broker, task_log, pickup_jobs, first=0)
        log(
            f"{name}: pickup over {len(latencies)} jobs p50 {percentile(latencies, 0.5):.1f} ms"
            f" p99 {percentile(latencies, 0.99):.1f} ms"
        )
        idle_cpu = idle_cpu_seconds(cluster.process.pid, 3.0)
        throughput = measure_throughput(broker, task_log, jobs, first=1_000_000)
        log(f"{name}: throughput {throughput}")
    finally:
        stop_seconds = cluster.stop()
    clear_queue()
    return {
        "settings": env,
        "pickup_jobs": len(latencies),
        "pickup_ms": {
            "p50": round(percentile(latencies, 0.50), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "mean": round(statistics.fmean(latencies), 2),
            "max": round(max(latencies), 2),
        },
        "throughput": throughput,
        "idle_cpu_percent": idle_cpu,
        "sigterm_stop_seconds": round(stop_seconds, 2),
    }


def idle_cpu_seconds(pid: int, seconds: float) -> float:
    """CPU the whole cluster (its process group) burns while idle, in percent of one core."""

    def cpu_ticks() -> int:
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pid:  # process group id
                total += int(fields[11]) + int(fields[12])
        return total

    before = cpu_ticks()
    time.sleep(seconds)
    return round((cpu_ticks() - before) / os.sysconf("SC_CLK_TCK") / seconds * 100, 2)


def figure(metric, unit, value, baseline, target, met, lower_is_better=True) -> dict:
    return {
        "metric": metric,
        "unit": unit,
        "value": value,
        "baseline": baseline,
        "ratio": round(value / baseline, 3) if baseline else None,
        "better": "lower" if lower_is_better else "higher",
        "target": target,
        "met": met,
    }


def main() -> int:
    setup_django()
    from django.core.management import call_command
    from django_q.brokers.orm import ORM

    from bench.run_all import machine
    from jobs.broker import PostgresBroker

    RESULTS.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)  # django-q2's heartbeats live there
    started = time.monotonic()
    info = machine()
    log(f"machine: {info}")
    baseline = run_scenario(
        "baseline", BASELINE_ENV, ORM(), PICKUP_JOBS_BASELINE, THROUGHPUT_JOBS_BASELINE
    )
    ours = run_scenario("ours", OURS_ENV, PostgresBroker(), PICKUP_JOBS, THROUGHPUT_JOBS)
    variants = {
        name: run_scenario(name, env, PostgresBroker(), 0, VARIANT_JOBS)
        for name, env in VARIANTS.items()
    }
    p, b = ours["pickup_ms"], baseline["pickup_ms"]
    rate, base_rate = (
        ours["throughput"]["jobs_per_second"],
        baseline["throughput"]["jobs_per_second"],
    )
    result = {
        "name": "pickup",
        "title": "Job pickup: PostgresBroker (LISTEN/NOTIFY, SKIP LOCKED) vs stock django-q2",
        "machine": info,
        "seconds": round(time.monotonic() - started, 1),
        "figures": [
            figure("pickup p50", "ms", p["p50"], b["p50"], "<= 10", p["p50"] <= 10),
            figure("pickup p95", "ms", p["p95"], b["p95"], "", None),
            figure("pickup p99", "ms", p["p99"], b["p99"], "<= 50", p["p99"] <= 50),
            figure("throughput", "jobs/s", rate, base_rate, ">= 500", rate >= 500, False),
            *(
                figure(
                    f"throughput {name}",
                    "jobs/s",
                    variant["throughput"]["jobs_per_second"],
                    base_rate,
                    "",
                    None,
                    False,
                )
                for name, variant in variants.items()
            ),
            figure(
                "idle CPU (whole cluster)",
                "% of a core",
                ours["idle_cpu_percent"],
                baseline["idle_cpu_percent"],
                "",
                None,
            ),
            figure(
                "stop after process-group SIGTERM",
                "s",
                ours["sigterm_stop_seconds"],
                baseline["sigterm_stop_seconds"],
                "<= 2",
                ours["sigterm_stop_seconds"] <= 2,
            ),
        ],
        "scenarios": {"baseline": baseline, "ours": ours, **variants},
        "notes": [
            f"baseline cut to {baseline['pickup_jobs']} pickups and "
            f"{baseline['throughput']['jobs']} throughput jobs to keep the run short",
            "baseline stop: stock qcluster hangs on a process-group SIGTERM and is SIGKILLed "
            "after 10 s",
        ],
    }
    (RESULTS / "pickup.json").write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {RESULTS / 'pickup.json'} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
