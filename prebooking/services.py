"""State changes of prebookings: each one a conditional UPDATE whose row count says who won."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from jobs import enqueue
from prebooking.models import Prebooking
from prebooking.providers import BOOKED, BookingResult

log = logging.getLogger(__name__)
Status = Prebooking.Status
ARM_TASK = "prebooking.tasks.arm"
FIRE_TASK = "prebooking.tasks.refire"


def schedule_name(prebooking_id: int) -> str:
    """The django-q2 Schedule name of a prebooking's arming."""
    return f"prebooking:{prebooking_id}"


def idempotency_key(prebooking_id: int) -> str:
    """What the provider sees as Idempotency-Key, so a retry never books twice."""
    return f"prebooking-{prebooking_id}"


def window_closes_at(opens_at: datetime) -> datetime:
    return opens_at + timedelta(seconds=settings.PREBOOKING_RETRY_WINDOW)


def _arm_now(prebooking_id: int) -> None:
    async_task(ARM_TASK, prebooking_id, cluster=settings.PREBOOKING_QUEUE)


def _schedule_arming(prebooking: Prebooking) -> None:
    """Arm LEAD seconds early, or at once when that moment has passed (same transaction)."""
    arm_at = prebooking.opens_at - timedelta(seconds=settings.PREBOOKING_LEAD_SECONDS)
    if arm_at <= timezone.now():
        _arm_now(prebooking.pk)
        return
    Schedule.objects.create(
        name=schedule_name(prebooking.pk),
        func=ARM_TASK,
        args=repr((prebooking.pk,)),
        schedule_type=Schedule.ONCE,
        repeats=-1,  # a ONCE schedule with negative repeats deletes itself after running
        next_run=arm_at,
        cluster=settings.PREBOOKING_QUEUE,
    )


@transaction.atomic
def create_prebooking(owner, provider: str, payload: dict, opens_at: datetime) -> Prebooking:
    """Store a prebooking and its scheduled arming in one transaction."""
    prebooking = Prebooking.objects.create(
        owner=owner, provider=provider, payload=payload, opens_at=opens_at
    )
    if provider == "demo":
        from prebooking.demo_gym import register_class

        register_class(payload["class_id"], opens_at, payload.get("class_starts_at"))
    _schedule_arming(prebooking)
    return prebooking


@transaction.atomic
def cancel_prebooking(prebooking_id: int) -> bool:
    """pending -> cancelled and its schedule removed; False when it is no longer pending."""
    won = Prebooking.objects.filter(pk=prebooking_id, status=Status.PENDING).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    if won:
        Schedule.objects.filter(name=schedule_name(prebooking_id)).delete()
    return bool(won)


RERUNNABLE = [Status.FAILED, Status.EXPIRED, Status.CANCELLED]


@transaction.atomic
def rerun_prebooking(prebooking_id: int) -> bool:
    """Back to pending and scheduled again, only while its booking window is still open."""
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
        Schedule.objects.filter(name=schedule_name(prebooking_id)).delete()
        _schedule_arming(Prebooking.objects.get(pk=prebooking_id))
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


def _instant_key(instant: datetime) -> int:
    return int(instant.timestamp() * 1000) % 2_147_483_647


