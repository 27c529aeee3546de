"""The commands the README shows for a running `make run`, run as a user types them in another
terminal: no TTY needed for `make createsuperuser`, and manage.py commands that find the
development database `make run` keeps under DATA_DIR."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import database_url_for_subprocess
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
# What a user's terminal has: none of the variables `make test` sets for this run.
USER_ENV = {
    key: value
    for key, value in os.environ.items()
    if key
    not in {
        "DATABASE_URL",
        "DATA_DIR",
        "PORT",
        "WEB_PORT",
        "TESTING",
        "MAKELEVEL",
        "MAKEFLAGS",
        "MFLAGS",
    }
}
# withdb.py starts its command once the server is up and set up.
UP_AND_WAIT = 'touch "$DATA_DIR/up" && exec sleep 600'
CURRENT_DATABASE = "from django.db import connection; print(connection.settings_dict['NAME'])"


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=ROOT,
        env={**USER_ENV, **env},
        stdin=subprocess.DEVNULL,  # no TTY, as from a script or an IDE's task runner
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_make_createsuperuser_takes_its_answers_from_the_environment_without_a_tty(
    django_user_model,
):
    result = run(
        ["make", "-o", "install", "createsuperuser"],
        DATABASE_URL=database_url_for_subprocess(),
        DJANGO_SUPERUSER_USERNAME="root",
        DJANGO_SUPERUSER_EMAIL="root@example.com",
        DJANGO_SUPERUSER_PASSWORD="a-long-admin-passw0rd",
    )

    assert result.returncode == 0, result.stderr
    admin = django_user_model.objects.get(username="root")
    assert admin.is_superuser
    assert admin.check_password("a-long-admin-passw0rd")


@pytest.fixture
def dev_database():
    """A DATA_DIR with the development PostgreSQL up, as `make run` leaves it while it runs."""
    # Short and traversable: the server's Unix socket lives in it and its own user opens it.
    data_dir = Path(tempfile.mkdtemp(prefix="dev", dir="/tmp"))
    data_dir.chmod(0o755)
    holder = subprocess.Popen(
        [sys.executable, "scripts/withdb.py", "--name", "dev", "--", "sh", "-c", UP_AND_WAIT],
        cwd=ROOT,
        env={**USER_ENV, "DATA_DIR": str(data_dir)},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_for((data_dir / "up").exists, 60)
        yield data_dir
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGTERM)  # withdb.py stops the command, then PostgreSQL
        try:
            holder.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(holder.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_manage_py_finds_the_database_of_a_running_make_run(dev_database):
    result = run(
        [sys.executable, "manage.py", "shell", "-c", CURRENT_DATABASE], DATA_DIR=str(dev_database)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "app"
    assert "Warning" not in result.stderr


def test_make_manage_runs_a_command_against_the_running_database(dev_database):
    result = run(
        ["make", "-o", "install", "manage", f'ARGS=shell -c "{CURRENT_DATABASE}"'],
        DATA_DIR=str(dev_database),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "app"
    assert "sharing it, leaving it running" in result.stderr


def test_without_make_run_manage_py_says_how_to_get_a_database(tmp_path):
    result = run([sys.executable, "manage.py", "check"], DATA_DIR=str(tmp_path))

    assert result.returncode != 0
    assert "no `make run` is up" in result.stderr
    assert "make manage" in result.stderr
