"""django-tasks' own backend tests (0.12.0: tests/tests/test_tasks.py, test_immediate_backend.py,
test_custom_backend.py), run against our backend wherever they can be pointed at another one.

django-tasks has no backend-neutral contract suite: its tests target its Dummy and Immediate
backends. Ported here, with each test's origin in its docstring:
- TaskTestCase (test_tasks.py): every test that does not read the Dummy backend's in-memory
  ``results``/``clear()``, with its Dummy settings replaced by ours. Left out: priority tests
  (our backend refuses priority, which test_custom_backend's
  ``test_backend_does_not_support_priority`` checks), ``test_no_backends`` and
  ``test_using_missing_backend`` (django-tasks' own settings handling).
- ImmediateBackendTestCase: its assertions on a finished result, after our worker code ran the
  task (``run_due_jobs``: the production claim and execute path). Differences by design: a
  failing task retries (default 5 attempts) before it is FAILED, with one error per attempt;
  a return value JSON cannot hold is not stored and the task still succeeds (its work has
  committed); the log-line tests do not apply (django-tasks' log receivers are silenced,
  our layer logs each attempt).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import (
    DEFAULT_TASK_QUEUE_NAME,
    TaskResultStatus,
    default_task_backend,
    task,
    task_backends,
)
from django_tasks.base import Task
from django_tasks.exceptions import (
    InvalidTaskBackendError,
    InvalidTaskError,
    TaskResultDoesNotExist,
    TaskResultMismatch,
)

from jobs.backend import JobsBackend
from jobs.testing import run_due_jobs
from tests.jobs import contract_tasks as test_tasks

pytestmark = pytest.mark.django_db


def finish(result, *, attempts: int = 5):
    """Run the task as the workers would, through its retries, and read its result again."""
    now = timezone.now()
    for attempt in range(attempts):
        with time_machine.travel(now + timedelta(days=attempt), tick=False):
            run_due_jobs()
    result.refresh()
    return result


# test_tasks.py: TaskTestCase


def test_using_correct_backend():
    assert default_task_backend == task_backends["default"]
    assert isinstance(task_backends["default"], JobsBackend)


def test_task_decorator():
    assert isinstance(test_tasks.noop_task, Task)
    assert isinstance(test_tasks.noop_task_async, Task)
    assert isinstance(test_tasks.noop_task_from_bare_decorator, Task)


def test_enqueue_task():
    result = test_tasks.noop_task.enqueue()

    assert result.status == TaskResultStatus.READY
    assert result.task == test_tasks.noop_task
    assert result.args == [] and result.kwargs == {}


@pytest.mark.django_db(transaction=True)
def test_enqueue_task_async():
    result = async_to_sync(test_tasks.noop_task.aenqueue)()

    assert result.status == TaskResultStatus.READY
    assert result.task == test_tasks.noop_task
    assert result.args == [] and result.kwargs == {}


def test_enqueue_with_invalid_argument():
    with pytest.raises(TypeError, match=re.escape("Unsupported type: <class 'datetime.datetime'>")):
        test_tasks.noop_task.enqueue(datetime.now())


def test_using_queue_name():
    assert test_tasks.noop_task.queue_name == DEFAULT_TASK_QUEUE_NAME
    assert test_tasks.noop_task.using(queue_name="timing").queue_name == "timing"
    assert test_tasks.noop_task.queue_name == DEFAULT_TASK_QUEUE_NAME


def test_using_run_after():
    now = timezone.now()

    assert test_tasks.noop_task.run_after is None
    assert test_tasks.noop_task.using(run_after=now).run_after == now
    assert test_tasks.noop_task.run_after is None


def test_using_unknown_backend():
    with pytest.raises(
        InvalidTaskBackendError, match=re.escape("The connection 'unknown' doesn't exist.")
    ):
        test_tasks.noop_task.using(backend="unknown")


def test_using_creates_new_instance():
    new_task = test_tasks.noop_task.using()

    assert new_task == test_tasks.noop_task
    assert new_task is not test_tasks.noop_task


def test_refresh_result():
    result = test_tasks.noop_task.enqueue()
    original_result = dataclasses.asdict(result)

    result.refresh()
    assert dataclasses.asdict(result) == original_result

    async_to_sync(result.arefresh)()
    assert dataclasses.asdict(result) == original_result


def test_naive_datetime():
    with pytest.raises(InvalidTaskError, match="run_after must be an aware datetime"):
        test_tasks.noop_task.using(run_after=datetime.now())


def test_unknown_queue_name():
    with pytest.raises(InvalidTaskError, match="Queue 'queue-2' is not valid for backend"):
        test_tasks.noop_task.using(queue_name="queue-2")


def test_call_task():
    assert test_tasks.calculate_meaning_of_life.call() == 42
    assert async_to_sync(test_tasks.calculate_meaning_of_life.acall)() == 42
    assert async_to_sync(test_tasks.noop_task_async.acall)() is None
    assert test_tasks.noop_task_async.call() is None


def test_get_result():
    result = default_task_backend.enqueue(test_tasks.noop_task, (), {})

    assert test_tasks.noop_task.get_result(result.id) == result


@pytest.mark.django_db(transaction=True)
def test_get_result_async():
    result = async_to_sync(default_task_backend.aenqueue)(test_tasks.noop_task, (), {})

    assert async_to_sync(test_tasks.noop_task.aget_result)(result.id) == result


def test_get_missing_result():
    with pytest.raises(TaskResultDoesNotExist):
        test_tasks.noop_task.get_result("123")
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(test_tasks.noop_task.aget_result)("123")


def test_get_incorrect_result():
    result = default_task_backend.enqueue(test_tasks.noop_task_async, (), {})

    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        test_tasks.noop_task.get_result(result.id)


def test_invalid_function():
    def local() -> None:
        pass

    for invalid_function in [any, local]:
        with pytest.raises(InvalidTaskError, match="Task function must be defined at a module"):
            task()(invalid_function)


def test_get_backend():
    assert test_tasks.noop_task.backend == "default"
    assert isinstance(test_tasks.noop_task.get_backend(), JobsBackend)


def test_name():
    assert test_tasks.noop_task.name == "noop_task"
    assert test_tasks.noop_task_async.name == "noop_task_async"


def test_module_path():
    path = "tests.jobs.contract_tasks.noop_task"
    assert test_tasks.noop_task.module_path == path
    assert import_string(test_tasks.noop_task.module_path) is test_tasks.noop_task
    assert import_string(test_tasks.noop_task_async.module_path) is test_tasks.noop_task_async


def test_task_error_invalid_exception():
    result = finish(test_tasks.failing_task_value_error.enqueue())
    object.__setattr__(result.errors[0], "exception_class_path", "subprocess.run")

    with pytest.raises(
        ValueError, match=re.escape("'subprocess.run' does not reference a valid exception")
    ):
        result.errors[0].exception_class  # noqa: B018


def test_takes_context_without_taking_context():
    with pytest.raises(InvalidTaskError, match="Task takes context but does not have a first"):
        task(takes_context=True)(test_tasks.calculate_meaning_of_life.func)


# test_custom_backend.py


def test_backend_does_not_support_priority():
    with pytest.raises(InvalidTaskError, match="Backend does not support setting priority"):
        test_tasks.noop_task.using(priority=10)


def test_custom_task_invalid_argument():
    with pytest.raises(TypeError):
        task(unknown_param=123)(test_tasks.noop_task.func)


# test_immediate_backend.py: ImmediateBackendTestCase, once our worker code ran the task


@pytest.mark.parametrize("noop", [test_tasks.noop_task, test_tasks.noop_task_async])
def test_enqueued_task_runs_to_success(noop):
    result = finish(noop.enqueue(1, two=3))

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished
    assert result.started_at and result.last_attempted_at and result.finished_at
    assert result.started_at >= result.enqueued_at
    assert result.finished_at >= result.started_at
    assert result.return_value is None
    assert result.task == noop
    assert result.args == [1] and result.kwargs == {"two": 3}
    assert result.attempts == 1


@pytest.mark.parametrize(
    ("failing", "exception", "message"),
    [
        (test_tasks.failing_task_value_error, ValueError, "This task failed due to ValueError"),
        (test_tasks.failing_task_system_exit, SystemExit, "This task failed due to SystemExit"),
    ],
)
def test_catches_exception(failing, exception, message):
    result = finish(failing.enqueue())

    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished
    assert result.started_at and result.last_attempted_at and result.finished_at
    assert result.finished_at >= result.started_at >= result.enqueued_at
    assert len(result.errors) == 5 == result.attempts  # one per attempt (ours retry)
    assert result.errors[0].exception_class == exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
    assert result.task == failing
    assert result.args == [] and result.kwargs == {}


def test_complex_exception():
    result = finish(test_tasks.complex_exception.enqueue())

    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback


def test_complex_return_value_is_not_stored_and_the_task_succeeds():
    result = finish(test_tasks.complex_return_value.enqueue())

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value is None


def test_result():
    result = finish(default_task_backend.enqueue(test_tasks.calculate_meaning_of_life, [], {}))

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 42


def test_check():
    assert list(default_task_backend.check()) == []


def test_takes_context():
    result = finish(test_tasks.get_task_id.enqueue())

    assert result.return_value == result.id


def test_context():
    result = finish(test_tasks.test_context.enqueue(1))

    assert result.status == TaskResultStatus.SUCCESSFUL


def test_validate_on_enqueue():
    with pytest.raises(InvalidTaskError, match="Queue 'unknown_queue' is not valid for backend"):
        test_tasks.noop_task.using(queue_name="unknown_queue").enqueue()
