"""The real `manage.py qcluster` with our broker: it runs a task and stops on a group SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from django.db import transaction
from django_q.models import OrmQ
from django_q.tasks import async_task

from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def write_marker(path: str, text: str) -> str:
    """The task the cluster runs: leaves a file behind."""
    Path(path).write_text(text)
    return text


def test_qcluster_runs_a_task_and_stops_on_a_process_group_sigterm(start_process, tmp_path):
    # start_process gives it its own process group, as honcho and systemd run it.
    cluster = start_process(["manage.py", "qcluster"], Q_WORKERS="2")
    marker = tmp_path / "ran"
    with transaction.atomic():
        async_task("tests.jobs.test_qcluster.write_marker", str(marker), "hello")

    assert wait_for(marker.exists, timeout=30)
    assert marker.read_text() == "hello"
    assert wait_for(lambda: not OrmQ.objects.exists(), timeout=10)  # acknowledged

    os.killpg(cluster.pid, signal.SIGTERM)
    # Stock django-q2 hung here for ever: the sentinel died and the main process waited on it.
    assert cluster.wait(timeout=15) == 0
