"""Fault injection against the real stack: each scenario starts the web server, worker clusters
and PostgreSQL, injects a fault, and checks the database afterwards.

    make faults                      (every scenario)
    make faults FAULTS=quick         (the subset CI runs)
    python scripts/withdb.py --name faults -- python -m bench.faults [scenario ...]

Prints one line per scenario and ``N passed, M failed``; exits non-zero when one failed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
import zoneinfo
from collections.abc import Callable

from bench.loadgen import closed_loop, customer_event, open_loop, post, signature
from bench.stack import (
    BENCH_SECRET,
    ROOT,
    Stack,
    children,
    cluster_roles,
    restart_database,
    setup_django,
    write_result,
)

SCENARIOS: dict[str, Callable[[], dict]] = {}
QUICK = ["bad_input", "worker_sigkill", "worker_process_sigkill", "cluster_sigkill"]


def scenario(func: Callable[[], dict]) -> Callable[[], dict]:
    SCENARIOS[func.__name__] = func
    return func


class Failed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def new_events(count: int) -> tuple[list[str], list[str]]:
    prefix = uuid.uuid4().hex[:8]
    bodies = [customer_event(number, prefix, pad=200) for number in range(count)]
    return bodies, [json.loads(body)["id"] for body in bodies]


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def event_statuses(stripe_ids: list[str]) -> dict[str, int]:
    from django.db.models import Count

    from billing.models import StripeEvent

    rows = (
        StripeEvent.objects.filter(stripe_id__in=stripe_ids)
        .values("status")
        .annotate(n=Count("pk"))
    )
    return {row["status"]: row["n"] for row in rows}


def attempts_per_event_job(stripe_ids: list[str]) -> dict[str, int]:
    """How many times each event's processing job ran to success (must be exactly once)."""
    from django.db.models import Count, Q

    from jobs.models import Job

    jobs = (
        Job.objects.filter(stripe_events__stripe_id__in=stripe_ids)
        .annotate(wins=Count("attempt_log", filter=Q(attempt_log__outcome="succeeded")))
        .values_list("wins", flat=True)
    )
    counts: dict[str, int] = {}
    for wins in jobs:
        counts[str(wins)] = counts.get(str(wins), 0) + 1
    counts["jobs"] = len(jobs)
    return counts


