"""Our Tasks backend against django-tasks-db (the Tasks API's own database backend), side by
side in one run on the same PostgreSQL, with the same trivial ``@task`` and task count.

    python scripts/withdb.py --name bench -- python -m bench.tasks_db

For each: tasks per second with 2 worker processes (ours: one ``manage.py jobs_worker`` cluster,
Q_WORKERS=2, not niced; django-tasks-db: two ``db_worker`` processes), worker and
PostgreSQL CPU per task (from /proc, per process tree), pickup p50 and p99 (enqueue commit to
the task's first line, one task at a time on idle workers; django-tasks-db at its default 1 s
interval and at 0.1 s), and what becomes of a task whose worker process is SIGKILLed while it
runs. Writes bench/results/tasks_db.json.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import time
from pathlib import Path

from bench.stack import (
    RESULTS,
    Stack,
    machine,
    postmaster_pid,
    setup_django,
    tree_cpu_seconds,
    write_result,
)

TASKS = int(os.environ.get("BENCH_TASKS_N", "2000"))
PICKUPS = int(os.environ.get("BENCH_TASKS_PICKUPS", "40"))
SLOW_PICKUPS = int(os.environ.get("BENCH_TASKS_SLOW_PICKUPS", "20"))  # at a 1 s interval
KILLED_TASK_WAIT = 30.0  # seconds to watch a killed task for a rerun
DEADLINE = 180.0
SETTINGS = "bench.tasks_db_settings"
LOG_ENV = "BENCH_PICKUP_LOG"  # bench.tasks.PICKUP_LOG_ENV


def log(message: str) -> None:
    print(f"[tasks_db] {message}", file=sys.stderr, flush=True)


class Side:
    """One backend under test: how to start its workers and read its tasks' states."""

    def __init__(self, name: str, backend: str, stack: Stack, interval: float = 1.0) -> None:
        self.name, self.backend, self.stack, self.interval = name, backend, stack, interval
        self.workers: list[str] = []

    def start(self) -> None:
        if self.backend == "default":
            # The Procfile's worker line without its --nice: db_worker processes run unniced.
            self.stack.spawn(
                "worker0", [sys.executable, "manage.py", "jobs_worker", "--queue", "default"]
            )
            self.workers = ["worker0"]
        else:
            for index in range(2):
                name = f"db_worker{index}"
                self.stack.spawn(
                    name,
                    [
                        sys.executable,
                        "manage.py",
                        "db_worker",
                        "--backend",
                        "db",
                        "--interval",
                        str(self.interval),
                        "--no-startup-delay",
                        "--worker-id",
                        name,
                    ],
                )
                self.workers.append(name)
        time.sleep(3)  # started and idle

    def stop(self) -> None:
        for name in self.workers:
            self.stack.kill(name, signal.SIGTERM)
        self.workers = []

    def worker_cpu(self) -> float:
        return sum(tree_cpu_seconds(self.stack.processes[name].pid) for name in self.workers)

    def task(self, task):
        return task if self.backend == "default" else task.using(backend="db")

    def pending(self) -> int:
        if self.backend == "default":
            from jobs.models import Job

            return Job.objects.filter(status__in=["queued", "retrying", "running"]).count()
        from django_tasks_db.models import DBTaskResult

        return DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).count()

    def clear(self) -> None:
        from django_tasks_db.models import DBTaskResult

        from jobs.models import Job

        Job.objects.filter(name__startswith="bench.tasks.").delete()
        DBTaskResult.objects.all().delete()


