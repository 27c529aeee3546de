"""The real `manage.py jobs_worker` (a django-q2 cluster on our broker): it runs a job and
stops gracefully on a process-group SIGTERM, as honcho and `kill -- -PGID` send it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.db import transaction
from django_q.models import OrmQ

from jobs.models import Job, JobAttempt
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ENV = {"JOBS_EXTRA_MODULES": "tests.jobs.sample_jobs", "Q_WORKERS": "2"}


def test_worker_runs_a_job_and_stops_on_a_process_group_sigterm(start_process, tmp_path):
    # start_process gives it its own process group, as honcho and systemd run it.
    cluster = start_process(["manage.py", "jobs_worker", "--queue", "default"], **ENV)
    marker = tmp_path / "ran"
    with transaction.atomic():
        job = enqueue(sample_jobs.write_marker, path=str(marker), text="hello")

    assert wait_for(marker.exists, timeout=30)
    assert marker.read_text() == "hello"
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == "succeeded", timeout=10)
    assert OrmQ.objects.count() == 0  # the job row is the delivery

    os.killpg(cluster.pid, signal.SIGTERM)
    # Stock django-q2 hung here for ever: the sentinel died and the main process waited on it.
    assert cluster.wait(timeout=15) == 0


def test_a_group_sigterm_lets_the_running_attempt_finish(start_process, tmp_path):
    cluster = start_process(["manage.py", "jobs_worker", "--queue", "default"], **ENV)
    job = enqueue(sample_jobs.slow, seconds=1.5)
    assert wait_for(lambda: Job.objects.get(pk=job.pk).status == "running", timeout=30)
    time.sleep(0.2)

    os.killpg(cluster.pid, signal.SIGTERM)

    assert cluster.wait(timeout=15) == 0
    [attempt] = JobAttempt.objects.filter(job=job)
    assert attempt.outcome == "succeeded"  # finished, not killed mid-attempt
    assert not Path(f"/proc/{cluster.pid}").exists()


def cluster_of(supervisor: int) -> int:
    """The pid of the qcluster process a jobs_worker supervisor started."""

    def child() -> int | None:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        return int(children[0]) if children else None

    assert wait_for(lambda: child() is not None, timeout=10)
    return child()


def test_nice_lowers_the_cluster_and_its_own_autogroup(start_process):
    supervisor = start_process(
        ["manage.py", "jobs_worker", "--queue", "default", "--nice", "7"], **ENV
    )
    cluster = cluster_of(supervisor.pid)
    assert wait_for(lambda: Path(f"/proc/{cluster}/cmdline").read_bytes().count(b"qcluster"), 10)

    # /proc/PID/stat: field 6 is the session id, field 19 the nice value
    fields = Path(f"/proc/{cluster}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(fields[3]) == cluster  # a session (and so an autogroup) of its own
    assert int(fields[16]) == 7
    autogroup = Path(f"/proc/{cluster}/autogroup")
    if autogroup.exists() and Path("/proc/sys/kernel/sched_autogroup_enabled").read_text() == "1\n":
        # "/autogroup-123 nice 7": without this, nice values weigh only inside one session
        assert autogroup.read_text().split()[-1] == "7"

    os.killpg(supervisor.pid, signal.SIGTERM)
    assert supervisor.wait(timeout=15) == 0


def test_nice_out_of_range_is_refused(start_process):
    supervisor = start_process(["manage.py", "jobs_worker", "--nice", "20"], **ENV)
    assert supervisor.wait(timeout=30) != 0