@scenario
def duplicate_storm() -> dict:
    """The two-customer billing story in order, shuffled, and every event 10 times at once:
    one final state (subscriptions, wallet, emails), each event applied once."""
    import subprocess

    with Stack() as stack:
        completed = subprocess.run(
            [sys.executable, "bench/billing_acceptance.py", "--url", stack.url, "--timeout", "300"],
            cwd=ROOT,
            env={**stack.environment(), "STRIPE_WEBHOOK_SECRET": BENCH_SECRET},
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
    lines = completed.stdout.strip().splitlines()
    check(completed.returncode == 0, "; ".join(lines[-6:]) or completed.stderr[-500:])
    return {"report": lines}


# A killed worker's or cluster's jobs run again (are claimed and start) within this.
LOST_TARGET_SECONDS = 10.0


def seconds_lost(stripe_ids: list[str], killed_at: float) -> dict:
    """What a kill cost the jobs it hit, from the attempts log: for each crashed attempt's job,
    the seconds from the kill until it was claimed again (its crash noticed, the next attempt
    starting) and until that attempt succeeded (they were running or about to when killed:
    without the kill they would have finished about then)."""
    from jobs.models import Job, JobAttempt

    crashed = Job.objects.filter(
        stripe_events__stripe_id__in=stripe_ids, attempt_log__outcome="crashed"
    ).values_list("pk", flat=True)
    finished = JobAttempt.objects.filter(job_id__in=list(crashed), outcome="succeeded")
    lost = sorted(attempt.finished_at.timestamp() - killed_at for attempt in finished)
    noticed = JobAttempt.objects.filter(job_id__in=list(crashed), outcome="crashed")
    claimed_again = sorted(attempt.finished_at.timestamp() - killed_at for attempt in noticed)
    return {
        "crashed_jobs": len(crashed),
        "max_seconds_to_claim_again": round(claimed_again[-1], 2) if claimed_again else None,
        "rerun_and_done": len(lost),
        "max_seconds_lost": round(lost[-1], 2) if lost else None,
        "median_seconds_lost": round(lost[len(lost) // 2], 2) if lost else None,
    }


def worker_processes(supervisor: int) -> list[int]:
    """The worker processes of a ``jobs_worker`` tree (not its pusher or monitor)."""
    roles = cluster_roles(supervisor)
    sentinels = [child for pid in children(supervisor) for child in children(pid)]
    return [pid for sentinel in sentinels for pid in children(sentinel) if pid not in roles]


def drain_with_a_kill(clusters: int, kill: Callable[[Stack], None], count: int = 2000) -> dict:
    """Accept `count` events with the workers stopped, start `clusters` clusters, apply `kill`
    a second into the drain and wait for it to end: every event processed once, and what the
    kill cost the jobs it hit."""
    bodies, ids = new_events(count)
    with Stack(worker_clusters=0) as stack:
        sent = closed_loop(stack.url, bodies, BENCH_SECRET)
        check(sent["ok"] == len(bodies), f"not every event was accepted: {sent['statuses']}")
        stack.worker_clusters = clusters
        started = time.monotonic()
        stack.start_workers()
        # Kill once the drain runs: the first events processed.
        wait_until(lambda: event_statuses(ids).get("processed", 0) > 0, 60)
        time.sleep(1.0)
        killed_at = time.time()
        kill(stack)
        done = wait_until(lambda: event_statuses(ids).get("processed", 0) == len(ids), 240)
        drain = round(time.monotonic() - started, 1)
        statuses = event_statuses(ids)
        runs = attempts_per_event_job(ids)
        lost = seconds_lost(ids, killed_at)
    check(done, f"not every event processed: {statuses}")
    check(set(runs) <= {"1", "jobs"}, f"a job succeeded more than once: {runs}")
    check(lost["crashed_jobs"] > 0, f"the kill hit no job (killed between batches?): {lost}")
    again = lost["max_seconds_to_claim_again"]
    check(
        again is not None and again <= LOST_TARGET_SECONDS,
        f"a killed job ran again too late: {lost}, drain {drain} s",
    )
    return {"events": len(ids), "drain_seconds": drain, "successes_per_job": runs, **lost}


@scenario
def worker_process_sigkill() -> dict:
    """kill -9 one worker process of the only cluster during a 2,000-event drain: its claimed
    jobs (the one running and the rest of its batch) run again within JOBS_LEASE_SECONDS."""

    def kill_one_worker_process(stack: Stack) -> None:
        workers = worker_processes(stack.processes["worker0"].pid)
        check(bool(workers), "no worker process found")
        os.kill(workers[0], signal.SIGKILL)

    return drain_with_a_kill(1, kill_one_worker_process)


@scenario
def cluster_sigkill() -> dict:
    """kill -9 a whole cluster (supervisor, sentinel, pusher, monitor, workers) of two during a
    2,000-event drain: the other cluster runs its jobs, claimed or running, within seconds."""
    return drain_with_a_kill(2, lambda stack: stack.kill("worker0", signal.SIGKILL))


def seconds_lost_per_kill(stripe_ids: list[str], kills: list[float]) -> list[float | None]:
    """For each kill, the seconds until the last job it hit was claimed again: a crashed
    attempt belongs to the first kill after it started."""
    from jobs.models import JobAttempt

    crashes = JobAttempt.objects.filter(
        job__stripe_events__stripe_id__in=stripe_ids, outcome="crashed"
    ).values_list("started_at", "finished_at")
    lost: list[float | None] = [None] * len(kills)
    for started_at, noticed_at in crashes:
        index = next((i for i, k in enumerate(kills) if k >= started_at.timestamp()), None)
        if index is not None:
            seconds = noticed_at.timestamp() - kills[index]
            lost[index] = round(max(lost[index] or 0.0, seconds), 2)
    return lost


@scenario
def worker_sigkill() -> dict:
    """kill -9 the worker cluster five times while events are processing, restarting it each
    time: every event processed once, and per kill the seconds until the jobs it hit ran
    again."""
    bodies, ids = new_events(2000)
    kills = []
    with Stack() as stack:
        sent = closed_loop(stack.url, bodies, BENCH_SECRET)
        check(sent["ok"] == len(bodies), f"not every event was accepted: {sent['statuses']}")
        for _ in range(5):
            time.sleep(1.5)
            kills.append(time.time())
            stack.kill("worker0", signal.SIGKILL)
            stack.start_workers()
        done = wait_until(lambda: event_statuses(ids).get("processed", 0) == len(ids), 240)
        statuses = event_statuses(ids)
        runs = attempts_per_event_job(ids)
        lost = seconds_lost_per_kill(ids, kills)
    check(done, f"not every event processed: {statuses}")
    check(set(runs) <= {"1", "jobs"}, f"a job succeeded more than once: {runs}")
    hit = [seconds for seconds in lost if seconds is not None]
    check(
        all(seconds <= LOST_TARGET_SECONDS for seconds in hit),
        f"a kill's jobs ran again too late: {lost}",
    )
    return {
        "events": len(ids),
        "statuses": statuses,
        "successes_per_job": runs,
        "kills": len(kills),
        "seconds_lost_per_kill": lost,
        "max_seconds_lost": max(hit) if hit else None,
    }


@scenario
def database_restart() -> dict:
    """Stop PostgreSQL under webhook load and start it again: 200s processed, the rest 503."""
    bodies, _ = new_events(3000)
    results: dict = {}
    with Stack() as stack:
        loader = threading.Thread(
            target=lambda: results.update(open_loop(stack.url, bodies, 150, BENCH_SECRET))
        )
        loader.start()
        time.sleep(5)
        restart_database(down_seconds=3)
        loader.join()
        statuses = results["statuses"]
        from django.db import connection

        connection.close()
        accepted = accepted_ids(bodies)
        done = wait_until(
            lambda: event_statuses(accepted).get("processed", 0) == len(accepted), 240
        )
        final = event_statuses(accepted)
    check("500" not in statuses, f"the server answered 500: {statuses}")
    check(set(statuses) <= {"200", "503"}, f"unexpected answers: {statuses}")
    check(len(accepted) == statuses.get("200", 0), "an event answered 200 was not stored")
    check(done, f"accepted events not all processed: {final}")
    return {"answers": statuses, "accepted": len(accepted), "processed": final}


def accepted_ids(bodies: list[str]) -> list[str]:
    """The ids of the events the server stored."""
    from billing.models import StripeEvent

    ids = [json.loads(body)["id"] for body in bodies]
    return list(StripeEvent.objects.filter(stripe_id__in=ids).values_list("stripe_id", flat=True))


@scenario
def two_clusters() -> dict:
    """Two worker clusters on one database: no job runs twice."""
    bodies, ids = new_events(2000)
    with Stack(worker_clusters=2) as stack:
        sent = closed_loop(stack.url, bodies, BENCH_SECRET)
        done = wait_until(lambda: event_statuses(ids).get("processed", 0) == len(ids), 240)
        runs = attempts_per_event_job(ids)
        statuses = event_statuses(ids)
    check(sent["ok"] == len(bodies), f"not every event accepted: {sent['statuses']}")
    check(done, f"not every event processed: {statuses}")
    check(set(runs) <= {"1", "jobs"}, f"a job ran to success more than once: {runs}")
    return {"events": len(ids), "successes_per_job": runs}


def create_demo_prebookings(stack: Stack, count: int, opens_in: float, prefix: str) -> dict:
    import subprocess

    out = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "prebooking_demo",
            "--count",
            str(count),
            "--in",
            str(opens_in),
            "--prefix",
            prefix,
            "--json",
        ],
        cwd=ROOT,
        env=stack.environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def prebooking_outcome(demo: dict) -> dict:
    """Final states of the demo's prebookings and what the gym saw of them."""
    from collections import Counter

    from prebooking.models import DemoGymRequest, Prebooking

    rows = list(Prebooking.objects.filter(pk__in=demo["ids"]).order_by("pk"))
    requests = DemoGymRequest.objects.filter(class_id__in=demo["class_ids"])
    keys_per_member = Counter()
    booked_per_member = Counter()
    for request in requests:
        keys_per_member[(request.member, request.request_key)] += 0
        if request.status_code == 201:
            booked_per_member[request.member] += 1
    members_keys = Counter(member for member, _ in keys_per_member)
    lateness = sorted(row.lateness_ms for row in rows if row.lateness_ms is not None)
    opens = {row.payload["class_id"]: row.opens_at for row in rows}
    arrivals = sorted(
        (request.arrived_at - opens[request.class_id]).total_seconds() * 1000
        for request in requests
        if request.class_id in opens
    )
    return {
        "statuses": dict(Counter(row.status for row in rows)),
        "booked_twice": sum(1 for n in booked_per_member.values() if n > 1),
        "members_with_two_keys": sum(1 for n in members_keys.values() if n > 1),
        "failed_without_reason": sum(
            1 for row in rows if row.status in ("failed", "expired") and not row.error
        ),
        "lateness_ms_p50": lateness[len(lateness) // 2] if lateness else None,
        "lateness_ms_max": lateness[-1] if lateness else None,
        "arrival_late_ms_min": round(arrivals[0], 2) if arrivals else None,
        "arrival_late_ms_max": round(arrivals[-1], 2) if arrivals else None,
        "errors": sorted({row.error[:80] for row in rows if row.error})[:3],
    }


def wait_settled(demo: dict, timeout: float) -> bool:
    from prebooking.models import Prebooking

    return wait_until(
        lambda: (
            not Prebooking.objects.filter(
                pk__in=demo["ids"], status__in=["pending", "firing"]
            ).exists()
        ),
        timeout,
    )


@scenario
def prebooking_two_clusters() -> dict:
    """Two timing clusters on one database: every prebooking fires once, on time."""
    with Stack(gym=True, timing_clusters=2) as stack:
        demo = create_demo_prebookings(stack, 50, 20, f"two{uuid.uuid4().hex[:4]}")
        settled = wait_settled(demo, 60)
        outcome = prebooking_outcome(demo)
    check(settled, f"prebookings still pending or firing: {outcome['statuses']}")
    check(outcome["statuses"] == {"succeeded": 50}, f"not all booked: {outcome}")
    check(outcome["booked_twice"] == 0 and outcome["members_with_two_keys"] == 0, f"{outcome}")
    check(outcome["lateness_ms_max"] < 50, f"late: {outcome['lateness_ms_max']} ms")
    return outcome


def instant_owner(instant: str) -> int | None:
    """The OS pid of the worker holding an instant's advisory lock (its session's name)."""
    from datetime import datetime

    from django.db import connection

    from prebooking.services import instant_lock

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted"
            "   AND l.classid = %(space)s AND l.objid = %(key)s",
            instant_lock(datetime.fromisoformat(instant)),
        )
        row = cursor.fetchone()
    return int(row[0].rsplit(" ", 1)[-1]) if row and row[0].startswith("jobs ") else None


def cluster_of(stack: Stack, pid: int) -> str | None:
    """Which of the stack's processes has `pid` in its tree."""
    for name, process in stack.processes.items():
        tree, todo = set(), [process.pid]
        while todo:
            current = todo.pop()
            tree.add(current)
            todo += children(current)
        if pid in tree:
            return name
    return None


@scenario
def prebooking_worker_killed() -> dict:
    """Two timing clusters; the one whose worker holds the instant (armed, connections open,
    sleeping to it) is SIGKILLed 1.5 s before it. The standby armer takes over: every
    prebooking is sent once, at most 100 ms late (at the gym), with nobody restarted."""
    with Stack(gym=True, timing_clusters=2, env={"PREBOOKING_STUCK_SECONDS": "5"}) as stack:
        demo = create_demo_prebookings(stack, 20, 20, f"kill{uuid.uuid4().hex[:4]}")
        from datetime import datetime

        instant = datetime.fromisoformat(demo["instant"]).timestamp()
        time.sleep(max(0.0, instant - time.time() - 1.5))
        owner = instant_owner(demo["instant"])
        victim = cluster_of(stack, owner) if owner else None
        check(victim is not None, f"no timing worker held the instant 1.5 s before it ({owner})")
        stack.kill(victim, signal.SIGKILL)
        settled = wait_settled(demo, 150)
        outcome = prebooking_outcome(demo)
        outcome["killed"] = victim
    check(settled, f"prebookings still pending or firing: {outcome['statuses']}")
    check(outcome["statuses"] == {"succeeded": 20}, f"not all booked: {outcome}")
    check(outcome["booked_twice"] == 0, f"a member was booked twice: {outcome}")
    check(outcome["failed_without_reason"] == 0, f"a failure without a reason: {outcome}")
    late = outcome["arrival_late_ms_max"]
    check(late is not None and late <= 100, f"late at the gym: {late} ms")
    return outcome


def _event_body(event_type: str, obj: dict, event_id: str) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
        }
    )


