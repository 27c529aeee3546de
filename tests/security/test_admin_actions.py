"""Admin actions change state only on a POST with a valid CSRF token, by staff allowed to.

The checks walk every registered ModelAdmin and every action it declares, so admins that other
apps add are held to the same rules without a test of their own.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from jobs.models import Job, JobAction
from jobs.testing import run_due_jobs
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_job() -> Job:
    job = enqueue(sample_jobs.refuses, target="tests:1")
    run_due_jobs()
    job.refresh_from_db()
    assert job.status == "dead"
    return job


def changelists_and_actions(request_user) -> list[tuple[str, str]]:
    """(changelist URL, action name) for every action of every registered model admin."""
    found = []
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for name in model_admin.actions or []:
            action = name if isinstance(name, str) else name.__name__
            found.append((url, action))
    return found


def test_no_action_runs_on_a_post_without_a_csrf_token(admin_user, dead_job):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    pairs = changelists_and_actions(admin_user)
    assert ("/admin/jobs/deadletter/", "replay") in pairs

    statuses = {
        (url, action): client.post(
            url, {"action": action, "_selected_action": [dead_job.pk]}
        ).status_code
        for url, action in pairs
    }

    assert set(statuses.values()) == {403}
    dead_job.refresh_from_db()
    assert dead_job.status == "dead"
    assert not JobAction.objects.exists()


def test_no_action_runs_on_a_get(admin_client, dead_job):
    for url, action in changelists_and_actions(None):
        admin_client.get(url, {"action": action, "_selected_action": dead_job.pk, "index": 0})

    dead_job.refresh_from_db()
    assert dead_job.status == "dead"
    assert not JobAction.objects.exists()


def test_staff_without_the_replay_permission_cannot_replay_through_any_admin_url(
    client, django_user_model, dead_job
):
    viewer = django_user_model.objects.create_user("viewer", password="pw-x-12345", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(viewer)

    for url, action in changelists_and_actions(viewer):
        client.post(url, {"action": action, "_selected_action": [dead_job.pk]})

    dead_job.refresh_from_db()
    assert dead_job.status == "dead"
    assert not JobAction.objects.exists()
