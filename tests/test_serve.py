"""`make run`'s process script: Ctrl-C is a clean stop, a process that stops on its own is reported;
and the Procfile's web line serves and stops on a process-group SIGTERM."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.stack import free_port, procfile_line
from tests.conftest import database_url_for_subprocess
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def serve(tmp_path: Path, honcho: str) -> subprocess.Popen:
    """scripts/serve.sh with stand-ins for python (setup steps) and honcho (the processes)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"python": "exit 0", "honcho": honcho}.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PORT": "8999", "DATA_DIR": str(tmp_path)}
    return subprocess.Popen(
        ["sh", str(ROOT / "scripts/serve.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # as withdb.py starts it: Ctrl-C arrives for the whole group
    )


def test_ctrl_c_stops_everything_and_exits_cleanly(tmp_path):
    # honcho ends with 130 after stopping its processes on SIGINT
    script = serve(tmp_path, "trap 'exit 130' INT; echo up; while :; do sleep 0.1; done")
    assert script.stdout.readline().strip() == ""  # the banner starts with a blank line
    time.sleep(0.5)
    os.killpg(script.pid, signal.SIGINT)

    out, err = script.communicate(timeout=10)

    assert script.returncode == 0, err
    assert "Stopped." in out


def test_a_process_stopping_on_its_own_is_reported_and_fails(tmp_path):
    script = serve(tmp_path, "exit 0")  # honcho's answer when the worker ended with 0

    out, err = script.communicate(timeout=10)

    assert script.returncode == 1
    assert "A process stopped on its own" in err
    assert "honcho stops all the others" in out  # said up front, in the banner


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_procfiles_web_line_serves_and_stops_on_a_group_sigterm(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "PORT": str(port),
        "DATA_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "2",
        "STRIPE_WEBHOOK_SECRET": "whsec_serve_test",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    # As honcho runs a Procfile line: through the shell, in a process group of its own (exec:
    # the exit status is the server's, not that of a shell the group signal also reached).
    web = subprocess.Popen(
        ["sh", "-c", "exec " + procfile_line("web")], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        assert wait_for(lambda: probe(port) == 200, timeout=30)
        status, body = request(port, "POST", "/billing/webhooks/stripe/", b"{}")
        assert status == 400
        assert json.loads(body) == {"error": "missing Stripe-Signature header"}

        os.killpg(web.pid, signal.SIGTERM)
        assert web.wait(timeout=25) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGKILL)


def probe(port: int) -> int | None:
    try:
        return request(port, "GET", "/healthz")[0]
    except OSError:
        return None
