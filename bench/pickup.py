"""Job pickup on the one-queue design: a real ``manage.py jobs_worker --queue default`` cluster
(as the Procfile's worker line) claiming jobs.Job rows through jobs.broker.JobsBroker.

- pickup latency: one job at a time while the cluster is idle, from the enqueue's commit
  returning to the job's first line (it appends time.time() to a file);
- delayed jobs: enqueued with run_at 50 to 500 ms ahead; start minus run_at;
- throughput: 10,000 trivial jobs enqueued in one transaction, from its commit until none is
  left to run, with the cluster's and PostgreSQL's CPU per job;
- idle CPU of the cluster (and of PostgreSQL meanwhile), and how long the cluster takes to
  exit after a SIGTERM to its process group (as honcho or ``kill -- -PGID`` send).

The benchmark's task is bench.tasks.pickup_record; the workers load it through
``JOBS_EXTRA_MODULES=bench.tasks``. Writes bench/results/pickup.json.

    python scripts/withdb.py --name bench -- python -m bench.pickup
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOG_ENV = "BENCH_PICKUP_LOG"  # bench.tasks.PICKUP_LOG_ENV
JOB = "bench.tasks.pickup_record"

PICKUP_JOBS = int(os.environ.get("BENCH_PICKUP_JOBS", "1000"))
DELAYED_BATCHES, DELAYED_PER_BATCH = 15, 20
THROUGHPUT_JOBS = int(os.environ.get("BENCH_THROUGHPUT_JOBS", "10000"))
IDLE_SECONDS = 5.0
DEADLINE_SECONDS = 120  # per measurement: the bench stops by itself whatever happens
# The previous design (bench/results/pickup.json at 28a06f0): jobs.broker.PostgresBroker
# delivering django-q2 OrmQ rows, LISTEN/NOTIFY, 2 workers, bulk 4, the same measurements.
BEFORE = {
    "pickup p50": 1.75,
    "pickup p95": 2.3,
    "pickup p99": 2.78,
    "throughput": 999.2,
    "idle CPU": 1.0,
    "stop": 1.57,
}
STOCK = "stock django-q2 (ORM broker, poll 0.2 s) in that run: pickup p50 177 ms, p99 191 ms, "
STOCK += "41 jobs/s, idle 0.67 % of a core, no exit 10 s after SIGTERM (killed)"


def log(message: str) -> None:
    print(f"[pickup] {message}", file=sys.stderr, flush=True)


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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def distribution(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": round(percentile(values, 0.50), 2),
        "p95": round(percentile(values, 0.95), 2),
        "p99": round(percentile(values, 0.99), 2),
        "mean": round(statistics.fmean(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def wait_until(condition, timeout: float, poll: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def pending() -> bool:
    """A job of the benchmark not finished yet."""
    from jobs.models import Job

    return Job.objects.filter(name=JOB, status__in=[*Job.WAITING, Job.Status.RUNNING]).exists()


def finished(job_id: int) -> bool:
    from jobs.models import Job

    return Job.objects.filter(pk=job_id, status=Job.Status.SUCCEEDED).exists()


def enqueue_one(n: int, run_at=None) -> int:
    from django.db import transaction

    from bench.tasks import pickup_record

    with transaction.atomic():
        return int(pickup_record.using(run_after=run_at).enqueue(n=n).id)


def measure_pickup(task_log: TaskLog, jobs: int, first: int) -> list[float]:
    """Enqueue one job at a time while idle; milliseconds from commit to the job's first line."""
    latencies = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    for n in range(first, first + jobs):
        job_id = enqueue_one(n)
        committed = time.time()
        if not wait_until(lambda n=n: n in task_log.read(), 10, 0.0005):
            raise RuntimeError(f"job {n} did not start within 10 s")
        latencies.append((task_log.started[n] - committed) * 1000)
        # Idle again: finished, then a random pause so enqueues fall anywhere in a wait.
        wait_until(lambda job_id=job_id: finished(job_id), 10, 0.002)
        time.sleep(random.uniform(0.005, 0.025))
        if time.monotonic() > deadline:
            log(f"pickup cut at {len(latencies)} jobs by the {DEADLINE_SECONDS} s deadline")
            break
    return latencies


