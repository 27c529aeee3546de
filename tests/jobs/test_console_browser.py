"""The dead-letter console in a real browser: search, act on a filter or a group, confirm
before acting, and see workers and readiness as they are."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import StripeEvent
from jobs.models import BulkAction, Job, JobAction, WorkerCluster
from tests.billing.conftest import make_event, webhook_secret  # noqa: F401 - signs deliveries
from tests.billing.helpers import deliver, drain
from tests.jobs import sample_jobs
from tests.jobs.helpers import dead_now as dead
from tests.jobs.helpers import enqueue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, next_url: str) -> None:
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "password")
    page.click("input[type=submit]")


def search(page, term: str) -> None:
    page.fill("#searchbar", term)
    page.press("#searchbar", "Enter")


def test_one_search_box_finds_a_dead_letter_by_event_id_payload_email_error_or_id(
    browser_page, admin_user, client
):
    """The address is only in the event's payload: no customer row was ever made for it."""
    start = timezone.now() - timedelta(hours=3)
    customer = {
        "id": "cus_Nowhere01",
        "object": "customer",
        "email": "Only.In.Payload@example.com",
        "metadata": {"user_id": "424242"},  # no such user: every attempt fails
    }
    deliver(client, make_event("customer.created", customer, id="evt_1QzNightOwl42"), start)
    drain(until=start + timedelta(hours=2))
    event = StripeEvent.objects.select_related("job").get()
    assert event.job.status == "dead"
    page = browser_page
    log_in(page, "/admin/jobs/deadletter/")
    row = page.locator(f"#result_list a:text-is('{event.job.pk}')")

    for term in (
        "evt_1QzNightOwl42",  # the Stripe event id
        "only.in.payload@example.com",  # an e-mail address, in another case
        "cus_Nowhere01",  # the object the event is about
        "matching query does",  # part of the error
        str(event.job.pk),  # the job's own id
    ):
        search(page, term)
        expect(row).to_be_visible()
        expect(page.locator("#result_list tbody tr")).to_have_count(1)

    search(page, "evt_nothing_like_it")
    expect(page.locator("#result_list")).to_have_count(0)

    page.goto("/admin/billing/stripeevent/")
    search(page, "Owl4")  # four characters of the event id
    expect(page.locator("#result_list a:text-is('evt_1QzNightOwl42')")).to_be_visible()
    search(page, "Ow")
    expect(page.locator("ul.messagelist")).to_contain_text("parts of ids need 3 characters")


def test_replay_all_matching_a_filter_counts_asks_and_writes_one_audit_row(
    browser_page, admin_user
):
    missing = [dead(sample_jobs.missing_row, row=row) for row in (11, 22, 33, 44)]
    other = dead(sample_jobs.refuses)
    page = browser_page
    log_in(page, "/admin/jobs/deadletter/")

    page.click("#changelist-filter a:text-is('tests.jobs.sample_jobs.missing_row')")
    page.click(".bulk-actions a:has-text('Replay all')")
    expect(page.locator(".confirm-count")).to_contain_text("4 rows match the filter")
    expect(page.locator(".confirm-filter")).to_contain_text(
        "name=tests.jobs.sample_jobs.missing_row"
    )
    assert Job.objects.filter(status="dead").count() == 5  # nothing happened yet
    page.fill("#id_note", "accounts table restored")
    page.click("button:has-text('Yes, replay now')")

    expect(page.locator("ul.messagelist")).to_contain_text("4 queued for replay")
    expect(page).to_have_url(
        re.compile(r"/admin/jobs/deadletter/\?name=tests.jobs.sample_jobs.missing_row")
    )
    assert set(
        Job.objects.filter(pk__in=[j.pk for j in missing]).values_list("status", flat=True)
    ) == {"queued"}
    other.refresh_from_db()
    assert other.status == "dead"
    bulk = BulkAction.objects.get()
    assert (bulk.kind, bulk.model, bulk.filter) == (
        "replay",
        "jobs.deadletter",
        "name=tests.jobs.sample_jobs.missing_row",
    )
    assert (bulk.matched, bulk.acted, bulk.actor_name, bulk.note) == (
        4,
        4,
        "admin",
        "accounts table restored",
    )
    notes = set(JobAction.objects.values_list("note", flat=True))
    assert notes == {f"bulk action #{bulk.pk}: accounts table restored"}


