"""State changes of prebookings: each one a conditional UPDATE whose row count says who won."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, transaction
from django.utils import dateformat, timezone

from billing.entitlements import pending_prebooking_limit
from jobs.backend import task_named
from jobs.models import Job
from jobs.sql import load
from mail.services import queue_email
from prebooking.models import Prebooking
from prebooking.providers.base import BOOKED, BookingResult
from prebooking.signals import prebooking_created

log = logging.getLogger(__name__)
QUERIES = load(Path(__file__).with_name("sql") / "queries.sql")
Status = Prebooking.Status
# The tasks this module enqueues, by name (prebooking.tasks imports this module).
ARM_JOB = "prebooking.tasks.arm"
REFIRE_JOB = "prebooking.tasks.refire"
# Armers' unique keys and targets start with this (the keys of rows made before jobs became
# tasks too).
ARMER_KEY = "prebooking.arm"
ARMERS_PER_INSTANT = 2  # a primary and a hot standby (docs/prebooking.md)


def idempotency_key(prebooking_id: int) -> str:
    """What the provider sees as Idempotency-Key, so a retry never books twice."""
    return f"prebooking-{prebooking_id}"


def armer_key(instant: datetime, replica: int) -> str:
    """The unique key of one of an instant's armer jobs."""
    return f"{ARMER_KEY}:{instant.astimezone(UTC).isoformat()}:{replica}"


def armer_lead_seconds() -> float:
    """How long before its instant an armer starts: LEAD, or more when a provider prepares
    earlier (AimHarder logs in and measures the gym's clock), plus a second to spare."""
    from prebooking.providers import SPECIAL_PROVIDERS, prepare_seconds

    slowest = max(
        (prepare_seconds(name) for name in [*settings.PREBOOKING_PROVIDERS, *SPECIAL_PROVIDERS]),
        default=0.0,
    )
    return max(float(settings.PREBOOKING_LEAD_SECONDS), slowest + 1)


def schedule_armers(instant: datetime) -> int:
    """Make sure the instant has its armers: jobs due LEAD seconds before it (now if later).

    Two armer jobs per instant, whoever creates its prebookings (a unique key each): one fires,
    the other waits on the instant's advisory lock and takes over if the first one's worker
    dies. In the caller's transaction; returns how many it made (0 while they wait or run). If
    an armer of that key already ran to its end (every prebooking of the instant was
    cancelled before it, and one is now re-run), a new one is made under a key of its own.
    """
    arm = task_named(ARM_JOB)  # by name: prebooking.tasks imports this module
    live = (*Job.WAITING, Job.Status.RUNNING)
    run_at = max(instant - timedelta(seconds=armer_lead_seconds()), timezone.now())
    made = 0
    for replica in range(1, ARMERS_PER_INSTANT + 1):
        key = armer_key(instant, replica)
        if Job.objects.filter(target=key, status__in=live).exists():
            continue
        armer = arm.using(run_after=run_at, unique_key=key, target=key).enqueue(
            instant=instant.isoformat()
        )
        if armer.is_finished:
            again = f"{key}:{timezone.now().timestamp():.6f}"
            arm.using(run_after=run_at, unique_key=again, target=key).enqueue(
                instant=instant.isoformat()
            )
        made += 1
    return made


