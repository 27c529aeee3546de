"""The real `manage.py qcluster` with our broker: it runs a task and stops on a group SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_q.models import OrmQ, Success
from django_q.tasks import async_task

pytestmark = pytest.mark.django_db(transaction=True)


def write_marker(path: str, text: str) -> str:
    """The task the cluster runs: leaves a file behind."""
    Path(path).write_text(text)
    return text


def database_url() -> str:
    """The test database (pytest-django renamed it) as a URL for the child process."""
    db = connection.settings_dict
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host", "")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    user = quote(db["USER"], safe="")
    return f"postgres://{user}{password}@{quote(host, safe='')}{port}/{db['NAME']}"


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def qcluster(tmp_path):
    env = dict(os.environ, DATABASE_URL=database_url(), Q_WORKERS="2", Q_LOG_LEVEL="INFO")
    log = (tmp_path / "qcluster.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as honcho and systemd run it
    )
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


def test_qcluster_runs_a_task_and_stops_on_a_process_group_sigterm(qcluster, tmp_path):
    marker = tmp_path / "ran"
    with transaction.atomic():
        async_task("tests.jobs.test_qcluster.write_marker", str(marker), "hello")

    assert wait_for(marker.exists, timeout=30), (tmp_path / "qcluster.log").read_text()
    assert marker.read_text() == "hello"
    assert wait_for(lambda: not OrmQ.objects.exists(), timeout=10)  # acknowledged
    assert Success.objects.get().result == "hello"

    os.killpg(qcluster.pid, signal.SIGTERM)
    # Stock django-q2 hung here for ever: the sentinel died and the main process waited on it.
    assert qcluster.wait(timeout=15) == 0
    log = (tmp_path / "qcluster.log").read_text()
    assert "has stopped" in log
