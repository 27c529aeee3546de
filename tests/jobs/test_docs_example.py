"""docs/queue.md's worked example ("Using the queue from your own app"), run as it is written."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest
from django.core import mail
from django_tasks import TaskResultStatus

from jobs.models import Job
from jobs.testing import run_due_jobs

DOC = Path(__file__).resolve().parents[2] / "docs" / "queue.md"
BLOCK = re.compile(r"```python\n# example: (?P<name>\w+)\n(?P<code>.*?)```", re.S)


def examples() -> dict[str, str]:
    return {match["name"]: match["code"] for match in BLOCK.finditer(DOC.read_text())}


@pytest.fixture
def example_tasks(tmp_path, monkeypatch):
    """The example's tasks module, importable by its name as a worker would import it."""
    (tmp_path / "welcome_example.py").write_text(examples()["tasks"])
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("welcome_example")
    yield module
    sys.modules.pop("welcome_example", None)


@pytest.mark.django_db
def test_the_worked_example_enqueues_defers_runs_and_reads_its_result(
    example_tasks, django_user_model, capsys
):
    user = django_user_model.objects.create_user("ada", "ada@example.com", "pw")
    namespace = {"send_welcome": example_tasks.send_welcome, "user": user}

    exec(examples()["use"], namespace)  # noqa: S102 - the documentation's own code
    assert capsys.readouterr().out.strip() == "READY None"
    run_due_jobs()

    assert [message.to for message in mail.outbox] == [["ada@example.com"]]
    result = example_tasks.send_welcome.get_result(namespace["welcome"].id)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "sent on attempt 1"
    reminder = Job.objects.get(pk=namespace["reminder"].id)
    assert reminder.status == "queued" and reminder.name == "welcome_example.send_welcome"
    again = example_tasks.send_welcome.using(unique_key=f"welcome:{user.pk}").enqueue(
        user_id=user.pk
    )
    assert again.id == namespace["welcome"].id


@pytest.mark.django_db
def test_the_worked_example_goes_dead_at_once_for_a_user_that_does_not_exist(example_tasks):
    result = example_tasks.send_welcome.enqueue(user_id=12345)
    run_due_jobs()

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class.__name__ == "PermanentError"