def _nested(levels: int) -> str:
    """A customer.created whose data.object.metadata nests so the body is `levels` deep."""
    body = _event_body("customer.created", {"id": "cus_deep", "metadata": "HOLE"}, "evt_deep")
    inner = levels - 3
    return body.replace('"HOLE"', '{"a": ' * inner + "1" + "}" * inner)


def _with(extra: str) -> str:
    body = _event_body("customer.created", {"id": "cus_n"}, "evt_" + uuid.uuid4().hex)
    return body.replace('"livemode": false', f'"livemode": false, "n": {extra}')


BAD_REQUESTS = [
    ("no signature", None, "{}"),
    ("garbage signature", "nonsense", "{}"),
    ("wrong secret", "sign:whsec_wrong", None),
    ("stale timestamp", "stale", None),
    ("not json", "sign", "this is not json"),
    ("not an event", "sign", json.dumps({"id": "cus_1", "object": "customer"})),
    ("event without data", "sign", json.dumps({"id": "evt_x", "object": "event", "type": "a"})),
    ("json array", "sign", "[1, 2, 3]"),
    # Storable limits (billing.views): 400 with the reason, never a 500 or a stored row.
    ("nested 990 deep (RecursionError)", "sign", _nested(990)),
    ("nested 900 deep", "sign", _nested(900)),
    ("nested 33 deep", "sign", _nested(33)),
    ("5,000-digit integer", "sign", _with("1" + "0" * 5000)),
    ("101-digit integer", "sign", _with("1" + "0" * 100)),
    ("number out of range", "sign", _with("1e999")),
    ("NaN", "sign", _with("NaN")),
    ("created past year 9999", "sign", _with("1").replace('"created": ', '"created": 9')),
]

