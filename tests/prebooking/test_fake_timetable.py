"""The fake AimHarder that `make run` starts offers, at any hour, classes whose booking opens
within the next minutes and over the next hours; its set-up endpoint changes that."""

from __future__ import annotations

import json
import urllib.request
import zoneinfo
from datetime import datetime, timedelta

import pytest
import time_machine

from devgyms.fake_aimharder import FakeAimHarder, serve

MADRID = zoneinfo.ZoneInfo("Europe/Madrid")


def openings(fake: FakeAimHarder, box: str, now: datetime) -> list[float]:
    """Seconds from now to each opening still ahead, on today's and tomorrow's lists."""
    member = fake.accounts["member@example.com"]
    ahead = []
    for day in (now.date(), now.date() + timedelta(days=1)):
        fake.bookings(member, box, {"day": [day.strftime("%Y%m%d")]})
    for gym_class in fake.classes.values():
        if gym_class.box == box and gym_class.opens_at > now.timestamp():
            ahead.append(gym_class.opens_at - now.timestamp())
    return sorted(ahead)


@pytest.mark.parametrize("hour", range(24))
def test_some_class_opens_within_minutes_and_more_over_the_next_hours(hour):
    now = datetime(2026, 12, 5, hour, 7, 30, tzinfo=MADRID)
    with time_machine.travel(now, tick=False):
        fake = FakeAimHarder()
        fake.seed_demo()

        ahead = openings(fake, "fake-box", now)

    assert ahead[0] <= 15 * 60
    assert sum(1 for seconds in ahead if seconds <= 4 * 3600) >= 15


def test_the_set_up_endpoint_replaces_a_timetable_and_refuses_a_bad_one():
    fake = FakeAimHarder()
    fake.seed_demo()
    server, _thread = serve(fake)
    try:

        def setup(spec: dict) -> tuple[int, dict]:
            url = f"{server.url}/_fake/setup"
            request = urllib.request.Request(url, data=json.dumps(spec).encode(), method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as refused:
                return refused.code, json.loads(refused.read())

        status, _ = setup({"timetables": [{"box": "fake-box", "every_minutes": 60}]})
        assert status == 200
        now = datetime.now(MADRID)
        day = now.strftime("%Y%m%d")
        listed = fake.bookings(fake.accounts["member@example.com"], "fake-box", {"day": [day]})
        assert len(listed["bookings"]) == 24

        status, answer = setup({"timetables": [{"box": "fake-box", "every_minutes": 0}]})
        assert status == 400
        assert "every_minutes" in answer["error"]
    finally:
        server.shutdown()
        server.server_close()
