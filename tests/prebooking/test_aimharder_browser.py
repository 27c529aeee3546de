"""In a real browser (Playwright + Chromium): link an AimHarder account at the fake, pick a
class from the day's list, and see it booked at its opening instant."""

from __future__ import annotations

import math
import re
import time
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from prebooking.models import Prebooking
from tests.prebooking.conftest import AIMHARDER_EMAIL, AIMHARDER_PASSWORD, fire_instant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
MADRID = zoneinfo.ZoneInfo("Europe/Madrid")


def test_link_an_account_pick_a_class_and_watch_it_book(
    browser_page, user, fake_aimharder, settings
):
    settings.PREBOOKING_MIN_AHEAD_SECONDS = 1  # so the class can open a few seconds from now
    opens_at = datetime.fromtimestamp(math.ceil(time.time() + 6), tz=UTC)  # a whole second
    fake_class = fake_aimharder.add_class(
        "crossfit-sur", opens_at + timedelta(days=1), opens_at, "Halterofilia", coach="Nerea"
    )
    page = browser_page
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "correct horse battery")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile("/prebookings/$"))

    page.goto("/prebookings/accounts/")
    page.fill("input[name=email]", AIMHARDER_EMAIL)
    page.fill("input[name=password]", "a wrong one")
    page.click("#link-form button[type=submit]")
    expect(page.locator("#link-form")).to_contain_text("did not accept")
    page.fill("input[name=password]", AIMHARDER_PASSWORD)
    page.click("#link-form button[type=submit]")
    expect(page.locator("[data-account]")).to_contain_text("CrossFit Sur")

    page.click("a:text-is('Classes')")
    day = datetime.strptime(fake_class.day, "%Y%m%d").date()
    page.fill("input[name=day]", day.isoformat())
    page.click("#day-form button[type=submit]")
    row = page.locator(f"#classes tr[data-session='{fake_class.session_id}']")
    expect(row).to_contain_text("Halterofilia")
    expect(row).to_contain_text("Nerea")
    row.locator("a:text-is('Choose')").click()

    # This class opens outside the box's rule: override the opening for this prebooking.
    page.fill("input[name=opens_at]", opens_at.astimezone(MADRID).strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#pick-form button[type=submit]")
    page.wait_for_url(re.compile(r"/prebookings/\d+/$"))
    expect(page.locator("#outcome")).to_have_text("Waiting for booking to open.")
    prebooking = Prebooking.objects.get(owner=user)
    assert prebooking.opens_at == opens_at

    fire_instant(prebooking.opens_at)

    page.reload()
    expect(page.locator("#status")).to_have_text("Succeeded")
    expect(page.locator("#outcome")).to_have_text("Booked: your place is kept.")
    assert list(fake_class.booked) == [fake_aimharder.accounts[AIMHARDER_EMAIL].member_id]