THIN_PATH = "/billing/webhooks/stripe/thin/"
THIN_SECRET = "whsec_faults_thin"


def _thin(url: str = "/v1/customers/cus_thin", extra: str = "") -> str:
    """A thin event notification (v2 event) naming a customer, `extra` spliced into its top."""
    body = json.dumps(
        {
            "id": "evt_thin_" + uuid.uuid4().hex,
            "object": "v2.core.event",
            "type": "v1.customer.updated",
            "livemode": False,
            "created": "2026-12-01T09:00:00.000Z",
            "related_object": {"id": "cus_thin", "type": "customer", "url": url},
        }
    )
    return body[:-1] + (f", {extra}" if extra else "") + "}"


# The thin endpoint: the same parsing limits, and a related object only on Stripe's API.
BAD_THIN_REQUESTS = [
    ("thin: no signature", None, _thin()),
    ("thin: wrong secret", "sign:whsec_wrong", _thin()),
    ("thin: not json", "sign", "this is not json"),
    ("thin: snapshot event", "sign", _with("1")),
    ("thin: nested 2,000 deep", "sign", _thin(extra='"d": ' + "[" * 2000 + "]" * 2000)),
    ("thin: 5,000-digit integer", "sign", _thin(extra='"n": 1' + "0" * 5000)),
    ("thin: NaN", "sign", _thin(extra='"n": NaN')),
    ("thin: url on another host", "sign", _thin("https://attacker.example/v1/customers/x")),
    ("thin: url leaving the API", "sign", _thin("/v1/../admin")),
    ("thin: url with a query", "sign", _thin("/v1/customers/cus_thin?expand[]=sources")),
]