def claim_for_arming(until: datetime, owned: set[datetime] | None = None) -> list[Shot]:
    """Take the pending, unarmed prebookings opening by `until`, for instants this worker owns.

    One worker owns an instant (a session advisory lock), so a same-instant group is sent by
    one process in creation order even when many arm tasks run at once; `owned` is the
    caller's set of instants, grown here. armed_at (one conditional UPDATE) is the claim.
    """
    owned = set() if owned is None else owned
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT opens_at FROM prebooking_prebooking
             WHERE status = 'pending' AND armed_at IS NULL AND opens_at <= %s
            """,
            [until],
        )
        for (instant,) in cursor.fetchall():
            if instant in owned:
                continue
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", [ARMING_LOCK_SPACE, _instant_key(instant)]
            )
            if cursor.fetchone()[0]:
                owned.add(instant)
        if not owned:
            return []
        cursor.execute(
            """
            UPDATE prebooking_prebooking SET armed_at = now()
             WHERE status = 'pending' AND armed_at IS NULL AND opens_at = ANY(%s)
            RETURNING id, provider, payload, opens_at, created_at
            """,
            [list(owned)],
        )
        rows = cursor.fetchall()
    shots = [
        Shot(id, provider, payload if isinstance(payload, dict) else _json(payload), opens, created)
        for id, provider, payload, opens, created in rows
    ]
    return sorted(shots, key=lambda shot: (shot.created_at, shot.id))


def release_instant(instant: datetime, owned: set[datetime]) -> None:
    """Give up ownership of an instant once its group has been sent."""
    owned.discard(instant)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_unlock(%s, %s)", [ARMING_LOCK_SPACE, _instant_key(instant)]
        )


def release_all_instants(owned: set[datetime]) -> None:
    for instant in list(owned):
        release_instant(instant, owned)


def _json(value: str) -> dict:
    # Django registers a text loader for jsonb on psycopg 3: raw cursors get strings.
    return json.loads(value)


def claim_for_firing(prebooking_ids: list[int], fired_at: datetime) -> set[int]:
    """pending -> firing for each id that is still pending; returns the ids this caller won.

    `fired_at` is provisional (the instant); finish() records when the request really left.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE prebooking_prebooking
               SET status = 'firing', fired_at = %s, attempted_at = now(),
                   attempts = attempts + 1,
                   lateness_ms = EXTRACT(EPOCH FROM (%s - opens_at)) * 1000
             WHERE id = ANY(%s) AND status = 'pending'
            RETURNING id
            """,
            [fired_at, fired_at, list(prebooking_ids)],
        )
        return {row[0] for row in cursor.fetchall()}


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
            Schedule.objects.filter(name=schedule_name(prebooking_id)).delete()
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
    """Enqueue the failure e-mail in the transaction that records the failure, once."""
    enqueue(
        "prebooking.notify_failure",
        prebooking_id=prebooking_id,
        target=f"prebooking.prebooking:{prebooking_id}",
        unique_key=f"prebooking-failed:{prebooking_id}",
    )


def notify_failure(prebooking_id: int) -> None:
    """Email the owner that the booking did not happen (the prebooking.notify_failure job)."""
    prebooking = Prebooking.objects.select_related("owner").get(pk=prebooking_id)
    if not prebooking.owner.email:
        return
    context = {"prebooking": prebooking, "user": prebooking.owner}
    send_mail(
        subject=render_to_string("emails/prebooking_failed_subject.txt", context).strip(),
        message=render_to_string("emails/prebooking_failed.txt", context),
        from_email=None,
        recipient_list=[prebooking.owner.email],
    )


def sweep() -> dict[str, int]:
    """Recovery: re-arm what a dead worker left armed, retry or fail what it left firing."""
    now = timezone.now()
    window = timedelta(seconds=settings.PREBOOKING_RETRY_WINDOW)
    counts = {"rearmed": 0, "expired": 0, "refired": 0, "failed": 0}
    overdue = Prebooking.objects.filter(
        status=Status.PENDING, opens_at__lt=now - timedelta(seconds=5)
    ).values_list("id", "opens_at", "armed_at")
    # Pending rows whose schedule should have armed them by now (schedules fire within ~35 s).
    unarmed_late = Prebooking.objects.filter(
        status=Status.PENDING, armed_at__isnull=True, opens_at__lte=now + timedelta(seconds=10)
    ).values_list("id", "opens_at", "armed_at")
    rearm = False
    for prebooking_id, opens_at, armed_at in {*overdue, *unarmed_late}:
        if now >= opens_at + window:
            counts["expired"] += expire(prebooking_id, "Not sent: no worker fired it in time.")
        elif armed_at is not None:
            counts["rearmed"] += Prebooking.objects.filter(
                pk=prebooking_id, status=Status.PENDING, armed_at=armed_at
            ).update(armed_at=None)
            rearm = True
        else:
            rearm = True
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
                    async_task(FIRE_TASK, prebooking_id, cluster=settings.PREBOOKING_QUEUE)
            counts["refired"] += won
        else:
            counts["failed"] += fail_stuck(
                prebooking_id,
                attempts,
                "The worker stopped while sending and the booking window has closed; "
                "the provider's answer is unknown.",
            )
    if rearm:
        _arm_now(0)
    return counts
