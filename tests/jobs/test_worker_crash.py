"""A worker killed mid-job (SIGKILL, OOM) does not lose the job: it runs again later."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobAttempt
from tests.conftest import kill_tree
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue
from tests.waiting import wait_for

WORKER_ENV = {
    "JOBS_EXTRA_MODULES": "tests.jobs.sample_jobs",
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