# Signed events that are storable but can never be applied: accepted (Stripe must stop
# retrying), then dead after one attempt with a message naming the field.
MALFORMED = [
    (
        "invoice.paid",
        {"id": "in_f1", "customer": "cus_f", "amount_paid": 2**70},
        "amount_paid is not a 64-bit integer",
    ),
    (
        "invoice.paid",
        {"id": "in_f2", "customer": "cus_f", "amount_due": "900"},
        "amount_due is not a 64-bit integer",
    ),
    (
        "customer.created",
        {"object": "customer", "email": "a@example.com"},
        "data.object.id is missing",
    ),
    (
        "payment_intent.succeeded",
        {"id": 12, "amount": 5},
        "data.object.id is not a non-empty string id",
    ),
    ("invoice.payment_failed", {"id": "in_f3"}, "data.object.customer is missing"),
    (
        "customer.subscription.updated",
        {"id": "sub_f", "customer": "cus_f", "trial_end": 10**12},
        "trial_end is not a Unix time",
    ),
    (
        "customer.updated",
        {"id": "cus_f", "email": "a" * 300 + "@example.com"},
        "email is not a string of at most 254",
    ),
    ("charge.refunded", {"id": "ch_f", "currency": {"code": "eur"}}, "currency is not a string"),
    (
        "checkout.session.completed",
        {"id": "cs_f", "customer": "cus_f", "amount_total": -(2**64)},
        "amount_total is not a 64-bit integer",
    ),
]


