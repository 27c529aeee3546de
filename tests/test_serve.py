"""`make run`'s process script: Ctrl-C is a clean stop, a process that stops on its own is reported,
and gunicorn's control socket lives under DATA_DIR (not a shared ~/.gunicorn)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

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


def test_gunicorns_control_socket_is_under_the_data_dir():
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )

    assert "--control-socket ${DATA_DIR:-var}/gunicorn.ctl" in web
