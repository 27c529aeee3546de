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
from pathlib import Path

import pytest

from bench.stack import free_port, procfile_line
from tests.conftest import database_url_for_subprocess
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def make_run(tmp_path: Path, honcho: str, sigint: signal.Handlers) -> subprocess.Popen:
    """`make run`'s recipe (withdb.py, then scripts/serve.sh) with stand-ins for python's set-up
    steps and for honcho, started with SIGINT at `sigint` as it may be inherited."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"python": "exit 0", "honcho": honcho}.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PORT": "8999",
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/unused",  # withdb.py starts no server
    }

    def inherit() -> None:
        signal.signal(signal.SIGINT, sigint)

    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/withdb.py"), "--", "sh", "scripts/serve.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group of its own, as make's in a terminal
        preexec_fn=inherit,  # before exec, as a parent shell sets it
    )


@contextlib.contextmanager
def started(process: subprocess.Popen):
    """Whatever happens in the test, the process group it started is gone afterwards."""
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for child in process_groups_of(process):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=5)


def process_groups_of(process: subprocess.Popen) -> list[int]:
    """Process groups started under withdb.py (serve.sh runs in a session of its own)."""
    groups = []
    with contextlib.suppress(OSError):
        for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                groups.append(os.getpgid(int(pid)))
    return groups


# honcho ends with 130 after stopping its processes on SIGINT
HONCHO_ON_CTRL_C = "trap 'exit 130' INT; touch \"$DATA_DIR/up\"; while :; do sleep 0.1; done"


@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["default", "ignored"])
def test_ctrl_c_says_stopped_and_exits_cleanly(tmp_path, sigint):
    with started(make_run(tmp_path, HONCHO_ON_CTRL_C, sigint)) as run:
        assert wait_for((tmp_path / "up").exists, timeout=10)
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group

        out, err = run.communicate(timeout=10)

    assert run.returncode == 0, err
    assert out.rstrip().endswith("Stopped.")
    assert "stopped on its own" not in err


def test_a_process_stopping_on_its_own_is_reported_and_fails(tmp_path):
    # honcho's answer when the worker ended with 0
    with started(make_run(tmp_path, "exit 0", signal.SIG_DFL)) as run:
        out, err = run.communicate(timeout=10)

    assert run.returncode == 1
    assert "A process stopped on its own" in err
    assert "honcho stops all the others" in out  # said up front, in the banner
    assert "Stopped." not in out


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