def _admin_seconds(client, event_ids: list[int]) -> tuple[float, int]:
    """The slowest admin page (seconds) and the largest (bytes) among these events'."""
    slowest, largest = 0.0, 0
    for event_id in event_ids:
        began = time.monotonic()
        response = client.get(f"/admin/billing/stripeevent/{event_id}/change/")
        slowest = max(slowest, time.monotonic() - began)
        check(response.status_code == 200, f"event {event_id} page answered {response.status_code}")
        largest = max(largest, len(response.content))
    return slowest, largest


HONOLULU = zoneinfo.ZoneInfo("Pacific/Honolulu")


def _typed_input_checks() -> dict:
    """Absurd dates and the login lock, through the real views (in this process, same database)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from prebooking.models import Prebooking

    def local(days: int) -> str:
        moment = timezone.localtime(timezone.now() + timedelta(days=days), HONOLULU)
        return moment.strftime("%Y-%m-%dT%H:%M:%S")

    users = get_user_model().objects
    suffix = uuid.uuid4().hex[:6]
    owner = users.create_user(f"faults-{suffix}", password="a long enough passphrase")
    form = Client(HTTP_HOST="localhost")
    form.force_login(owner)
    answers = {}
    for name, fields in {
        "class at 9999-12-31T23:59:59 Honolulu": {"class_starts_at": "9999-12-31T23:59:59"},
        "opening at 9999-12-31T23:59:59 Honolulu": {"opens_at": "9999-12-31T23:59:59"},
        "class 400 days after opening": {"class_starts_at": local(days=401)},
        "opening in year 1": {"opens_at": "0001-01-01T00:00:00"},
    }.items():
        data = {
            "provider": "demo",
            "class_id": f"absurd-{suffix}",
            "class_starts_at": local(days=2),
            "opens_at": local(days=1),
            "time_zone": "Pacific/Honolulu",
            **fields,
        }
        response = form.post("/prebookings/new/", data)
        answers[name] = response.status_code
        check(response.status_code == 200, f"{name}: answered {response.status_code}")
        check(b"errorlist" in response.content, f"{name}: no form error shown")
    check(
        not Prebooking.objects.filter(payload__class_id=f"absurd-{suffix}").exists(),
        "an absurd date was stored",
    )
    # Five wrong passwords for someone else, from one address, refuse no other account there.
    victim = users.create_user(f"victim-{suffix}", password="the victims passphrase")
    login = Client(HTTP_HOST="localhost")
    for _ in range(6):
        login.post(
            "/accounts/login/",
            {"username": f"bob-{suffix}", "password": "x"},
            REMOTE_ADDR="198.51.100.77",
        )
    victim_login = login.post(
        "/accounts/login/",
        {"username": victim.username, "password": "the victims passphrase"},
        REMOTE_ADDR="198.51.100.77",
    )
    answers["victim's correct password after 6 failures for bob"] = victim_login.status_code
    check(victim_login.status_code == 302, f"victim refused: {victim_login.status_code}")
    return answers


@scenario
def bad_input() -> dict:
    """Every kind of bad request (to the snapshot and the thin endpoint) gets a 4xx and stores
    nothing; signed events that can never apply are taken and die at once naming the field;
    every stored event's admin page opens fast and bounded; absurd dates and lock abuse are
    refused. No 5xx anywhere."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from billing.models import StripeEvent

    before = StripeEvent.objects.count()
    answers = {}
    good_body = customer_event(1, uuid.uuid4().hex[:8], pad=10)
    with Stack(env={"STRIPE_THIN_WEBHOOK_SECRET": THIN_SECRET}) as stack:
        host, port = "127.0.0.1", stack.port
        for name, how, body in BAD_REQUESTS:
            body = body or good_body
            if how is None:
                header = None
            elif how == "sign":
                header = signature(body, BENCH_SECRET)
            elif how.startswith("sign:"):
                header = signature(body, how.removeprefix("sign:"))
            elif how == "stale":
                import stripe

                old = int(time.time()) - 3600
                header = stripe.WebhookSignature.generate_signature_header(
                    body, BENCH_SECRET, timestamp=old
                )
            else:
                header = how
            answers[name] = post(host, port, body, header)
        for name, how, body in BAD_THIN_REQUESTS:
            secret = how.removeprefix("sign:") if how and how.startswith("sign:") else THIN_SECRET
            header = signature(body, secret) if how else None
            answers[name] = post(host, port, body, header, path=THIN_PATH)
        answers["oversized body"] = post_oversized(host, port, 2 * 1024 * 1024)
        answers["GET"] = get_status(stack.url + "/billing/webhooks/stripe/")
        answers["signup with mismatched passwords"] = post_form(
            stack.url + "/accounts/signup/",
            {"username": "mallory", "email": "m@example.com", "password1": "a", "password2": "b"},
        )
        after = StripeEvent.objects.count()
        wrong = {name: status for name, status in answers.items() if not 400 <= status < 500}
        check(not wrong, f"not a 4xx: {wrong}")
        check(after == before, f"{after - before} events stored from bad requests")

        malformed_ids, accepted = [], {}
        for event_type, obj, _message in MALFORMED:
            event_id = "evt_faults_" + uuid.uuid4().hex
            body = _event_body(event_type, obj, event_id)
            accepted[event_id] = post(host, port, body, signature(body, BENCH_SECRET))
            malformed_ids.append(event_id)
        # The largest storable event: just under the size limit, many keys, 30 levels deep.
        big_id = "evt_faults_big_" + uuid.uuid4().hex
        wide = {f"k{n}": {"a": {"b": [n, "x" * 20]}} for n in range(16_000)}
        deep = {"d": 1}
        for _ in range(25):
            deep = {"d": deep}
        big_customer = {"id": "cus_big", "metadata": {"w": wide, "deep": deep}}
        big = _event_body("customer.created", big_customer, big_id)
        check(len(big) < 1024 * 1024, f"the big event is {len(big)} bytes")
        accepted[big_id] = post(host, port, big, signature(big, BENCH_SECRET))
        check(all(status == 200 for status in accepted.values()), f"not accepted: {accepted}")
        settled = wait_until(
            lambda: (
                StripeEvent.objects.filter(stripe_id__in=malformed_ids, status="dead").count()
                == len(malformed_ids)
            ),
            timeout=60,
        )
        rows = {
            e.stripe_id: e
            for e in StripeEvent.objects.filter(stripe_id__in=malformed_ids).select_related("job")
        }
        check(settled, f"not all dead: { {k: v.status for k, v in rows.items()} }")
        deaths = {}
        for event_id, (event_type, _obj, message) in zip(malformed_ids, MALFORMED, strict=True):
            row = rows[event_id]
            job = row.job
            deaths[event_type + " " + message] = (row.status, job.attempts)
            check(job.attempts == 1, f"{event_type}: {job.attempts} attempts, not 1")
            check(message in job.last_error, f"{event_type}: error {job.last_error!r}")

    # Rows stored before the limits (or backfilled) may hold anything: their pages stay bounded.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_stripeevent (stripe_id, type, api_version, livemode, created,"
            " payload, status, received_at) VALUES (%s, 'customer.created',"
            " '', false, now(), %s::jsonb, 'processed', now()) RETURNING id",
            ["evt_faults_deep_" + uuid.uuid4().hex, _nested(900)],
        )
        deep_id = cursor.fetchone()[0]
    admin = get_user_model().objects.create_superuser(f"faults-admin-{uuid.uuid4().hex[:6]}")
    staff = Client(HTTP_HOST="localhost")
    staff.force_login(admin)
    wait_until(
        lambda: StripeEvent.objects.filter(stripe_id=big_id, status="processed").exists(), 60
    )
    accepted_ids = [*malformed_ids, big_id]
    event_pks = list(
        StripeEvent.objects.filter(stripe_id__in=accepted_ids).values_list("pk", flat=True)
    )
    slowest, largest = _admin_seconds(staff, [*event_pks, deep_id])
    check(slowest < 2, f"an event page took {slowest:.2f} s")
    check(largest < 200_000, f"an event page was {largest} bytes")
    typed = _typed_input_checks()
    return {
        "answers": answers,
        "malformed_accepted_then_dead": deaths,
        "big_event_bytes": len(big),
        "admin_page_slowest_s": round(slowest, 3),
        "admin_page_largest_bytes": largest,
        "typed_input": typed,
        "checks": len(answers) + len(deaths) + len(typed) + 2,
    }


