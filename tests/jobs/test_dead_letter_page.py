"""A dead letter's page: its buttons, a link to what it is about, its budget and cause of death."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs.models import Job
from jobs.testing import run_due_jobs
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue

pytestmark = pytest.mark.django_db


def dead(name: str, **kwargs) -> Job:
    job = enqueue(name, **kwargs)
    start = timezone.now()
    for hours in range(5):  # past every backoff
        with time_machine.travel(start + timedelta(hours=hours), tick=False):
            run_due_jobs()
    job.refresh_from_db()
    assert job.status == "dead"
    return job


def test_dead_letter_page_has_replay_resolve_and_discard_buttons(admin_client):
    job = dead(sample_jobs.refuses, target="tests:1")

    page = admin_client.get(f"/admin/jobs/deadletter/{job.pk}/change/").content.decode()
    replayed = admin_client.post(f"/admin/jobs/deadletter/{job.pk}/act/replay/", follow=True)

    assert ">Replay now</button>" in page
    for asks_first in ("Mark resolved", "Discard"):  # a link to their confirmation page
        assert f">{asks_first}…</a>" in page
    assert f"Job #{job.pk} queued for replay." in replayed.content.decode()
    assert 'http-equiv="refresh"' in replayed.content.decode()  # until a worker ran it
    job.refresh_from_db()
    assert job.status == "queued"


def test_dead_letter_target_links_to_the_row_it_is_about(admin_client, django_user_model):
    user = django_user_model.objects.create_user("someone")
    job = dead(sample_jobs.refuses, target=f"auth.user:{user.pk}")

    listed = admin_client.get("/admin/jobs/deadletter/").content.decode()
    page = admin_client.get(f"/admin/jobs/deadletter/{job.pk}/change/").content.decode()

    link = f'<a href="/admin/auth/user/{user.pk}/change/">auth.user:{user.pk}</a>'
    assert link in listed
    assert link in page


def test_cause_of_death_is_the_permanent_error_or_the_exhausted_attempts(admin_client):
    refused = dead(sample_jobs.refuses, target="tests:1")
    exhausted = dead(sample_jobs.always_fails, target="tests:2")

    listed = admin_client.get("/admin/jobs/deadletter/").content.decode()
    refused_page = admin_client.get(f"/admin/jobs/job/{refused.pk}/change/").content.decode()

    assert "permanent error after 1 attempt: retrying cannot help" in listed
    assert "attempts exhausted (3 of 3 failed)" in listed
    assert "attempts exhausted" not in refused_page
    assert exhausted.attempts == 3


def test_attempts_after_a_replay_count_against_the_types_limit(admin_client):
    job = dead(sample_jobs.refuses, target="tests:1")
    admin_client.post(f"/admin/jobs/deadletter/{job.pk}/act/replay/")
    run_due_jobs()

    page = admin_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()

    assert "1 / 5 since the last replay (2 in all)" in page
    assert "2 / 6" not in page
