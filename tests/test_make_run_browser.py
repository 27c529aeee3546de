"""`make run`'s own processes (scripts/serve.sh, honcho, the Procfile) in a real browser: sign up
on the web, the worker mails the activation, and every link in that mail leads back to the web,
not to the PORT honcho gave the worker; and the development gyms listen beside the web's port."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.db import connection, connections
from playwright.sync_api import expect, sync_playwright

from bench.stack import process_tree
from outbox.models import OutboxMail
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, database_url_for_subprocess
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
GYM_OFFSETS = (765, 1766)  # the demo gym's and the fake AimHarder's, from the web's port


def free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stack_port() -> int:
    """A web port whose gyms' ports are free too."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + max(GYM_OFFSETS) < 65536 and all(free(port + o) for o in GYM_OFFSETS):
            return port
    raise RuntimeError("no free port with free neighbours")


@pytest.fixture
def make_run(tmp_path):
    """scripts/serve.sh as `make run` starts it (withdb.py has set DATABASE_URL), on its own port,
    with as few worker processes as will do; killed afterwards, whatever the test did."""
    port = stack_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"WEB_PORT", "SITE_URL", "BIND_HOST"}},
        "DATABASE_URL": database_url_for_subprocess(),
        "PORT": str(port),
        "DATA_DIR": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "WEB_CONCURRENCY": "1",
        "Q_WORKERS": "1",
        "Q_TIMING_WORKERS": "2",
    }
    with open(tmp_path / "make-run.log", "wb") as log:
        stack = subprocess.Popen(
            ["sh", "scripts/serve.sh"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: healthy(port), timeout=90), (tmp_path / "make-run.log").read_text()
        yield port
    finally:
        stop(stack)


def healthy(port: int) -> bool:
    with (
        contextlib.suppress(OSError),
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer,
    ):
        return answer.status == 200
    return False


def stop(stack: subprocess.Popen) -> None:
    """Everything the stack started, at once: how it stops is tests/test_serve.py's subject."""
    for pid in process_tree(stack.pid):  # worker clusters run in process groups of their own
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    stack.wait(10)
    wait_for(lambda: other_sessions() == 0, timeout=15)  # so the test database can go


def other_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def page():
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM calls between browser steps
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(20_000)
            expect.set_options(timeout=20_000)
            yield page
            browser.close()
            # The test's ORM calls ran under Playwright's loop, with a connection of their own.
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_links_in_a_mail_the_worker_sends_lead_to_the_web(make_run, page):
    site = f"http://localhost:{make_run}"
    # The gyms listen beside the web's port, not at fixed ones that a second stack would share.
    demo, fake = (make_run + offset for offset in GYM_OFFSETS)
    assert wait_for(lambda: not free(demo) and not free(fake), timeout=30)
    with urllib.request.urlopen(f"http://127.0.0.1:{fake}/api/whoami", timeout=5) as answer:
        assert answer.status == 200

    page.goto(f"{site}/accounts/signup/")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=email]", "dana@example.com")
    page.fill("input[name=password1]", "a-Strong-passw0rd!")
    page.fill("input[name=password2]", "a-Strong-passw0rd!")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{site}/accounts/signup/done/")

    # The worker (honcho gave it PORT + 100) renders and sends the mail to the outbox.
    assert wait_for(lambda: OutboxMail.objects.filter(to__contains="dana").exists(), 60)
    mail = OutboxMail.objects.get(to__contains="dana")
    page.set_content(mail.html)
    links = page.eval_on_selector_all("a[href^=http]", "links => links.map(a => a.href)")
    assert links
    assert all(link.startswith(f"{site}/") for link in links), links
    text_links = re.findall(r"https?://\S+", mail.text)
    assert len(text_links) >= 2  # the activation link and the footer's
    assert all(link.startswith(site) for link in text_links), text_links

    page.click("a[href*='/accounts/activate/']")
    page.fill("input[name=password]", "a-Strong-passw0rd!")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{site}/prebookings/")
    expect(page.locator("main")).to_be_visible()
