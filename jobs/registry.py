"""Job types: a function of ids plus the policy it runs under (attempts, backoff, queue)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from jobs.errors import JobNotRegistered

if TYPE_CHECKING:
    from jobs.models import Job


@dataclass(frozen=True)
class JobType:
    """One kind of job and its retry policy.

    Backoff before attempt n+1 is ``min(cap, base * factor ** (n - 1))`` seconds, spread by
    +/- ``jitter`` (a fraction) so that jobs that failed together do not retry together.
    A running attempt holds a lease of ``timeout`` seconds plus a margin; with ``heartbeat``
    (seconds) the lease is kept that short and renewed while the attempt runs, so a crash is
    noticed within ``heartbeat`` seconds even for a job that runs for minutes.

    ``on_outcome(job, outcome)`` is for a job whose app records the outcome of its work on a
    row of its own (a Stripe event's status): the job function writes success itself, in its
    own transaction; this is called, in the jobs layer's transaction, for the outcomes the
    function cannot write: ``dead`` (it failed for the last time, or permanently), and staff's
    ``replay``, ``resolve`` and ``discard``.
    """

    name: str
    func: Callable[..., object]
    max_attempts: int = 5
    backoff_base: float = 60.0
    backoff_factor: float = 2.0
    backoff_cap: float = 6 * 3600.0
    jitter: float = 0.1
    timeout: int = 60
    queue: str = "default"
    atomic: bool = True  # run the function and record success in one transaction
    heartbeat: float | None = None
    on_outcome: Callable[[Job, str], None] | None = None

    def backoff(self, attempt: int) -> timedelta:
        """Delay after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.backoff_cap, self.backoff_base * self.backoff_factor ** (attempt - 1))
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return timedelta(seconds=delay)


_registry: dict[str, JobType] = {}


def job(name: str, **policy: object) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Declare a job type: ``@job("billing.process_event", max_attempts=5)``."""

    def register(func: Callable[..., object]) -> Callable[..., object]:
        existing = _registry.get(name)
        if existing is not None and existing.func is not func:
            raise ValueError(f"job {name!r} is declared twice")
        _registry[name] = JobType(name=name, func=func, **policy)
        return func

    return register


def get_job_type(name: str) -> JobType:
    try:
        return _registry[name]
    except KeyError:
        raise JobNotRegistered(f"no job type named {name!r}") from None


def job_types() -> list[JobType]:
    return sorted(_registry.values(), key=lambda job_type: job_type.name)
