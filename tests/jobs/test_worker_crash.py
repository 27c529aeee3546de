"""A worker killed mid-job (SIGKILL, OOM) does not lose the job: it runs again later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from jobs import signals
from jobs.models import Job, JobAttempt
from jobs.testing import run_due_jobs
from tests.conftest import kill_tree
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue
from tests.waiting import wait_for

WORKER_ENV = {
    "JOBS_EXTRA_MODULES": "tests.jobs.sample_jobs",
    "JOBS_LEASE_MARGIN": "0",
}


@pytest.mark.django_db(transaction=True)
def test_job_of_a_worker_killed_mid_attempt_completes_later(start_process):
    job = enqueue(sample_jobs.sleepy, seconds=2.5)
    worker = start_process(["manage.py", "jobs_worker"], **WORKER_ENV)
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == "running")

    kill_tree(worker.pid)  # the whole cluster, mid-attempt
    worker.wait(10)
    start_process(["manage.py", "jobs_worker"], **WORKER_ENV)

    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == "succeeded")
    outcomes = list(
        JobAttempt.objects.filter(job=job).order_by("number").values_list("outcome", flat=True)
    )
    assert outcomes == ["crashed", "succeeded"]


@pytest.mark.django_db
def test_a_crashed_attempt_is_reported_as_a_failure_before_the_next_attempt():
    t0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    with time_machine.travel(t0, tick=False):
        job = enqueue(sample_jobs.flaky, fails=0)
    # What a worker killed mid-attempt leaves: the job running under a lease (its run_at).
    Job.objects.filter(pk=job.pk).update(
        status="running", attempts=1, started_at=t0, run_at=t0 + timedelta(seconds=30)
    )
    reported = []

    def receiver(sender, job, error, dead, **_):
        reported.append((sender, job.attempts, error, dead))

    signals.job_failed.connect(receiver)
    try:
        with time_machine.travel(t0 + timedelta(minutes=1), tick=False):
            run_due_jobs()
    finally:
        signals.job_failed.disconnect(receiver)

    assert reported == [("tests.jobs.sample_jobs.flaky", 1, "worker died during attempt 1", False)]
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 2)
