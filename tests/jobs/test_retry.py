"""Retries with backoff, dead letters and replay, through the workers' own claim and finish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from jobs import signals
from jobs.models import Job, JobAction, JobAttempt
from jobs.services import execute, replay, resolve
from jobs.testing import run_due_jobs
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def run_at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return run_due_jobs()


def test_job_that_fails_twice_then_succeeds_retries_on_the_backoff_schedule():
    with time_machine.travel(T0, tick=False):
        job = enqueue(sample_jobs.flaky, fails=2)
        run_due_jobs()
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("retrying", 1)
    assert job.run_at == T0 + timedelta(seconds=60)
    assert run_at(T0 + timedelta(seconds=59)) == 0  # not due yet: nothing runs early

    run_at(T0 + timedelta(seconds=60))
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("retrying", 2)
    assert job.run_at == T0 + timedelta(seconds=60 + 120)

    run_at(T0 + timedelta(seconds=180))
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 3)
    outcomes = list(job.attempt_log.order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["failed", "failed", "succeeded"]
    assert "attempt 1 fails on purpose" in job.attempt_log.get(number=1).traceback


def test_job_that_always_fails_goes_dead_after_max_attempts_and_raises_the_alert(
    django_capture_on_commit_callbacks,
):
    dead = []
    signals.job_dead.connect(lambda sender, job, **kw: dead.append(job.pk), weak=False)
    with time_machine.travel(T0, tick=False):
        job = enqueue(sample_jobs.always_fails)
    with django_capture_on_commit_callbacks(execute=True):
        for minutes in (0, 1, 3):
            run_at(T0 + timedelta(minutes=minutes))
    job.refresh_from_db()

    assert (job.status, job.attempts) == ("dead", 3)
    assert job.last_error == "Boom: this job never works"
    assert dead == [job.pk]
    run_at(T0 + timedelta(days=1))
    job.refresh_from_db()
    assert job.attempts == 3  # nothing more is ever tried


def test_permanent_error_goes_dead_at_once():
    job = enqueue(sample_jobs.refuses)
    run_due_jobs()
    job.refresh_from_db()

    assert (job.status, job.attempts) == ("dead", 1)
    assert "bad data" in job.last_error


def test_enqueue_rolls_back_with_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(sample_jobs.flaky, fails=0)
        raise RuntimeError("the caller fails after enqueueing")

    assert Job.objects.count() == 0


def test_unique_key_enqueues_once():
    first = enqueue(sample_jobs.flaky, fails=0, unique_key="welcome:user:1")
    second = enqueue(sample_jobs.flaky, fails=0, unique_key="welcome:user:1")

    assert first.pk == second.pk
    assert run_due_jobs() == 1


def test_a_stale_attempt_of_a_finished_job_changes_nothing():
    job = enqueue(sample_jobs.flaky, fails=0)
    run_due_jobs()
    stale = {"id": job.pk, "name": job.name, "kwargs": {"fails": 0}, "attempt": 1}
    stale.update(max_attempts=5, timeout=60)

    execute(stale)  # a second run of attempt 1 (e.g. it outlived its lease)

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 1)
    assert JobAttempt.objects.count() == 1


def test_replay_of_a_dead_job_runs_it_again_and_is_audited(admin_user):
    job = enqueue(sample_jobs.refuses)
    run_due_jobs()

    result = replay(job.pk, actor=admin_user, note="fixed the data")
    run_due_jobs()
    job.refresh_from_db()

    assert result.done
    assert (job.status, job.attempts) == ("dead", 2)  # it still refuses, but it ran again
    action = JobAction.objects.get(job=job)
    assert (action.kind, action.actor, action.status_before) == ("replay", admin_user, "dead")


def test_replay_of_a_succeeded_job_is_refused_unless_forced(admin_user):
    job = enqueue(sample_jobs.flaky, fails=0)
    run_due_jobs()

    refused = replay(job.pk, actor=admin_user)
    forced = replay(job.pk, actor=admin_user, force=True)
    run_due_jobs()
    job.refresh_from_db()

    assert not refused.done and "already succeeded" in refused.reason
    assert forced.done
    assert (job.status, job.attempts) == ("succeeded", 2)


def test_resolve_stops_retrying_without_running(admin_user):
    job = enqueue(sample_jobs.always_fails)
    run_due_jobs()

    assert resolve(job.pk, actor=admin_user).done
    run_at(timezone_far_future())  # the pending retry's delivery comes and finds it resolved
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("resolved", 1)


def timezone_far_future() -> datetime:
    return datetime.now(UTC) + timedelta(days=2)
