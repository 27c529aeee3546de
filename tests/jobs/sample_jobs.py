"""Tasks used by the jobs-layer tests (also imported by the real workers they start)."""

from __future__ import annotations

import time
from pathlib import Path

from django_tasks import TaskContext, task

from jobs.backend import Backoff
from jobs.errors import PermanentError

NO_JITTER = Backoff(base=60, factor=2, cap=3600, jitter=0)


class Boom(Exception):
    pass


@task(max_attempts=5, backoff=NO_JITTER, takes_context=True)
def flaky(context: TaskContext, fails: int) -> None:
    """Fails on its first `fails` attempts, then succeeds."""
    if context.attempt <= fails:
        raise Boom(f"attempt {context.attempt} fails on purpose")


@task(max_attempts=3, backoff=NO_JITTER)
def always_fails() -> None:
    raise Boom("this job never works")


@task(max_attempts=5, backoff=NO_JITTER)
def refuses() -> None:
    raise PermanentError("bad data: retrying cannot help")


@task(max_attempts=5, timeout=1, backoff=NO_JITTER, takes_context=True)
def sleepy(context: TaskContext, seconds: float) -> None:
    """Sleeps on its first attempt (long enough to be killed), returns at once afterwards."""
    if context.attempt == 1:
        time.sleep(seconds)


@task(max_attempts=2, backoff=NO_JITTER)
def write_marker(path: str, text: str) -> str:
    """Leaves a file behind: proof that a real worker ran it."""
    Path(path).write_text(text)
    return text


@task(max_attempts=2, timeout=30, backoff=NO_JITTER)
def slow(seconds: float) -> None:
    """Takes its time on every attempt."""
    time.sleep(seconds)


@task(max_attempts=1, backoff=NO_JITTER)
def missing_row(row: int) -> None:
    """Dies at once naming its row: letters of one cause whose messages differ by ids."""
    raise LookupError(f"row {row} of table 'accounts' has gone (checked at 0x{row:08x})")