def wait_for(condition, timeout: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


def throughput(side: Side) -> dict:
    """Enqueue TASKS trivial tasks in one transaction on idle workers; time and CPU to drain."""
    from django.db import transaction

    from bench.tasks import noop

    task = side.task(noop)
    postgres = postmaster_pid()
    cpu_before = side.worker_cpu(), tree_cpu_seconds(postgres)
    with transaction.atomic():
        for _ in range(TASKS):
            task.enqueue()
    committed = time.monotonic()
    done = wait_for(lambda: side.pending() == 0, DEADLINE, poll=0.1)
    elapsed = time.monotonic() - committed
    cpu_after = side.worker_cpu(), tree_cpu_seconds(postgres)
    return {
        "done": done,
        "tasks_per_second": round(TASKS / elapsed, 1),
        "worker_ms_per_task": round((cpu_after[0] - cpu_before[0]) * 1000 / TASKS, 3),
        "postgres_ms_per_task": round((cpu_after[1] - cpu_before[1]) * 1000 / TASKS, 3),
    }


def pickup(side: Side, log_path: Path, count: int) -> dict:
    """One task at a time on idle workers: milliseconds from the enqueue's commit to its start."""
    from django.db import transaction

    from bench.tasks import pickup_record

    task = side.task(pickup_record)
    delays = []
    for n in range(count):
        offset = log_path.stat().st_size
        with transaction.atomic():
            task.enqueue(n=n)
        committed = time.time()

        def started(offset: int = offset) -> float | None:
            with log_path.open() as handle:
                handle.seek(offset)
                line = handle.readline()
            return float(line.split()[1]) if line.endswith("\n") else None

        if not wait_for(lambda: started() is not None, 10, poll=0.002):
            return {"error": f"task {n} did not start within 10 s"}
        delays.append((started() - committed) * 1000)
        time.sleep(0.05)
    delays.sort()
    return {
        "p50_ms": round(statistics.median(delays), 2),
        "p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 2),
    }


def killed_task(side: Side) -> dict:
    """SIGKILL the worker process running a 3-second task; watch what becomes of the task."""
    from django_tasks import TaskResultStatus

    from bench.tasks import sleep

    result = side.task(sleep).enqueue(seconds=3)
    if not wait_for(lambda: refreshed(result).status == TaskResultStatus.RUNNING, 20):
        return {"outcome": "never started"}
    if side.backend == "default":
        # Claimed by the cluster's pusher, then taken over by the worker process that runs it.
        wait_for(lambda: "@" not in (refreshed(result).worker_ids or ["@"])[-1], 10)
    pid = running_pid(side, refreshed(result))
    if pid is None:
        return {"outcome": "its worker process was not found"}
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    succeeded = wait_for(
        lambda: refreshed(result).status == TaskResultStatus.SUCCESSFUL, KILLED_TASK_WAIT, 0.1
    )
    final = refreshed(result)
    if succeeded:
        return {
            "outcome": f"ran again and SUCCESSFUL {time.monotonic() - killed:.1f} s after the kill"
            f" ({final.attempts} attempts)",
            "seconds_to_success": round(time.monotonic() - killed, 1),
        }
    return {"outcome": f"still {final.status} {KILLED_TASK_WAIT:.0f} s after the kill"}


def refreshed(result):
    result.refresh()
    return result


def running_pid(side: Side, result) -> int | None:
    """The pid of the worker process running `result`'s task."""
    worker = result.worker_ids[-1] if result.worker_ids else ""
    if side.backend == "default":
        # Our rows name the worker process that took the attempt over: host:pid.
        _, _, pid = worker.rpartition(":")
        return int(pid) if pid.isdigit() else None
    process = side.stack.processes.get(worker)  # manage.py db_worker runs tasks itself
    return None if process is None else process.pid


def run_side(side: Side, log_path: Path, pickups: int) -> dict:
    side.clear()
    side.start()
    try:
        figures = {"throughput": throughput(side)}
        side.clear()
        figures["pickup"] = pickup(side, log_path, pickups)
        side.clear()
        figures["sigkill"] = killed_task(side)
    finally:
        side.stop()
        side.clear()
    log(f"{side.name}: {figures}")
    return figures


def main() -> int:
    if not os.environ.get("DATABASE_URL"):
        sys.exit("DATABASE_URL is not set: run through scripts/withdb.py (make bench)")
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    log_path = RESULTS / "tasks_db-tasks.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    os.environ[LOG_ENV] = str(log_path)
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import django_tasks
    import django_tasks_db

    started = time.monotonic()
    stack = Stack(
        worker_clusters=0,
        env={
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "JOBS_EXTRA_MODULES": "bench.tasks",
            LOG_ENV: str(log_path),
        },
    )
    try:
        ours = run_side(Side("ours", "default", stack), log_path, PICKUPS)
        db = run_side(Side("django-tasks-db", "db", stack, 1.0), log_path, SLOW_PICKUPS)
        db_fast = run_side(Side("django-tasks-db 0.1 s", "db", stack, 0.1), log_path, PICKUPS)
    finally:
        stack.stop()
    db_version = getattr(django_tasks_db, "__version__", "0.13.0")

    def figure(metric: str, unit: str, value, baseline, better: str, target: str = "") -> dict:
        ratio = round(value / baseline, 3) if value is not None and baseline else None
        return {
            "metric": metric,
            "unit": unit,
            "value": value,
            "baseline": baseline,
            "ratio": ratio,
            "better": better,
            **({"target": target} if target else {}),
        }

    figures = [
        figure(
            "tasks per second, 2 worker processes",
            "tasks/s",
            ours["throughput"]["tasks_per_second"],
            db["throughput"]["tasks_per_second"],
            "higher",
        ),
        figure(
            "worker CPU per task",
            "ms",
            ours["throughput"]["worker_ms_per_task"],
            db["throughput"]["worker_ms_per_task"],
            "lower",
        ),
        figure(
            "PostgreSQL CPU per task",
            "ms",
            ours["throughput"]["postgres_ms_per_task"],
            db["throughput"]["postgres_ms_per_task"],
            "lower",
        ),
        figure(
            "pickup p50 (db_worker --interval 1)",
            "ms",
            ours["pickup"].get("p50_ms"),
            db["pickup"].get("p50_ms"),
            "lower",
            "<= 2",
        ),
        figure(
            "pickup p99 (db_worker --interval 1)",
            "ms",
            ours["pickup"].get("p99_ms"),
            db["pickup"].get("p99_ms"),
            "lower",
        ),
        figure(
            "pickup p50 (db_worker --interval 0.1)",
            "ms",
            ours["pickup"].get("p50_ms"),
            db_fast["pickup"].get("p50_ms"),
            "lower",
        ),
        figure(
            "pickup p99 (db_worker --interval 0.1)",
            "ms",
            ours["pickup"].get("p99_ms"),
            db_fast["pickup"].get("p99_ms"),
            "lower",
        ),
    ]
    for item in figures:
        target = item.get("target", "")
        if target.startswith("<=") and item["value"] is not None:
            item["met"] = item["value"] <= float(target[2:])
    result = {
        "name": "tasks_db",
        "title": f"Tasks backends: ours against django-tasks-db {db_version} "
        f"(django-tasks {django_tasks.__version__}), {TASKS} trivial tasks",
        "machine": machine(),
        "seconds": round(time.monotonic() - started, 1),
        "baseline_label": f"django-tasks-db {db_version}",
        "figures": figures,
        "sides": {"ours": ours, "django-tasks-db": db, "django-tasks-db 0.1 s": db_fast},
        "notes": [
            f"SIGKILL of the worker process running a 3 s task: ours {ours['sigkill']['outcome']};"
            f" django-tasks-db {db['sigkill']['outcome']}.",
            "Same PostgreSQL, same @task (bench.tasks.noop; pickup: bench.tasks.pickup_record),"
            " enqueued through the Tasks API in one transaction; CPU from /proc per process tree"
            " (the workers' and the postmaster's, including the done-polling of this driver).",
            f"Pickups: {PICKUPS} for ours and at --interval 0.1, {SLOW_PICKUPS} at --interval 1.",
        ],
    }
    write_result("tasks_db", result)
    print(result["title"])
    for item in figures:
        print(f"  {item['metric']}: {item['value']} vs {item['baseline']} {item['unit']}")
    print("  " + result["notes"][0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
