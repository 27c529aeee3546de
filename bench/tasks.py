"""The benchmarks' tasks, in a module of their own: the workers import it
(``JOBS_EXTRA_MODULES=bench.tasks``) under the name the drivers enqueue it by."""

from __future__ import annotations

import os
import time

from django_tasks import task

PICKUP_LOG_ENV = "BENCH_PICKUP_LOG"


@task(max_attempts=1, timeout=30)
def pickup_record(n: int) -> None:
    """The pickup benchmark's job: its first line notes when it started running."""
    started = time.time()
    with open(os.environ[PICKUP_LOG_ENV], "a") as log:
        log.write(f"{n} {started:.6f}\n")


@task()
def noop(*args: object, **kwargs: object) -> None:
    """A backlog's unit of work, and the Tasks comparison's trivial task: nothing, but through
    the whole queue."""


@task(max_attempts=1)
def naive_book(class_id: str, member: str, key: str) -> None:
    """The naive prebooking baseline's task: book when django-q2 gets round to the schedule."""
    from prebooking.providers import get_provider

    get_provider("demo").book({"class_id": class_id, "member": member}, key)


@task(max_attempts=3, timeout=60)
def sleep(seconds: float) -> None:
    """A task long enough to be killed while it runs."""
    time.sleep(seconds)
