"""Arrival targeting: requests reach the gym at its own opening instant, whatever its clock."""

from __future__ import annotations

import pytest

from prebooking.models import ClockEstimate
from tests.prebooking.conftest import fire_instant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("skew", [0.4, -0.4])
def test_requests_arrive_just_after_the_opening_by_the_gyms_clock(
    gym_class, aimharder_prebooking, fake_aimharder, settings, skew
):
    fake_aimharder.skew, fake_aimharder.delay = skew, 0.02
    settings.AIMHARDER_CLOCK_PROBING = True
    settings.AIMHARDER_PREPARE_SECONDS = 5
    fake_class = gym_class(opens_in=5.5, capacity=5)
    prebooking = aimharder_prebooking(fake_class)

    fire_instant(prebooking.opens_at)

    prebooking.refresh_from_db()
    [arrival] = fake_aimharder.arrivals()
    late_ms = (arrival["arrived"] - fake_class.opens_at) * 1000
    timing = prebooking.response["timing"]
    assert prebooking.status == "succeeded"
    assert 0 <= late_ms <= 15, late_ms
    assert timing["offset_ms"] == pytest.approx(skew * 1000, abs=6)
    assert timing["rtt_ms"] == pytest.approx(40, abs=10)
    assert prebooking.arrival_lateness_ms == pytest.approx(late_ms, abs=6)
    estimate = ClockEstimate.objects.get()
    assert estimate.offset_ms == pytest.approx(skew * 1000, abs=6)