def measure_delayed(task_log: TaskLog, first: int) -> list[float]:
    """Jobs due 50 to 500 ms ahead, each enqueued in its own transaction, a batch at a time:
    milliseconds from run_at to the job's first line."""
    from datetime import UTC, datetime, timedelta

    errors = []
    n = first
    for _ in range(DELAYED_BATCHES):
        due: dict[int, float] = {}
        for _ in range(DELAYED_PER_BATCH):
            run_at = datetime.now(UTC) + timedelta(seconds=random.uniform(0.05, 0.5))
            enqueue_one(n, run_at=run_at)
            due[n] = run_at.timestamp()
            n += 1
        if not wait_until(lambda due=due: set(due) <= set(task_log.read()), 10, 0.005):
            raise RuntimeError("delayed jobs did not start within 10 s")
        errors += [(task_log.started[k] - at) * 1000 for k, at in due.items()]
        wait_until(lambda: not pending(), 10, 0.005)
    return errors


def measure_throughput(
    task_log: TaskLog, jobs: int, first: int, cluster: int, roles: dict[int, str]
) -> dict:
    """Enqueue `jobs` in one transaction; time (and CPU) until none is left to run."""
    from django.db import transaction

    from bench.stack import cluster_cpu_seconds, postmaster_pid, tree_cpu_seconds
    from bench.tasks import pickup_record

    postgres = postmaster_pid()
    enqueue_started = time.monotonic()
    with transaction.atomic():
        for n in range(first, first + jobs):
            pickup_record.enqueue(n=n)
        cpu_before = tree_cpu_seconds(cluster), tree_cpu_seconds(postgres)
        by_role = cluster_cpu_seconds(cluster, roles)
    committed_wall, committed = time.time(), time.monotonic()
    enqueue_seconds = committed - enqueue_started
    done = wait_until(lambda: not pending(), DEADLINE_SECONDS, 0.05)
    elapsed = time.monotonic() - committed
    cpu_after = tree_cpu_seconds(cluster), tree_cpu_seconds(postgres)
    ended = cluster_cpu_seconds(cluster, roles)
    from jobs.models import Job

    succeeded = Job.objects.filter(name=JOB, status=Job.Status.SUCCEEDED, kwargs__n__gte=first)
    count = succeeded.count()
    started = [t for n, t in task_log.read().items() if n >= first]
    last_start = max(started) - committed_wall if started else float("nan")
    return {
        "jobs": jobs,
        "succeeded": count,
        "finished": done,
        "seconds": round(elapsed, 3),
        "jobs_per_second": round(count / elapsed, 1),
        "started_per_second": round(len(started) / last_start, 1) if started else 0.0,
        "enqueue_per_second": round(jobs / enqueue_seconds, 1),
        # The poll of this process (every 50 ms) is in PostgreSQL's count: it is small.
        "cluster_cpu_ms_per_job": round((cpu_after[0] - cpu_before[0]) * 1000 / jobs, 3),
        "postgres_cpu_ms_per_job": round((cpu_after[1] - cpu_before[1]) * 1000 / jobs, 3),
        "cluster_cpu_ms_per_job_by_role": {
            role: round((ended[role] - seconds) * 1000 / jobs, 3)
            for role, seconds in by_role.items()
        },
    }


def idle_cpu(cluster: int, seconds: float) -> dict[str, float]:
    """CPU of the whole cluster tree, and of PostgreSQL, while idle: percent of one core."""
    from bench.stack import postmaster_pid, tree_cpu_seconds

    postgres = postmaster_pid()
    before = tree_cpu_seconds(cluster), tree_cpu_seconds(postgres)
    time.sleep(seconds)
    after = tree_cpu_seconds(cluster), tree_cpu_seconds(postgres)
    return {
        "cluster": round((after[0] - before[0]) / seconds * 100, 2),
        "postgres": round((after[1] - before[1]) / seconds * 100, 2),
    }


def figure(metric, unit, value, baseline, target, met, lower_is_better=True) -> dict:
    return {
        "metric": metric,
        "unit": unit,
        "value": value,
        "baseline": baseline,
        "ratio": round(value / baseline, 3) if value and baseline else None,
        "better": "lower" if lower_is_better else "higher",
        "target": target,
        "met": met,
    }


