"""The README's AimHarder walkthrough, as written, at any hour: against the fake AimHarder
seeded as `make run` seeds it, with the clock set to 02:00 and to 14:00 in Madrid."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from devgyms.fake_aimharder import FakeAimHarder, serve
from prebooking.models import AimHarderBox, Prebooking
from prebooking.providers import close_providers

pytestmark = pytest.mark.django_db
MADRID = zoneinfo.ZoneInfo("Europe/Madrid")
ROW = re.compile(
    r'<tr data-session="(?P<session>\d+)">\s*<td>(?P<time>\d\d:\d\d) - \d\d:\d\d</td>'
    r".*?<a class=\"button button-small\" href=\"(?P<pick>[^\"]+)\">Choose</a>",
    re.S,
)


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


@pytest.mark.parametrize("hour", [2, 14], ids=["02:00 Madrid", "14:00 Madrid"])
def test_the_readme_aimharder_walkthrough_works_at_any_hour(client, user, seeded_fake, hour):
    tomorrow = (timezone.now().astimezone(MADRID) + timedelta(days=1)).date()
    moment = datetime(tomorrow.year, tomorrow.month, tomorrow.day, hour, tzinfo=MADRID)
    with time_machine.travel(moment, tick=True):
        client.force_login(user)
        # "At /prebookings/accounts/ link member@example.com / aimharder-demo"
        linked = client.post(
            "/prebookings/accounts/", {"email": "member@example.com", "password": "aimharder-demo"}
        )
        assert linked.status_code == 302, linked.content.decode()
        box = AimHarderBox.objects.get(account__owner=user)
        # "set the box's rule to '2 hours before the class'"
        prefix = f"box{box.pk}"
        client.post(
            f"/prebookings/accounts/boxes/{box.pk}/rule/",
            {
                f"{prefix}-rule": "hours_before",
                f"{prefix}-hours_before": "2",
                f"{prefix}-time_zone": "Europe/Madrid",
            },
        )
        box.refresh_from_db()
        assert (box.rule, box.hours_before) == ("hours_before", 2)

        # "then /prebookings/classes/: list today, choose the first class starting more than
        # two hours from now"
        listing = client.get("/prebookings/classes/", {"box": box.pk, "day": tomorrow.isoformat()})
        page = listing.content.decode()
        rows = [m for m in ROW.finditer(page)]
        assert rows, page
        now = timezone.now().astimezone(MADRID)
        later = [
            m
            for m in rows
            if datetime.combine(tomorrow, datetime.strptime(m["time"], "%H:%M").time(), MADRID)
            > now + timedelta(hours=2)
        ]
        assert later, f"no class starts more than two hours after {now:%H:%M}"
        chosen = later[0]
        pick_url = chosen["pick"].replace("&amp;", "&")
        form = client.get(pick_url)
        assert form.status_code == 200
        opens_at = re.search(r'name="opens_at" value="([^"]+)"', form.content.decode())[1]

        # "and prebook it"
        query = dict(part.split("=", 1) for part in pick_url.split("?", 1)[1].split("&"))
        saved = client.post(
            "/prebookings/classes/pick/", {**query, "opens_at": opens_at, "insist": "on"}
        )
        assert saved.status_code == 302, saved.content.decode()

        prebooking = Prebooking.objects.get(owner=user)
        ahead = prebooking.opens_at - timezone.now()
        assert timedelta(seconds=5) < ahead <= timedelta(minutes=15)  # "opens within 15 minutes"
        assert prebooking.payload["session_id"] == chosen["session"]
        detail = client.get(saved["Location"]).content.decode()
        assert "Waiting for booking to open." in detail
