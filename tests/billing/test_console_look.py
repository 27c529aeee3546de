"""The console looks like ours and fits a laptop: branding, favicon, seconds, 1280 px lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from billing.models import StripeEvent
from jobs.models import Job
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

T0 = datetime(2026, 12, 1, 9, 0, 7, tzinfo=UTC)


def dead_event(client) -> StripeEvent:
    customer = {"id": "cus_" + "Q" * 24, "email": 5, "name": "n" * 200}  # permanent: bad email
    event = make_event(
        "customer.subscription.trial_will_end",
        {"id": "sub_" + "Z" * 24, "customer": customer["id"], "quantity": "many"},
        id="evt_" + "1QxLongEventIdentifier" * 2,
        created=int(T0.timestamp()),
    )
    deliver(client, event, T0)
    run_at(T0)
    return StripeEvent.objects.get()


@pytest.mark.django_db
def test_admin_is_branded_and_the_favicon_is_served(admin_client, client):
    index = admin_client.get("/admin/").content.decode()
    favicon = client.get("/favicon.ico", follow=True)

    assert "Prebook console" in index
    assert "Django administration" not in index
    assert "Demo gym classes" in index and "classs" not in index
    assert favicon.status_code == 200
    assert b"".join(favicon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file


@pytest.mark.django_db
def test_list_times_show_seconds(admin_client, client):
    event = dead_event(client)

    events = admin_client.get("/admin/billing/stripeevent/").content.decode()
    dead = admin_client.get("/admin/jobs/deadletter/").content.decode()

    assert f"{event.received_at:%Y-%m-%d %H:%M:%S}" in events
    assert re.search(r"2026-12-01 09:00:07", dead)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_event_and_dead_letter_lists_fit_1280_pixels(browser_page, admin_user, client):
    dead_event(client)
    assert Job.objects.filter(status="dead").exists()
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/admin/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "password")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))

    for url, last_columns in (
        ("/admin/billing/stripeevent/", ["Last error"]),
        ("/admin/jobs/deadletter/", ["Last error", "Finished at"]),
        ("/admin/jobs/job/", ["Last error"]),
        ("/admin/jobs/jobattempt/", ["Worker"]),
    ):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 1280, f"{url} is {overflow} px wide"
        for name in last_columns:
            header = page.locator("#result_list thead th", has_text=name).first
            box = header.bounding_box()
            assert box["x"] + box["width"] <= 1280, f"{url}: {name} is cut off"
