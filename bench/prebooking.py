"""Benchmark: lateness and order of prebookings at the demo gym, ours against the naive design.

    make bench-prebooking
    (or: python scripts/withdb.py --name bench -- python -m bench.prebooking)

Starts the real stack on a private database (the web server, the default and the timing
workers, the demo gym), queues a backlog of a few thousand trivial jobs on the default queue, then
creates, through the same service the web form uses:
  - 100 prebookings opening at one instant ~60 s ahead, and 100 spread over the next minute;
  - the same 200 again for the naive baseline: a plain django-q2 ONCE schedule at opens_at
    (default cluster) that sends the booking when it runs.
Lateness is the demo gym's kernel receive time minus opens_at. Writes
bench/results/prebooking.json and stops by itself (in under five minutes).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.stack import RESULTS, Stack, machine, setup_django

LEAD_SECONDS = 5  # the armer jobs start 5 s ahead (the default)
SAME_INSTANT = 100
SPREAD = 100
SPREAD_SECONDS = 60
AHEAD_SECONDS = 60
BACKLOG = 2000
NAIVE_WAIT_SECONDS = 120  # after the last opening; what has not arrived by then is "unsent"
TARGETS = {"p99_ms": 10.0, "max_ms": 50.0, "fifo_violations": 0, "duplicates": 0}


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(expected: list[dict], arrivals: list, ended: datetime) -> dict:
    """Lateness, FIFO violations, duplicates and missing requests for one set of bookings.

    A request that never arrived was at least `ended - opens_at` late: reported as a bound.
    """
    by_key: dict[tuple[str, str], list] = {}
    for arrival in arrivals:
        by_key.setdefault((arrival.class_id, arrival.member), []).append(arrival)
    lateness = []
    duplicates = missing = 0
    unsent_for: list[float] = []
    first_arrival = {}
    for item in expected:
        seen = sorted(
            by_key.get((item["class_id"], item["member"]), []), key=lambda a: a.arrived_at
        )
        if not seen:
            missing += 1
            unsent_for.append((ended - item["opens_at"]).total_seconds() * 1000)
            continue
        # A retry after a 425/5xx would carry the same key; a second key would be a duplicate.
        duplicates += (
            len({a.request_key for a in seen})
            - 1
            + sum(1 for a in seen[1:] if a.status_code == 201)
        )
        first_arrival[item["order"]] = seen[0].arrived_at
        lateness.append((seen[0].arrived_at - item["opens_at"]).total_seconds() * 1000)
    # FIFO: among prebookings sharing an instant, a later-created one arriving before an
    # earlier-created one is a violation (counted once per late-created request).
    violations = 0
    groups: dict[datetime, list[dict]] = {}
    for item in expected:
        groups.setdefault(item["opens_at"], []).append(item)
    for items in groups.values():
        arrived = sorted(
            (first_arrival[i["order"]], i["order"]) for i in items if i["order"] in first_arrival
        )
        highest = -1
        for _, order in arrived:
            if order < highest:
                violations += 1
            highest = max(highest, order)
    return {
        "requests": len(expected),
        "arrived": len(lateness),
        "missing": missing,
        "missing_late_by_at_least_ms": _round(min(unsent_for)) if unsent_for else None,
        "lateness_ms": {
            "min": _round(min(lateness) if lateness else None),
            "p50": _round(percentile(lateness, 0.50)),
            "p99": _round(percentile(lateness, 0.99)),
            "max": _round(max(lateness) if lateness else None),
        },
        "fifo_violations": violations,
        "duplicates": duplicates,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def enqueue_backlog(count: int) -> None:
    """A webhook/email backlog: `count` small jobs on the default queue, queued at once."""
    from django.db import connection
    from django.utils import timezone

    from jobs.models import Job

    now = timezone.now()
    Job.objects.bulk_create(
        [
            Job(name="bench.tasks.noop", queue="default", run_at=now, max_attempts=1, timeout=60)
            for _ in range(count)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify('jobs:default', '')")


def create_ours(users: list, instant: datetime, spread_start: datetime, run: str) -> list[dict]:
    from devgyms.demo_gym import register_class
    from prebooking import services

    expected = []
    for user in users[:SAME_INSTANT]:
        class_id = f"ours-{run}-same"
        register_class(class_id, instant, capacity=SAME_INSTANT)
        services.create_prebooking(
            user, "demo", {"class_id": class_id, "member": user.username}, instant
        )
        expected.append({"class_id": class_id, "member": user.username, "opens_at": instant})
    for index, user in enumerate(users[SAME_INSTANT : SAME_INSTANT + SPREAD]):
        opens_at = spread_start + timedelta(seconds=SPREAD_SECONDS * index / SPREAD)
        class_id = f"ours-{run}-spread-{index:03d}"
        register_class(class_id, opens_at, capacity=1)
        services.create_prebooking(
            user, "demo", {"class_id": class_id, "member": user.username}, opens_at
        )
        expected.append({"class_id": class_id, "member": user.username, "opens_at": opens_at})
    for order, item in enumerate(expected):
        item["order"] = order
    return expected


def create_naive(users: list, instant: datetime, spread_start: datetime, run: str) -> list[dict]:
    from django_q.models import Schedule

    from devgyms.demo_gym import register_class

    expected = []
    plan = [(f"naive-{run}-same", instant, user) for user in users[:SAME_INSTANT]] + [
        (
            f"naive-{run}-spread-{index:03d}",
            spread_start + timedelta(seconds=SPREAD_SECONDS * index / SPREAD),
            user,
        )
        for index, user in enumerate(users[SAME_INSTANT : SAME_INSTANT + SPREAD])
    ]
    for order, (class_id, opens_at, user) in enumerate(plan):
        register_class(class_id, opens_at, capacity=SAME_INSTANT)
        Schedule.objects.create(
            func="bench.tasks.naive_book",
            kwargs=repr({"class_id": class_id, "member": user.username, "key": f"naive-{order}"}),
            schedule_type=Schedule.ONCE,
            repeats=-1,
            next_run=opens_at,
        )
        expected.append(
            {"class_id": class_id, "member": user.username, "opens_at": opens_at, "order": order}
        )
    return expected


def summary_figures(result: dict) -> dict:
    """The figures, each against the naive schedule, for bench/results/SUMMARY.md."""
    figures = []
    for group in ("same_instant", "spread", "all"):
        ours, naive = result["ours"][group], result["naive_once_schedule"][group]
        for stat, target in (("p50", None), ("p99", 10.0), ("max", 50.0)):
            value, baseline = ours["lateness_ms"][stat], naive["lateness_ms"][stat]
            figures.append(
                {
                    "metric": f"lateness {stat}, {group.replace('_', ' ')}",
                    "value": value,
                    "baseline": baseline,
                    "unit": "ms",
                    "better": "lower",
                    "target": f"<= {target:g}" if target and group == "all" else None,
                    "met": (value is not None and value <= target)
                    if target and group == "all"
                    else None,
                }
            )
        for count in ("fifo_violations", "duplicates", "missing"):
            figures.append(
                {
                    "metric": f"{count.replace('_', ' ')}, {group.replace('_', ' ')}",
                    "value": ours[count],
                    "baseline": naive[count],
                    "unit": "",
                    "better": "lower",
                    "target": "0" if group == "all" and count != "missing" else None,
                    "met": ours[count] == 0 if group == "all" and count != "missing" else None,
                }
            )
    return {
        "name": "prebooking",
        "title": "Prebooking lateness at the demo gym: ours vs a plain django-q2 ONCE schedule",
        "figures": figures,
        "notes": [
            "lateness = the gym's kernel receive timestamp of the request - opens_at",
            "100 prebookings at one instant ~60 s ahead + 100 spread over a minute, with a "
            "backlog of trivial tasks on the default queue",
        ],
    }


def main() -> int:
    if not os.environ.get("DATABASE_URL"):
        sys.exit("DATABASE_URL is not set: run through scripts/withdb.py (make bench-prebooking)")
    started = time.time()
    stack = Stack(
        web_workers=2,
        timing_cluster=True,
        gym=True,
        env={
            "PREBOOKING_LEAD_SECONDS": str(LEAD_SECONDS),
            "LOG_LEVEL": "INFO",
            "JOBS_EXTRA_MODULES": "bench.tasks",  # the backlog's and the baseline's jobs
        },
    )
    # The driver enqueues tasks and creates prebookings: same settings (and SECRET_KEY, which
    # signs django-q2 packages) as the processes that run them.
    os.environ.update(stack.environment())
    setup_django()
    from django.contrib.auth import get_user_model

    from prebooking.models import DemoGymRequest

    try:
        stack.start()
        time.sleep(3)
        load_before = os.getloadavg()
        enqueue_backlog(BACKLOG)
        run = datetime.now(UTC).strftime("%H%M%S")
        User = get_user_model()
        users = [
            User.objects.get_or_create(username=f"bench-{number:03d}")[0]
            for number in range(SAME_INSTANT + SPREAD)
        ]
        instant = datetime.fromtimestamp(math.ceil(time.time() + AHEAD_SECONDS), tz=UTC)
        spread_start = instant - timedelta(seconds=SPREAD_SECONDS / 2) + timedelta(seconds=0.3)
        ours = create_ours(users, instant, spread_start, run)
        naive = create_naive(users, instant, spread_start, run)
        print(f"instant {instant.isoformat()}; waiting for {len(ours) + len(naive)} requests")
        last = max(item["opens_at"] for item in ours + naive)
        # Ours are done a second after the last opening; the naive ones wait for django-q2's
        # 30 s scheduler and then behind the backlog on the default queue.
        deadline = last.timestamp() + NAIVE_WAIT_SECONDS
        while time.time() < deadline:
            arrived = DemoGymRequest.objects.filter(class_id__contains=f"-{run}-").count()
            if arrived >= len(ours) + len(naive) and time.time() > last.timestamp() + 2:
                break
            time.sleep(1)
        time.sleep(2)
        from jobs.models import Job

        backlog_left = Job.objects.filter(name="bench.tasks.noop", status="queued").count()
        arrivals = list(DemoGymRequest.objects.filter(class_id__contains=f"-{run}-"))
        ended = datetime.now(UTC)
        ours_arrivals = [a for a in arrivals if a.class_id.startswith("ours-")]
        naive_arrivals = [a for a in arrivals if a.class_id.startswith("naive-")]
        same = [i for i in ours if i["class_id"].endswith("-same")]
        spread = [i for i in ours if not i["class_id"].endswith("-same")]
        naive_same = [i for i in naive if i["class_id"].endswith("-same")]
        naive_spread = [i for i in naive if not i["class_id"].endswith("-same")]
        result = {
            "benchmark": "prebooking",
            "run_at": datetime.now(UTC).isoformat(),
            "duration_s": round(time.time() - started, 1),
            "machine": {
                **machine(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            },
            "setup": {
                "same_instant": SAME_INSTANT,
                "spread": SPREAD,
                "spread_seconds": SPREAD_SECONDS,
                "instant_ahead_s": AHEAD_SECONDS,
                "lead_seconds": LEAD_SECONDS,
                "backlog_tasks_on_default_queue": BACKLOG,
                "backlog_left_at_end": backlog_left,
                "measured_at": "demo gym, kernel receive timestamp (SO_TIMESTAMPNS) - opens_at",
            },
            "ours": {
                "same_instant": summarise(same, ours_arrivals, ended),
                "spread": summarise(spread, ours_arrivals, ended),
                "all": summarise(ours, ours_arrivals, ended),
            },
            "naive_once_schedule": {
                "same_instant": summarise(naive_same, naive_arrivals, ended),
                "spread": summarise(naive_spread, naive_arrivals, ended),
                "all": summarise(naive, naive_arrivals, ended),
            },
            "targets": TARGETS,
        }
        overall = result["ours"]["all"]
        result["targets_met"] = bool(
            overall["missing"] == 0
            and overall["lateness_ms"]["p99"] is not None
            and overall["lateness_ms"]["p99"] <= TARGETS["p99_ms"]
            and overall["lateness_ms"]["max"] <= TARGETS["max_ms"]
            and overall["fifo_violations"] == 0
            and overall["duplicates"] == 0
        )
        result.update(summary_figures(result))
        (RESULTS / "prebooking.json").write_text(json.dumps(result, indent=2) + "\n")
        print(
            json.dumps({"ours": result["ours"], "naive": result["naive_once_schedule"]}, indent=2)
        )
        print(f"targets met: {result['targets_met']}; wrote {RESULTS / 'prebooking.json'}")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
