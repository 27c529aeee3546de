"""Our queue through Django's Tasks API: enqueue, defer, results, async, retry, dead, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils.module_loading import import_string
from django_tasks import TaskResultStatus, task
from django_tasks.signals import task_enqueued, task_finished, task_started

from jobs.models import Job
from jobs.services import replay
from jobs.testing import run_due_jobs
from tests.jobs import sample_jobs

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
async def add_later(a: int, b: int) -> int:
    return a + b


def test_enqueue_writes_one_job_named_by_its_tasks_module_path():
    result = add.enqueue(2, b=3)

    job = Job.objects.get(pk=result.id)
    assert job.name == "tests.jobs.test_tasks_api.add"
    assert import_string(job.name) is add
    assert (job.args, job.kwargs, job.status) == ([2], {"b": 3}, "queued")
    assert result.status == TaskResultStatus.READY


def test_an_enqueue_rolled_back_with_its_transaction_leaves_no_job():
    with pytest.raises(RuntimeError), transaction.atomic():
        add.enqueue(1, 1)
        raise RuntimeError("the work that made the task necessary failed")

    assert not Job.objects.exists()


def test_get_result_reads_the_return_value_and_timestamps_after_a_worker_ran_it():
    with time_machine.travel(T0, tick=False):
        result = add.enqueue(2, 3)
        run_due_jobs()

    fresh = add.get_result(result.id)
    assert fresh.status == TaskResultStatus.SUCCESSFUL
    assert fresh.return_value == 5
    assert fresh.enqueued_at == fresh.started_at == fresh.finished_at == T0
    assert fresh.worker_ids and fresh.errors == []


def test_a_deferred_task_runs_at_its_run_after_not_before():
    with time_machine.travel(T0, tick=False):
        result = add.using(run_after=T0 + timedelta(minutes=5)).enqueue(1, 2)
        assert run_due_jobs() == 0
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert run_due_jobs() == 1

    result.refresh()
    assert result.return_value == 3 and result.started_at == T0 + timedelta(minutes=5)


def test_an_async_task_enqueued_with_aenqueue_runs_through_async_to_sync():
    result = async_to_sync(add_later.aenqueue)(4, 5)
    run_due_jobs()

    async_to_sync(result.arefresh)()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 9)


def test_a_failed_attempt_is_ready_again_with_its_error_then_succeeds_with_its_attempt():
    with time_machine.travel(T0, tick=False):
        result = sample_jobs.flaky.enqueue(fails=1)  # context.attempt 1 fails
        run_due_jobs()
    result.refresh()
    assert result.status == TaskResultStatus.READY
    [error] = result.errors
    assert error.exception_class is sample_jobs.Boom
    assert "attempt 1 fails on purpose" in error.traceback

    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):  # backoff: 60 s
        run_due_jobs()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2 and len(result.errors) == 1


def test_a_task_out_of_attempts_is_failed_and_a_dead_letter():
    now = T0
    with time_machine.travel(now, tick=False):
        result = sample_jobs.always_fails.enqueue()
    for _ in range(3):  # max_attempts=3
        with time_machine.travel(now, tick=False):
            run_due_jobs()
        now += timedelta(hours=1)

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert len(result.errors) == 3 == result.attempts
    assert Job.objects.get(pk=result.id).status == "dead"


def test_a_replayed_dead_task_is_ready_again_and_succeeds_on_its_fresh_budget():
    now = T0
    with time_machine.travel(now, tick=False):
        result = sample_jobs.flaky.enqueue(fails=5)  # max_attempts=5: dead, then attempt 6 works
    for _ in range(5):
        with time_machine.travel(now, tick=False):
            run_due_jobs()
        now += timedelta(days=1)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED

    with time_machine.travel(now, tick=False):
        assert replay(int(result.id), actor="staff").done
        result.refresh()
        assert result.status == TaskResultStatus.READY
        run_due_jobs()

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 6 and len(result.errors) == 5


def test_unique_key_and_target_ride_on_using_and_a_second_enqueue_returns_the_first():
    keyed = sample_jobs.write_marker.using(unique_key="welcome:1", target="auth.user:1")
    first = keyed.enqueue(path="/dev/null", text="hi")
    second = keyed.enqueue(path="/dev/null", text="hi")

    assert first.id == second.id
    job = Job.objects.get(pk=first.id)
    assert (job.unique_key, job.target) == ("welcome:1", "auth.user:1")


def test_the_signals_are_sent_for_enqueue_start_and_finish():
    seen = []

    def record(sender, task_result, **kwargs):
        seen.append((task_result.status, task_result.id))

    for signal in (task_enqueued, task_started, task_finished):
        signal.connect(record)
    try:
        result = add.enqueue(1, 1)
        run_due_jobs()
    finally:
        for signal in (task_enqueued, task_started, task_finished):
            signal.disconnect(record)

    assert seen == [
        (TaskResultStatus.READY, result.id),
        (TaskResultStatus.RUNNING, result.id),
        (TaskResultStatus.SUCCESSFUL, result.id),
    ]
