"""Browser journey (Playwright + Debian Chromium): sign up, prebook, see the countdown, cancel."""

from __future__ import annotations

import re
import shutil
import zoneinfo
from datetime import UTC, timedelta

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from jobs.testing import run_due_jobs
from prebooking.models import Prebooking
from tests.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ZONE = "Europe/Madrid"


@pytest.fixture
def page(monkeypatch):
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(timezone_id=ZONE, locale="en-GB")
        context.set_default_timeout(10_000)
        expect.set_options(timeout=10_000)
        yield context.new_page()
        browser.close()


def _local(moment) -> str:
    return moment.astimezone(zoneinfo.ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S")


def _prebook(page, base: str, class_id: str, opens_at) -> None:
    page.goto(f"{base}/prebookings/new/")
    page.select_option("select[name=provider]", "demo")
    page.fill("input[name=class_id]", class_id)
    page.fill("input[name=class_starts_at]", _local(opens_at + timedelta(days=1)))
    page.fill("input[name=opens_at]", _local(opens_at))
    page.fill("textarea[name=notes]", "near the window")
    page.click("#prebooking-form button[type=submit]")


@pytest.fixture
def close_connections_after():
    # Under Playwright's sync API the test body gets its own database connection (a separate
    # context); left open, it keeps the test database from being dropped.
    yield
    connections.close_all()


def test_sign_up_prebook_see_the_countdown_and_cancel_another(
    page, live_server, settings, mailbox, close_connections_after
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    base = live_server.url
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=username]", "carla")
    page.fill("input[name=email]", "carla@example.com")
    page.fill("input[name=password1]", "a-Strong-passw0rd!")
    page.fill("input[name=password2]", "a-Strong-passw0rd!")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/accounts/signup/done/")
    run_due_jobs(queue="default")  # the activation email goes through the jobs layer
    link = re.search(r"https?://\S+(/accounts/activate/\S+/)", mailbox[0].body).group(1)
    page.goto(f"{base}{link}")
    page.fill("input[name=password]", "a-Strong-passw0rd!")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/prebookings/")

    opens_at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    _prebook(page, base, "spinning-0700", opens_at)
    page.wait_for_url(re.compile(r"/prebookings/\d+/$"))
    countdown = page.locator(".countdown")
    expect(countdown).to_have_text(re.compile(r"^in (01:59:\d\d|02:00:00)$"))
    kept = Prebooking.objects.get(payload__class_id="spinning-0700")
    assert kept.opens_at == opens_at.astimezone(UTC)  # read in the browser's time zone

    _prebook(page, base, "yoga-0800", opens_at + timedelta(hours=1))
    page.goto(f"{base}/prebookings/")
    other = Prebooking.objects.get(payload__class_id="yoga-0800")
    page.click(f"#upcoming tr[data-prebooking='{other.pk}'] a[data-cancel]")
    page.wait_for_url(f"{base}/prebookings/{other.pk}/cancel/")
    page.click("main button[type=submit]")  # "Yes, cancel it"
    page.wait_for_url(f"{base}/prebookings/")

    expect(page.locator(".messages")).to_contain_text("cancelled")
    expect(page.locator(f"#cancelled tr[data-prebooking='{other.pk}'] .badge")).to_have_text(
        "Cancelled"
    )
    expect(page.locator(f"#upcoming tr[data-prebooking='{kept.pk}']")).to_have_count(1)
    other.refresh_from_db()
    kept.refresh_from_db()
    assert (other.status, kept.status) == ("cancelled", "pending")