def get_status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def post_oversized(host: str, port: int, declared: int) -> int:
    """The status answered to a POST declaring a `declared`-byte body, of which only the first
    64 KB are sent: the webhook must refuse on the declared length, without waiting for the
    body. (A client that insists on sending all of it before reading, as http.client does, can
    see the connection reset instead: the server answered and closed with the body unread.)"""
    import socket

    head = (
        f"POST /billing/webhooks/stripe/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n"
        f"Stripe-Signature: {signature('x', BENCH_SECRET)}\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head.encode() + b"x" * 65536)
        status_line = sock.makefile("rb").readline().decode("latin-1")
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def post_form(url: str, fields: dict) -> int:
    """A form post without the CSRF token, as a forged cross-site request would be."""
    import urllib.error
    import urllib.parse
    import urllib.request

    data = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main(names: list[str]) -> int:
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if names == ["quick"]:
        names = QUICK
    names = names or list(SCENARIOS)
    passed, failed, report = 0, 0, {}
    for name in names:
        began = time.monotonic()
        try:
            detail = SCENARIOS[name]()
            passed += 1
            report[name] = {
                "passed": True,
                "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "seconds": round(time.monotonic() - began, 1),
                **detail,
            }
            summary = json.dumps(detail, default=str)[:300]
            print(f"PASS {name} ({report[name]['seconds']} s): {summary}")
        except Exception as error:
            failed += 1
            report[name] = {
                "passed": False,
                "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "error": str(error),
                "trace": traceback.format_exc(),
            }
            print(f"FAIL {name}: {error}")
        sys.stdout.flush()
    # A run of some scenarios keeps the others' last results (each says when it ran).
    path = ROOT / "bench" / "results" / "faults.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    write_result("faults", {**kept, **report})
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
