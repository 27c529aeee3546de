"""In a real browser: the prebooking pages follow a prebooking as it fires, and what they show
after polling is exactly what a reload shows (status, outcome, attempts, lateness, the gym's
clock offset and arrival, which table the row is in)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from prebooking.models import Prebooking
from tests.prebooking.conftest import fire_instant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The page's main region as a reader sees it: the countdowns tick and every render masks the
# CSRF token anew, so those two are blanked; everything else must match to the character.
SNAPSHOT = """() => {
  const main = document.querySelector("main").cloneNode(true);
  main.querySelectorAll(".countdown").forEach((el) => { el.textContent = ""; });
  main.querySelectorAll("input[name=csrfmiddlewaretoken]").forEach((el) => {
    el.setAttribute("value", "");
  });
  main.querySelectorAll(".messages").forEach((el) => el.remove());
  return main.innerHTML;
}"""


def sign_in(page, client, user, live_server) -> None:
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])


def test_the_list_after_polling_is_the_list_after_a_reload(
    browser_page, live_server, client, user, demo_gym, fast_firing, make_prebooking
):
    page = browser_page
    sign_in(page, client, user, live_server)
    firing = make_prebooking(opens_in=2.5, class_id="spinning-0700", capacity=5)
    later = make_prebooking(opens_in=3600, class_id="yoga-0800")
    page.goto("/prebookings/")
    expect(page.locator(f"#upcoming tr[data-prebooking='{firing.pk}']")).to_have_count(1)

    fire_instant(firing.opens_at)  # the timing worker's work, in this thread

    row = page.locator(f"#past tr[data-prebooking='{firing.pk}']")
    expect(row.locator("[data-status]")).to_have_text("Succeeded")
    expect(row.locator("[data-outcome]")).to_have_text(re.compile(r"^Booked \(booking \d+\)\.$"))
    expect(row.locator("[data-lateness]")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    expect(page.locator(f"#upcoming tr[data-prebooking='{firing.pk}']")).to_have_count(0)
    expect(
        page.locator(f"#upcoming tr[data-prebooking='{later.pk}'] a[data-cancel]")
    ).to_have_count(1)
    polled = page.evaluate(SNAPSHOT)

    page.reload()

    assert page.evaluate(SNAPSHOT) == polled


def test_a_prebookings_page_after_polling_is_the_page_after_a_reload(
    browser_page,
    live_server,
    client,
    user,
    gym_class,
    aimharder_prebooking,
    fake_aimharder,
    settings,
):
    # The gym's clock is probed ahead of the instant, so the page has an offset and an arrival.
    fake_aimharder.skew, fake_aimharder.delay = 0.3, 0.01
    settings.AIMHARDER_CLOCK_PROBING = True
    settings.AIMHARDER_PREPARE_SECONDS = 5
    prebooking = aimharder_prebooking(gym_class(opens_in=6, capacity=5))
    page = browser_page
    sign_in(page, client, user, live_server)
    page.goto(f"/prebookings/{prebooking.pk}/")
    expect(page.locator("#outcome")).to_have_text("Waiting for booking to open.")
    expect(page.locator("#attempts")).to_have_text("0")

    fire_instant(prebooking.opens_at)

    expect(page.locator("#status")).to_have_text("Succeeded")
    expect(page.locator("#outcome")).to_have_text("Booked: your place is kept.")
    expect(page.locator("[data-outcome]")).not_to_have_text("Waiting for booking to open.")
    expect(page.locator("#attempts")).to_have_text("1")
    expect(page.locator("#sent")).to_contain_text("ms")
    expect(page.locator("#clock-offset")).to_contain_text("ms from ours")
    expect(page.locator("#arrival")).to_contain_text("after booking opened")
    expect(page.locator("#cancel-booking")).to_have_count(1)
    expect(page.locator("a[data-cancel]")).to_have_count(0)
    polled = page.evaluate(SNAPSHOT)

    page.reload()

    assert page.evaluate(SNAPSHOT) == polled
    assert Prebooking.objects.get(pk=prebooking.pk).status == "succeeded"
