"""E-mail jobs queued before mail became an app still run: migration mail.0002 renames them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from jobs.models import Job


def _migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


@pytest.mark.django_db(transaction=True)
def test_a_send_job_queued_under_its_old_name_is_renamed_to_the_mail_task():
    _migrate(("mail", "0001_initial"))
    try:
        old = Job.objects.create(
            name="billing.send_email",
            kwargs={"email_id": 7},
            target="billing.email:7",
            run_at=timezone.now(),
        )
    finally:
        _migrate(("mail", "0002_send_job_name"))

    old.refresh_from_db()
    assert (old.name, old.target) == ("mail.tasks.send", "mail.email:7")