class PendingLimitReached(Exception):
    """The member already holds as many pending prebookings as their plan allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You have {limit} pending prebookings, the most allowed. Cancel one or wait "
            "until one fires; plans with more are on the Billing page."
        )
        self.limit = limit


def pending_count(owner) -> int:
    return Prebooking.objects.filter(owner=owner, status=Status.PENDING).count()


@transaction.atomic
def create_prebooking(owner, provider: str, payload: dict, opens_at: datetime) -> Prebooking:
    """Store a prebooking and its scheduled arming in one transaction, within the plan's limit.

    Raises PendingLimitReached when the owner holds their plan's number of pending prebookings.
    Every path that creates prebookings comes here; the lock on the owner's row makes a
    member's concurrent requests count and insert one after another, so ten at once at
    limit - 1 leave exactly the limit pending.
    """
    owners = get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk)
    list(owners.values_list("pk", flat=True))
    limit = pending_prebooking_limit(owner.pk)
    if pending_count(owner) >= limit:
        raise PendingLimitReached(limit)
    prebooking = Prebooking.objects.create(
        owner=owner, provider=provider, payload=payload, opens_at=opens_at
    )
    prebooking_created.send(sender=Prebooking, prebooking=prebooking)
    schedule_armers(prebooking.opens_at)
    return prebooking


@transaction.atomic
def cancel_prebooking(prebooking_id: int) -> bool:
    """pending -> cancelled; False when it is no longer pending. Its instant's armers find it
    cancelled and leave it alone."""
    won = Prebooking.objects.filter(pk=prebooking_id, status=Status.PENDING).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    return bool(won)


RERUNNABLE = [Status.FAILED, Status.EXPIRED, Status.CANCELLED]


@transaction.atomic
def rerun_prebooking(prebooking_id: int) -> bool:
    """Back to pending and armed again, only while its booking window is still open (an
    instant already past is fired at once by its new armers)."""
    now = timezone.now()
    closes_after = now - timedelta(seconds=settings.PREBOOKING_RETRY_WINDOW)
    won = Prebooking.objects.filter(
        pk=prebooking_id, status__in=RERUNNABLE, opens_at__gt=closes_after
    ).update(
        status=Status.PENDING,
        armed_at=None,
        fired_at=None,
        attempted_at=None,
        finished_at=None,
        lateness_ms=None,
        response=None,
        error="",
    )
    if won:
        schedule_armers(Prebooking.objects.get(pk=prebooking_id).opens_at)
    return bool(won)


@dataclass(frozen=True)
class Shot:
    """What a timing worker needs to fire one prebooking."""

    id: int
    provider: str
    payload: dict
    opens_at: datetime
    created_at: datetime

    @property
    def key(self) -> str:
        return idempotency_key(self.id)


ARMING_LOCK_SPACE = 7007  # first key of our advisory locks: one lock per opening instant


def instant_lock(instant: datetime) -> dict[str, int]:
    """The advisory lock (two int4 keys) of an opening instant."""
    return {"space": ARMING_LOCK_SPACE, "key": int(instant.timestamp() * 1000) % 2_147_483_647}


def own_instant(instant: datetime, until: datetime) -> bool:
    """Become the one armer of `instant`: its session advisory lock, waited for until `until`.

    The first armer gets it at once; the standby waits here until the first one's session ends
    -- it released the lock when done, or its worker died and PostgreSQL dropped the
    connection -- and takes over at that moment. False when `until` passed first.
    """
    wait_ms = max(1, int((until - timezone.now()).total_seconds() * 1000))
    with connection.cursor() as cursor:
        cursor.execute(QUERIES["set_lock_timeout"], {"timeout": f"{wait_ms}ms"})
        try:
            cursor.execute(QUERIES["lock_instant"], instant_lock(instant))
            return True
        except OperationalError:  # lock_timeout: the window closed while another held it
            return False
        finally:
            cursor.execute(QUERIES["set_lock_timeout"], {"timeout": "0"})


def release_instant(instant: datetime) -> None:
    """Give up the instant's lock (the connection outlives the job: persistent connections)."""
    with connection.cursor() as cursor:
        cursor.execute(QUERIES["unlock_instant"], instant_lock(instant))


def claim_for_arming(instant: datetime, held: Iterable[int] = ()) -> list[Shot]:
    """Take the instant's pending prebookings not `held` yet, in creation order.

    Only the owner of the instant's lock calls this, so every pending row of the instant is
    its own, including those a dead owner had armed. armed_at records when.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["claim_for_arming"],
            {"instant": instant, "held": list(held), "now": timezone.now()},
        )
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    for row in rows:
        if not isinstance(row["payload"], dict):
            row["payload"] = _json(row["payload"])
    shots = [Shot(**row) for row in rows]
    return sorted(shots, key=lambda shot: (shot.created_at, shot.id))


def orphans(instant: datetime) -> list[int]:
    """Prebookings of the instant left firing without an outcome by an owner that died."""
    return list(
        Prebooking.objects.filter(status=Status.FIRING, opens_at=instant)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )


def _json(value: str) -> dict:
    # Django registers a text loader for jsonb on psycopg 3: raw cursors get strings.
    return json.loads(value)


def claim_for_firing(prebooking_ids: list[int], fired_at: datetime) -> set[int]:
    """pending -> firing for each id that is still pending; returns the ids this caller won.

    `fired_at` is provisional (the instant); finish() records when the request really left.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["claim_for_firing"],
            {"ids": list(prebooking_ids), "fired_at": fired_at, "now": timezone.now()},
        )
        return {won for (won,) in cursor.fetchall()}


def record_attempt(prebooking_id: int, attempts: int) -> None:
    """A retry is about to leave: the sweep reads attempted_at to tell a live worker from a dead."""
    Prebooking.objects.filter(pk=prebooking_id, status=Status.FIRING).update(
        attempts=attempts, attempted_at=timezone.now()
    )


