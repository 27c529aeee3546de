"""The README's AimHarder walkthrough, as written, in a real browser and at any hour: against
the fake AimHarder seeded as `make run` seeds it, with the clock set to 02:00 and to 14:00 in
Madrid."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from devgyms.fake_aimharder import FakeAimHarder, serve
from prebooking.models import Prebooking
from prebooking.providers import close_providers

MADRID = zoneinfo.ZoneInfo("Europe/Madrid")


@pytest.fixture
def seeded_fake(settings):
    """`manage.py fake_aimharder` as `make run` starts it: the demo box, member and timetable."""
    fake = FakeAimHarder()
    fake.seed_demo()
    server, _thread = serve(fake)
    settings.AIMHARDER_LOGIN_URL = server.url
    settings.AIMHARDER_BOX_URL = server.url + "/{box}"
    settings.AIMHARDER_CLOCK_PROBING = False
    close_providers()
    yield fake
    close_providers()
    server.shutdown()
    server.server_close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hour", [2, 14], ids=["02:00 Madrid", "14:00 Madrid"])
def test_the_readme_aimharder_walkthrough_works_at_any_hour(
    browser_page, live_server, client, user, seeded_fake, hour
):
    page = browser_page
    tomorrow = (timezone.now().astimezone(MADRID) + timedelta(days=1)).date()
    moment = datetime(tomorrow.year, tomorrow.month, tomorrow.day, hour, tzinfo=MADRID)
    # The server's clock (this process: the live server's threads, the fake) is set; the
    # browser's is not, and nothing below reads it.
    with time_machine.travel(moment, tick=True):
        client.force_login(user)
        cookie = client.cookies["sessionid"].value
        page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])

        # "At /prebookings/accounts/ link member@example.com / aimharder-demo,"
        page.goto("/prebookings/accounts/")
        page.fill("#link-form input[name=email]", "member@example.com")
        page.fill("#link-form input[name=password]", "aimharder-demo")
        page.click("#link-form button[type=submit]")
        expect(page.locator("[data-account]")).to_contain_text("Fake CrossFit Box")

        # "set the box's rule to '2 hours before the class',"
        rule = page.locator("form.box-rule[data-box='fake-box']")
        rule.locator("select[name$=-rule]").select_option("hours_before")
        rule.locator("input[name$=-hours_before]").fill("2")
        rule.locator("button[type=submit]").click()
        expect(page.locator(".messages")).to_contain_text("rule of Fake CrossFit Box saved")

        # "then /prebookings/classes/: list today, choose the first class starting more than
        # two hours from now (its booking opens within 15 minutes) and prebook it"
        page.goto("/prebookings/classes/")
        page.fill("#day-form input[name=day]", tomorrow.isoformat())  # today, by the clock set
        page.click("#day-form button[type=submit]")
        rows = page.locator("#classes tr[data-session]")
        expect(rows.first).to_be_visible()
        now = timezone.now().astimezone(MADRID)
        starts = [
            datetime.combine(tomorrow, datetime.strptime(text[:5], "%H:%M").time(), MADRID)
            for text in rows.locator("td:first-child").all_inner_texts()
        ]
        first = next(i for i, start in enumerate(starts) if start > now + timedelta(hours=2))
        session_id = rows.nth(first).get_attribute("data-session")
        rows.nth(first).locator("a:text-is('Choose')").click()
        page.click("#pick-form button[type=submit]")

        # "the prebooking's page shows the booking" once it opens: here, that it will
        page.wait_for_url(re.compile(r"/prebookings/\d+/$"))
        expect(page.locator("#outcome")).to_have_text("Waiting for booking to open.")
        prebooking = Prebooking.objects.get(owner=user)
        assert prebooking.payload["session_id"] == session_id
        ahead = prebooking.opens_at - timezone.now()
        assert timedelta(seconds=5) < ahead <= timedelta(minutes=15), ahead