def test_dead_letters_group_by_error_and_a_group_is_discarded_at_once(browser_page, admin_user):
    for row in (7, 1234, 99):  # one cause, three messages that differ by the row they name
        dead(sample_jobs.missing_row, row=row)
    refused = dead(sample_jobs.refuses)
    page = browser_page
    log_in(page, "/admin/jobs/deadletter/")

    group = page.locator("tr.error-group", has_text="LookupError")
    expect(group.locator(".group-count")).to_have_text("3")
    expect(group).to_contain_text(
        "LookupError: row <n> of table 'accounts' has gone (checked at <hex>)"
    )
    expect(page.locator("tr.error-group")).to_have_count(2)
    group.locator("a:has-text('Discard all 3')").click()
    expect(page.locator(".confirm-count")).to_contain_text("3 rows match")
    page.click("button:has-text('Yes, discard')")

    expect(page.locator("ul.messagelist")).to_contain_text("3 discarded")
    assert (
        Job.objects.filter(name="tests.jobs.sample_jobs.missing_row", status="discarded").count()
        == 3
    )
    refused.refresh_from_db()
    assert refused.status == "dead"
    assert refused.error_fingerprint == "PermanentError: bad data: retrying cannot help"


def test_discard_asks_first_keeps_the_note_and_stays_on_the_page(browser_page, admin_user):
    job = dead(sample_jobs.refuses)
    replayed = dead(sample_jobs.refuses)
    page = browser_page
    here = f"/admin/jobs/deadletter/{job.pk}/change/"
    log_in(page, here)

    page.click(".event-actions a:has-text('Discard')")
    expect(page.locator("#content-main")).to_contain_text("1 row matches")
    job.refresh_from_db()
    assert job.status == "dead"  # asked, not done
    page.fill("#id_note", "duplicate of #1, customer told")
    page.click("button:has-text('Yes, discard')")

    expect(page.locator("ul.messagelist")).to_contain_text(f"Job #{job.pk} discarded.")
    expect(page).to_have_url(re.compile(re.escape(here) + "$"))
    action = JobAction.objects.get(job=job)
    assert (action.kind, action.note) == ("discard", "duplicate of #1, customer told")

    page.goto(f"/admin/jobs/deadletter/{replayed.pk}/change/")
    page.click(".event-actions button:has-text('Replay now')")  # no question for a replay
    expect(page.locator("ul.messagelist")).to_contain_text(f"Job #{replayed.pk} queued for replay")
    expect(page).to_have_url(re.compile(rf"/admin/jobs/deadletter/{replayed.pk}/change/$"))

    other = dead(sample_jobs.refuses)
    page.goto("/admin/jobs/deadletter/?name=tests.jobs.sample_jobs.refuses")
    page.check(f"input[name=_selected_action][value='{other.pk}']")
    page.select_option("select[name=action]", "replay")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("1 queued for replay")
    expect(page).to_have_url(re.compile(r"name=tests.jobs.sample_jobs.refuses"))


def test_a_stale_worker_is_shown_stale_and_readyz_says_how_long_nobody_attended(
    browser_page, admin_user
):
    now = timezone.now()
    WorkerCluster.objects.create(
        name="default",
        queue="default",
        host="night-host",
        pid=77,
        workers=2,
        started_at=now - timedelta(hours=1),
        seen_at=now - timedelta(seconds=40),
    )
    with time_machine.travel(now - timedelta(seconds=90)):
        enqueue(sample_jobs.flaky, fails=0)
    page = browser_page
    log_in(page, "/admin/dashboard/")

    cluster = page.locator("tr.cluster", has_text="night-host (77)")
    expect(cluster).to_have_class(re.compile("stale"))
    expect(cluster).to_contain_text(re.compile(r"stale: last seen 4\d s ago"))
    expect(page.locator(".dash-banner")).to_contain_text(
        re.compile(r"queue 'default' has had due work and no live worker for 4\d s")
    )
    page.goto("/readyz")
    expect(page.locator("body")).to_contain_text(
        re.compile(r"no live worker for 4\d s \(its last worker was seen 4\d s ago\)")
    )
