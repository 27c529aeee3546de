"""Creating and cancelling prebookings: the schedule lives and dies with them (one transaction)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from prebooking import services
from prebooking.models import Prebooking

pytestmark = pytest.mark.django_db


def test_creating_a_prebooking_schedules_its_arming_lead_seconds_early(make_prebooking, settings):
    prebooking = make_prebooking(opens_in=3600)

    schedule = Schedule.objects.get(name=services.schedule_name(prebooking.pk))
    lead = timedelta(seconds=settings.PREBOOKING_LEAD_SECONDS)
    assert schedule.next_run == prebooking.opens_at - lead
    assert schedule.cluster == "timing"
    assert schedule.func == "prebooking.tasks.arm"


def test_prebooking_opening_within_the_lead_time_is_armed_at_once_on_the_timing_queue(
    make_prebooking,
):
    prebooking = make_prebooking(opens_in=30)

    assert not Schedule.objects.filter(name=services.schedule_name(prebooking.pk)).exists()
    assert OrmQ.objects.filter(key="timing").count() == 1


def test_cancel_removes_the_schedule(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)

    assert services.cancel_prebooking(prebooking.pk)

    prebooking.refresh_from_db()
    assert prebooking.status == Prebooking.Status.CANCELLED
    assert prebooking.finished_at is not None
    assert not Schedule.objects.filter(name=services.schedule_name(prebooking.pk)).exists()


def test_cancel_of_a_prebooking_that_already_fired_changes_nothing(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    services.claim_for_firing([prebooking.pk], timezone.now())

    assert not services.cancel_prebooking(prebooking.pk)
    prebooking.refresh_from_db()
    assert prebooking.status == Prebooking.Status.FIRING


def test_database_refuses_a_pending_prebooking_with_fired_at(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)

    with pytest.raises(IntegrityError), transaction.atomic():
        Prebooking.objects.filter(pk=prebooking.pk).update(fired_at=timezone.now(), lateness_ms=0)


def test_database_refuses_a_failure_without_a_reason(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)

    with pytest.raises(IntegrityError), transaction.atomic():
        Prebooking.objects.filter(pk=prebooking.pk).update(
            status="expired", finished_at=timezone.now()
        )


def test_rerun_puts_a_failed_prebooking_back_on_schedule_while_its_window_is_open(
    make_prebooking,
):
    prebooking = make_prebooking(opens_in=3600)
    services.cancel_prebooking(prebooking.pk)

    assert services.rerun_prebooking(prebooking.pk)

    prebooking.refresh_from_db()
    assert prebooking.status == Prebooking.Status.PENDING
    assert Schedule.objects.filter(name=services.schedule_name(prebooking.pk)).exists()