def finish(
    prebooking_id: int, result: BookingResult, fired_at: datetime, attempts: int, reason: str = ""
) -> bool:
    """firing -> succeeded | failed with the provider's answer; emails the owner on failure."""
    succeeded = result.outcome == BOOKED
    with transaction.atomic():
        prebooking = (
            Prebooking.objects.select_for_update()
            .filter(pk=prebooking_id, status=Status.FIRING)
            .first()
        )
        if prebooking is None:
            return False
        prebooking.status = Status.SUCCEEDED if succeeded else Status.FAILED
        prebooking.fired_at = fired_at
        prebooking.lateness_ms = (fired_at - prebooking.opens_at).total_seconds() * 1000
        prebooking.finished_at = timezone.now()
        prebooking.attempts = max(attempts, prebooking.attempts)
        prebooking.response = result.as_json()
        prebooking.error = "" if succeeded else (reason or result.reason or "booking failed")
        prebooking.save(
            update_fields=[
                "status",
                "fired_at",
                "lateness_ms",
                "finished_at",
                "attempts",
                "response",
                "error",
            ]
        )
        if not succeeded:
            queue_failure_email(prebooking_id)
    return True


def expire(prebooking_id: int, reason: str) -> bool:
    """pending -> expired: never sent, and too late to send."""
    with transaction.atomic():
        won = Prebooking.objects.filter(pk=prebooking_id, status=Status.PENDING).update(
            status=Status.EXPIRED, finished_at=timezone.now(), error=reason
        )
        if won:
            queue_failure_email(prebooking_id)
    return bool(won)


def fail_stuck(prebooking_id: int, attempts: int, reason: str) -> bool:
    """firing -> failed for a row whose worker died (and nobody else took it meanwhile)."""
    with transaction.atomic():
        won = Prebooking.objects.filter(
            pk=prebooking_id, status=Status.FIRING, attempts=attempts
        ).update(status=Status.FAILED, finished_at=timezone.now(), error=reason)
        if won:
            queue_failure_email(prebooking_id)
    return bool(won)


def queue_failure_email(prebooking_id: int) -> None:
    """Queue the failure e-mail to the owner in the transaction that records the failure, once."""
    prebooking = Prebooking.objects.select_related("owner").get(pk=prebooking_id)
    owner = prebooking.owner
    if not owner.email:
        return
    site = settings.SITE_URL.rstrip("/")
    context = {
        "name": owner.username,
        "class_id": str(prebooking.payload.get("class_id", "")),
        "opens_at": dateformat.format(timezone.localtime(prebooking.opens_at), "Y-m-d H:i:s e"),
        "error": prebooking.error,
        "prebooking_url": f"{site}/prebookings/{prebooking.pk}/",
    }
    queue_email(f"prebooking:{prebooking.pk}", "prebooking_failed", to=owner.email, context=context)


def sweep() -> dict[str, int]:
    """Recovery backstop: expire what can no longer be sent, give late instants their armers,
    send again what a dead worker left firing (the standby armer normally does all this)."""
    now = timezone.now()
    window = timedelta(seconds=settings.PREBOOKING_RETRY_WINDOW)
    counts = {"rearmed": 0, "expired": 0, "refired": 0, "failed": 0}
    # Pending rows whose armers should be running by now.
    late = Prebooking.objects.filter(
        status=Status.PENDING, opens_at__lte=now + timedelta(seconds=armer_lead_seconds())
    ).values_list("id", "opens_at")
    instants = set()
    for prebooking_id, opens_at in late:
        if now >= opens_at + window:
            counts["expired"] += expire(prebooking_id, "Not sent: no worker fired it in time.")
        else:
            instants.add(opens_at)
    for instant in instants:  # no-ops while the instant's armers wait or run
        with transaction.atomic():
            counts["rearmed"] += bool(schedule_armers(instant))
    stuck_before = now - timedelta(seconds=settings.PREBOOKING_STUCK_SECONDS)
    stuck = Prebooking.objects.filter(
        status=Status.FIRING, attempted_at__lt=stuck_before
    ).values_list("id", "opens_at", "attempts")
    for prebooking_id, opens_at, attempts in stuck:
        if now < opens_at + window:
            with transaction.atomic():
                won = Prebooking.objects.filter(
                    pk=prebooking_id, status=Status.FIRING, attempts=attempts
                ).update(attempts=attempts + 1, attempted_at=now)
                if won:
                    task_named(REFIRE_JOB).using(
                        target=f"prebooking.prebooking:{prebooking_id}"
                    ).enqueue(prebooking_id=prebooking_id)
            counts["refired"] += won
        else:
            counts["failed"] += fail_stuck(
                prebooking_id,
                attempts,
                "The worker stopped while sending and the booking window has closed; "
                "the provider's answer is unknown.",
            )
    return counts
