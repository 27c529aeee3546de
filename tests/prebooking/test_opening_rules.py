"""When booking opens by a box's rule: elapsed hours, or a wall-clock time days before (DST)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time

from prebooking.aimharder.services import local_time, opening_instant
from prebooking.models import AimHarderBox

MADRID = zoneinfo.ZoneInfo("Europe/Madrid")
# Spain moves from CET (+1) to CEST (+2) at 02:00 on Sunday 29 March 2026.
AFTER_CHANGE = datetime(2026, 3, 30, 18, 0, tzinfo=MADRID)


def _box(**rule) -> AimHarderBox:
    return AimHarderBox(slug="box", boid="1", time_zone="Europe/Madrid", **rule)


def test_hours_before_counts_elapsed_hours_across_a_dst_change():
    box = _box(rule="hours_before", hours_before=72)

    opens = opening_instant(box, AFTER_CHANGE)

    assert opens.astimezone(UTC) == datetime(2026, 3, 27, 16, 0, tzinfo=UTC)
    assert opens.astimezone(MADRID).hour == 17  # one hour "earlier" on the wall clock


def test_days_before_at_is_the_wall_clock_time_in_the_box_zone():
    box = _box(rule="days_before_at", days_before=2, at_time=time(12, 0))

    opens = opening_instant(box, AFTER_CHANGE)

    assert opens.astimezone(UTC) == datetime(2026, 3, 28, 11, 0, tzinfo=UTC)  # 12:00 CET


def test_a_time_in_the_spring_forward_gap_moves_to_the_first_real_time_after():
    moment = local_time(datetime(2026, 3, 29, 2, 30), "Europe/Madrid")

    assert moment.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert (moment.hour, moment.minute) == (3, 30)
