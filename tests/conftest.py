"""Fixtures shared by the whole suite. The database is real PostgreSQL (see `make test`)."""

from __future__ import annotations

import pytest


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password="correct horse battery"
    )


def database_url_for_subprocess() -> str:
    """A DATABASE_URL for the database this test run uses, for the real processes tests start."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host", "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{quote(host, safe='')}{port}/{db['NAME']}"


@pytest.fixture
def start_process():
    """Start real project processes (workers, servers) against the test database; stop them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    started: list[subprocess.Popen] = []
    root = Path(__file__).resolve().parent.parent

    def start(args: list[str], **env: str) -> subprocess.Popen:
        environment = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), **env}
        process = subprocess.Popen(
            [sys.executable, *args], cwd=root, env=environment, start_new_session=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait(10)


def kill_tree(pid: int) -> None:
    """SIGKILL a started process, its process group and its children's own groups.

    ``manage.py jobs_worker`` runs its cluster in a process group of its own (so a group
    SIGTERM reaches only the supervisor); a crash test must kill that group too.
    """
    import contextlib
    import os
    import signal

    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as children:
        for child in children.read().split():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(child), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(live_server):
    """A Playwright page in Debian's Chromium, pointed at the live test server."""
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from django.db import connections
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=live_server.url)
        page.set_default_timeout(15000)
        expect.set_options(timeout=15000)  # web-first assertions wait as long as actions
        yield page
        browser.close()
        # The test's ORM calls ran under Playwright's loop, in a context of their own: their
        # connection is not the one pytest-django closes, and would block dropping the test
        # database ("database is being accessed by other users").
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