def main() -> int:
    from bench.stack import (
        Stack,
        cluster_roles,
        load_average,
        machine,
        manage,
        setup_django,
        use_stack_settings,
    )

    use_stack_settings()
    setup_django()
    started = time.monotonic()
    load_at_start = load_average()
    task_log = TaskLog(RESULTS / "pickup-tasks.log")
    stack = Stack(
        web_workers=0,
        env={"JOBS_EXTRA_MODULES": "bench.tasks", LOG_ENV: str(task_log.path)},
    )
    manage("migrate", "--noinput", env=stack.environment())
    manage("createcachetable", env=stack.environment())
    info = {**machine(), "load average at start": load_at_start}
    log(f"machine: {info}")
    from jobs.models import Job

    Job.objects.filter(name=JOB).delete()
    try:
        stack.start_workers()  # as the Procfile: manage.py jobs_worker --queue default --nice 10
        cluster = stack.processes["worker0"].pid
        warm = measure_pickup(task_log, 5, first=-100)  # the workers have imported the job
        roles = cluster_roles(cluster)  # before any worker is recycled
        log(f"cluster ready, warm-up pickups {[round(x, 1) for x in warm]} ms")
        latencies = measure_pickup(task_log, PICKUP_JOBS, first=0)
        pickup = distribution(latencies)
        log(f"pickup: {pickup}")
        delayed = distribution(measure_delayed(task_log, first=100_000))
        log(f"delayed start error: {delayed}")
        time.sleep(1)
        idle = idle_cpu(cluster, IDLE_SECONDS)
        log(f"idle CPU: {idle}")
        throughput = measure_throughput(task_log, THROUGHPUT_JOBS, 1_000_000, cluster, roles)
        log(f"throughput: {throughput}")
        time.sleep(1)  # idle again, as a deploy finds it
        stop_started = time.monotonic()
        stack.kill("worker0", signal.SIGTERM)  # the group; SIGKILL after 30 s
        stop_seconds = round(time.monotonic() - stop_started, 2)
        log(f"stopped {stop_seconds} s after the process-group SIGTERM")
    finally:
        stack.stop()
    Job.objects.filter(name=JOB).delete()
    rate = throughput["jobs_per_second"]
    result = {
        "name": "pickup",
        "title": "Job pickup: jobs_worker claiming jobs.Job rows (one queue, LISTEN/NOTIFY)",
        "baseline_label": "before (old broker)",
        "machine": info,
        "seconds": round(time.monotonic() - started, 1),
        "figures": [
            figure(
                "pickup p50", "ms", pickup["p50"], BEFORE["pickup p50"], "<= 2", pickup["p50"] <= 2
            ),
            figure("pickup p95", "ms", pickup["p95"], BEFORE["pickup p95"], "", None),
            figure(
                "pickup p99", "ms", pickup["p99"], BEFORE["pickup p99"], "<= 5", pickup["p99"] <= 5
            ),
            figure("delayed job: start - run_at p50", "ms", delayed["p50"], None, "", None),
            figure(
                "delayed job: start - run_at p99",
                "ms",
                delayed["p99"],
                None,
                "<= 5",
                delayed["p99"] <= 5,
            ),
            figure(
                "throughput (trivial jobs)",
                "jobs/s",
                rate,
                BEFORE["throughput"],
                ">= 500",
                rate >= 500,
                False,
            ),
            figure(
                "cluster CPU per trivial job",
                "ms",
                throughput["cluster_cpu_ms_per_job"],
                None,
                "",
                None,
            ),
            *(
                figure(f"  cluster: {role}", "ms", value, None, "", None)
                for role, value in throughput["cluster_cpu_ms_per_job_by_role"].items()
            ),
            figure(
                "PostgreSQL CPU per trivial job",
                "ms",
                throughput["postgres_cpu_ms_per_job"],
                None,
                "",
                None,
            ),
            figure(
                "idle CPU (whole cluster)",
                "% of a core",
                idle["cluster"],
                BEFORE["idle CPU"],
                "",
                None,
            ),
            figure(
                "idle CPU of PostgreSQL meanwhile", "% of a core", idle["postgres"], None, "", None
            ),
            figure(
                "stop after process-group SIGTERM",
                "s",
                stop_seconds,
                BEFORE["stop"],
                "<= 2",
                stop_seconds <= 2,
            ),
        ],
        "pickup_ms": pickup,
        "delayed_start_error_ms": delayed,
        "throughput": throughput,
        "idle_cpu_percent": idle,
        "sigterm_stop_seconds": stop_seconds,
        "notes": [
            "cluster: `manage.py jobs_worker --queue default --nice 10` (the Procfile's line), "
            "django-q2 with 2 workers, bulk 4, JobsBroker; DEBUG off",
            f"pickup: {pickup['count']} jobs one at a time, each in its own transaction; "
            "latency from the commit returning to the job's first line",
            f"delayed: {delayed['count']} jobs due 50-500 ms after their enqueue "
            f"({DELAYED_BATCHES} batches of {DELAYED_PER_BATCH})",
            f"throughput: {throughput['jobs']} jobs enqueued in one transaction, until none "
            "left; each job is atomic (its work and its success statement in one transaction)",
            "before (old broker): bench/results/pickup.json at 28a06f0, PostgresBroker over "
            "django-q2's OrmQ, same cluster settings; no stock baseline any more (one queue)",
            STOCK,
        ],
    }
    from bench.stack import write_result

    path = write_result("pickup", result)
    log(f"wrote {path} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
