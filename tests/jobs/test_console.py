"""The console's shared machinery without a browser: caps, confirmations, fingerprints, search."""

from __future__ import annotations

import pytest

from jobs.fingerprints import fingerprint
from jobs.models import BulkAction, Job, JobAction
from tests.jobs import sample_jobs
from tests.jobs.helpers import dead_now as dead

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("error", "group"),
    [
        ("KeyError: 'cus_Abc12345'", "KeyError: '<id>'"),
        (
            "worker died during attempt 5, the last of 5",
            "worker died during attempt <n>, the last of <n>",
        ),
        ("ValueError: no user ann@example.com\nbody: 42", "ValueError: no user <email>"),
        ("HTTPError: 503 at 0xdeadbeef token 3f2a9b8c77d1", "HTTPError: <n> at <hex> token <hex>"),
        ("X: 550e8400-e29b-41d4-a716-446655440000", "X: <uuid>"),
    ],
)
def test_fingerprint_masks_what_varies_and_keeps_what_went_wrong(error, group):
    assert fingerprint(error) == group


def test_a_failing_job_stores_its_fingerprint_when_it_dies():
    job = dead(sample_jobs.missing_row, row=5)

    assert job.error_fingerprint == (
        "LookupError: row <n> of table 'accounts' has gone (checked at <hex>)"
    )


def test_all_matching_acts_on_no_more_than_the_cap_and_says_so(admin_client, settings):
    settings.CONSOLE_BULK_CAP = 2
    for row in (1, 2, 3):
        dead(sample_jobs.missing_row, row=row)
    url = "/admin/jobs/deadletter/act-all/discard/?name=tests.jobs.sample_jobs.missing_row"

    asked = admin_client.get(url).content.decode()
    done = admin_client.post(url, {"confirmed": "yes", "note": "n"}, follow=True)

    assert "More than 2 rows match" in asked
    assert Job.objects.filter(status="discarded").count() == 2
    assert "run it again for the rest" in done.content.decode()
    bulk = BulkAction.objects.get()
    assert (bulk.matched, bulk.acted, bulk.filter) == (
        3,
        2,
        "name=tests.jobs.sample_jobs.missing_row",
    )


def test_discard_of_the_selection_asks_first_and_does_nothing_until_confirmed(admin_client):
    job = dead(sample_jobs.refuses)
    form = {"action": "discard", "_selected_action": [job.pk]}

    asked = admin_client.post("/admin/jobs/deadletter/", form)
    job.refresh_from_db()
    assert asked.status_code == 200 and "Yes, discard" in asked.content.decode()
    assert job.status == "dead" and not JobAction.objects.exists()

    admin_client.post("/admin/jobs/deadletter/", {**form, "confirmed": "yes", "note": "dup"})
    job.refresh_from_db()
    assert job.status == "discarded"
    assert JobAction.objects.get().note == "dup"


def test_an_action_goes_back_only_to_a_page_of_this_site(admin_client):
    job = dead(sample_jobs.refuses)

    response = admin_client.post(
        f"/admin/jobs/job/{job.pk}/act/replay/", {"next": "https://evil.example/"}
    )

    assert response.url == f"/admin/jobs/job/{job.pk}/change/"


def test_job_search_by_error_text_needs_three_characters(admin_client):
    job = dead(sample_jobs.refuses)

    found = admin_client.get("/admin/jobs/job/", {"q": "retrying cannot"}).content.decode()
    short = admin_client.get("/admin/jobs/job/", {"q": "re"}).content.decode()

    assert f'<a href="/admin/jobs/job/{job.pk}/change/' in found
    assert f'<a href="/admin/jobs/job/{job.pk}/change/' not in short


def test_all_matching_changes_nothing_without_the_permission_a_csrf_token_or_a_post(
    client, admin_user, django_user_model
):
    from django.contrib.auth.models import Permission
    from django.test import Client

    job = dead(sample_jobs.refuses)
    url = "/admin/jobs/deadletter/act-all/replay/"
    viewer = django_user_model.objects.create_user("viewer", password="pw-x-12345", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(viewer)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)

    refused = client.post(url, {"confirmed": "yes"})
    no_token = strict.post(url, {"confirmed": "yes"})
    strict.get(url, {"confirmed": "yes"})

    assert (refused.status_code, no_token.status_code) == (403, 403)
    job.refresh_from_db()
    assert job.status == "dead"
    assert not JobAction.objects.exists() and not BulkAction.objects.exists()
