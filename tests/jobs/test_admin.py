"""The dead-letter console: lists, detail pages and audited actions, through the test client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from jobs.models import Job, JobAction
from jobs.testing import run_due_jobs
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_job():
    job = enqueue(sample_jobs.refuses, target="tests:1")
    run_due_jobs()
    job.refresh_from_db()
    assert job.status == "dead"
    return job


@pytest.fixture
def staff_client(client, django_user_model):
    """Staff who may look at jobs but not act on them."""
    staff = django_user_model.objects.create_user("viewer", password="pw-x-12345", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_job", "view_deadletter", "view_jobattempt"])
    )
    client.force_login(staff)
    return client


@pytest.fixture
def operator_client(client, django_user_model):
    operator = django_user_model.objects.create_user(
        "operator", password="pw-x-12345", is_staff=True
    )
    operator.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_job", "view_deadletter", "view_jobattempt", "replay_job"]
        )
    )
    client.force_login(operator)
    return client


def test_dead_letters_list_shows_the_dead_job(admin_client, dead_job):
    response = admin_client.get("/admin/jobs/deadletter/")

    assert response.status_code == 200
    assert b"tests.jobs.sample_jobs.refuses" in response.content
    assert b"permanent error after 1 attempt" in response.content


def test_job_detail_shows_error_and_traceback(admin_client, dead_job):
    response = admin_client.get(f"/admin/jobs/job/{dead_job.pk}/change/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "bad data: retrying cannot help" in body
    assert "Traceback (most recent call last)" in body


def test_replay_action_requeues_and_is_audited(operator_client, dead_job):
    response = operator_client.post(
        "/admin/jobs/deadletter/",
        {"action": "replay", "_selected_action": [dead_job.pk]},
        follow=True,
    )

    assert b"1 queued for replay" in response.content
    dead_job.refresh_from_db()
    assert dead_job.status == "queued"
    action = JobAction.objects.get(job=dead_job)
    assert (action.kind, action.actor_name) == ("replay", "operator")


def test_replay_is_refused_without_the_permission(staff_client, dead_job):
    page = staff_client.get("/admin/jobs/deadletter/")
    response = staff_client.post(
        "/admin/jobs/deadletter/", {"action": "replay", "_selected_action": [dead_job.pk]}
    )

    assert page.status_code == 200
    assert b'value="replay"' not in page.content  # the action is not even offered
    assert response.status_code in (200, 302)
    dead_job.refresh_from_db()
    assert dead_job.status == "dead"
    assert not JobAction.objects.exists()


def test_job_log_is_read_only_in_the_admin(admin_client, dead_job):
    add = admin_client.get("/admin/jobs/job/add/")
    delete = admin_client.post(f"/admin/jobs/job/{dead_job.pk}/delete/", {"post": "yes"})

    assert add.status_code == 403
    assert delete.status_code == 403
    assert Job.objects.filter(pk=dead_job.pk).exists()


def test_dashboard_shows_counts_and_links(admin_client, dead_job):
    response = admin_client.get("/admin/dashboard/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Operations dashboard" in body
    assert "No worker cluster alive" in body
    assert "<svg" in body


def test_dashboard_is_for_staff_only(client, user, dead_job):
    client.force_login(user)

    response = client.get("/admin/dashboard/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
