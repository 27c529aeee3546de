"""Job types used by the jobs-layer tests (also imported by the real workers they start)."""

from __future__ import annotations

import time
from pathlib import Path

from jobs import job
from jobs.errors import PermanentError
from jobs.services import current_job

NO_JITTER = {"backoff_base": 60, "backoff_factor": 2, "backoff_cap": 3600, "jitter": 0}


class Boom(Exception):
    pass


@job("tests.flaky", max_attempts=5, **NO_JITTER)
def flaky(fails: int) -> None:
    """Fails on its first `fails` attempts, then succeeds."""
    if current_job.get().attempts <= fails:
        raise Boom(f"attempt {current_job.get().attempts} fails on purpose")


@job("tests.always_fails", max_attempts=3, **NO_JITTER)
def always_fails() -> None:
    raise Boom("this job never works")


@job("tests.refuses", max_attempts=5, **NO_JITTER)
def refuses() -> None:
    raise PermanentError("bad data: retrying cannot help")


@job("tests.sleepy", max_attempts=5, timeout=1, **NO_JITTER)
def sleepy(seconds: float) -> None:
    """Sleeps on its first attempt (long enough to be killed), returns at once afterwards."""
    if current_job.get().attempts == 1:
        time.sleep(seconds)


@job("tests.write_marker", max_attempts=2, **NO_JITTER)
def write_marker(path: str, text: str) -> str:
    """Leaves a file behind: proof that a real worker ran it."""
    Path(path).write_text(text)
    return text


@job("tests.slow", max_attempts=2, timeout=30, **NO_JITTER)
def slow(seconds: float) -> None:
    """Takes its time on every attempt."""
    time.sleep(seconds)


@job("tests.missing_row", max_attempts=1, **NO_JITTER)
def missing_row(row: int) -> None:
    """Dies at once naming its row: letters of one cause whose messages differ by ids."""
    raise LookupError(f"row {row} of table 'accounts' has gone (checked at 0x{row:08x})")
