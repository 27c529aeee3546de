"""``manage.py jobs_worker [--queue NAME]``: a django-q2 cluster for one queue, stopped cleanly.

The Procfile's worker lines run this. It starts ``manage.py qcluster`` as a child in a process
group of its own and owns the signals: SIGTERM, SIGINT or SIGHUP sent to this process -- or to
its whole process group, as honcho, ``kill -- -PGID`` and a terminal's Ctrl-C do -- reach only
this process, which asks the cluster's main process to stop (one SIGTERM), so the workers finish
their running attempts before the cluster exits. A process-group SIGTERM that reached the
cluster's own processes would kill its workers mid-attempt and leave django-q2's main process
waiting for ever on the dead sentinel (docs/queue.md).

If this process dies without a chance to act (SIGKILL), the kernel sends the cluster the same
SIGTERM (PR_SET_PDEATHSIG), so no cluster outlives its supervisor.

``--nice N`` lowers the cluster's CPU priority so that background work yields the cores to the
web's acks. ``nice -n 10 manage.py jobs_worker`` alone does not do that on Linux: with the
scheduler's autogroups (``/proc/sys/kernel/sched_autogroup_enabled``, on by default) each
session shares the CPU equally with every other session whatever its processes' nice values, and
a Procfile runner or a service manager starts each process in a session of its own. So the
cluster runs in a session of its own, and N is both its processes' nice value and its
autogroup's (``/proc/self/autogroup``, see sched(7)). Under a cgroup CPU controller (systemd
units) the cgroup's weight rules instead: set ``CPUWeight=`` on the worker's unit
(docs/deploy.md).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _lower_priority(nice: int) -> None:
    """In the child, after setsid and before exec: the process's nice value, and its new
    session's autogroup's (Linux; absent elsewhere, and without autogroups the file refuses).
    Never raises the priority: started under a higher nice value, the cluster keeps it."""
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    for _ in range(5):
        try:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(str(nice))
            return
        except BlockingIOError:  # EAGAIN: the kernel takes one change per 100 ms, machine-wide
            time.sleep(0.1)
        except OSError:
            return


class Command(BaseCommand):
    help = "Run the job workers of one queue (a django-q2 cluster) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            default=os.environ.get("Q_CLUSTER_NAME", settings.Q_CLUSTER["name"]),
            help="the queue whose jobs this cluster runs (default: %(default)s)",
        )
        parser.add_argument(
            "--nice",
            type=int,
            default=0,
            help="the cluster's CPU niceness, 0 to 19: its processes' and its session's "
            "autogroup's (default: %(default)s)",
        )

    def handle(self, *args: object, queue: str, nice: int, **options: object) -> None:
        if not queue or len(queue) > 50:
            raise CommandError("--queue must be a queue name of 1 to 50 characters")
        if not 0 <= nice <= 19:
            raise CommandError("--nice must be 0 (normal priority) to 19 (lowest)")

        def before_exec() -> None:
            _die_with_parent()
            if nice:
                _lower_priority(nice)

        env = {**os.environ, "Q_CLUSTER_NAME": queue, "JOBS_WORKER_QUEUE": queue}
        manage = Path(settings.BASE_DIR) / "manage.py"
        cluster = subprocess.Popen(
            [sys.executable, str(manage), "qcluster"],
            env=env,
            # A session of its own: its own process group (signals stay ours to forward) and,
            # on Linux, its own autogroup for --nice to weigh.
            start_new_session=True,
            preexec_fn=before_exec,
        )

        def stop(signum: int, _frame: FrameType | None) -> None:
            if cluster.poll() is None:
                cluster.send_signal(signal.SIGTERM)

        for signum in FORWARDED:
            signal.signal(signum, stop)
        while True:
            try:
                code = cluster.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
        if code not in (0, -signal.SIGTERM):
            sys.exit(code if code > 0 else 128 - code)
