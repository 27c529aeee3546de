"""Creating and cancelling prebookings: their instant's armers are jobs of the same transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import Job
from prebooking import services
from prebooking.models import Prebooking

pytestmark = pytest.mark.django_db


def armers(instant) -> list[Job]:
    return list(
        Job.objects.filter(
            name="prebooking.tasks.arm", kwargs__instant=instant.isoformat()
        ).order_by("unique_key")
    )


def test_creating_a_prebooking_makes_two_armer_jobs_due_lead_seconds_early(
    make_prebooking, settings
):
    prebooking = make_prebooking(opens_in=3600)

    lead = timedelta(seconds=services.armer_lead_seconds())
    assert lead >= timedelta(seconds=settings.PREBOOKING_LEAD_SECONDS)
    found = armers(prebooking.opens_at)
    assert [armer.unique_key for armer in found] == [
        services.armer_key(prebooking.opens_at, 1),
        services.armer_key(prebooking.opens_at, 2),
    ]
    assert {(armer.queue, armer.status, armer.run_at) for armer in found} == {
        ("timing", "queued", prebooking.opens_at - lead)
    }


def test_prebookings_of_one_instant_share_its_two_armers(make_prebooking, user):
    first = make_prebooking(opens_in=3600)
    for _ in range(3):
        services.create_prebooking(user, "demo", first.payload, first.opens_at)

    assert len(armers(first.opens_at)) == 2


def test_armers_start_early_enough_for_the_slowest_provider_to_prepare(settings):
    settings.PREBOOKING_LEAD_SECONDS = 5
    settings.AIMHARDER_PREPARE_SECONDS = 12

    assert services.armer_lead_seconds() == 13


def test_prebooking_opening_within_the_lead_time_is_armed_at_once(make_prebooking, settings):
    settings.PREBOOKING_LEAD_SECONDS = 60
    before = timezone.now()
    prebooking = make_prebooking(opens_in=30)

    found = armers(prebooking.opens_at)
    assert len(found) == 2
    assert all(before <= armer.run_at <= timezone.now() for armer in found)


def test_cancel_marks_it_cancelled_and_its_armers_stay_for_the_others(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)

    assert services.cancel_prebooking(prebooking.pk)

    prebooking.refresh_from_db()
    assert prebooking.status == Prebooking.Status.CANCELLED
    assert prebooking.finished_at is not None
    assert len(armers(prebooking.opens_at)) == 2


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


def test_rerun_puts_a_cancelled_prebooking_back_with_its_instants_armers(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    services.cancel_prebooking(prebooking.pk)

    assert services.rerun_prebooking(prebooking.pk)

    prebooking.refresh_from_db()
    assert prebooking.status == Prebooking.Status.PENDING
    assert [armer.status for armer in armers(prebooking.opens_at)] == ["queued", "queued"]


def test_rerun_after_the_armers_finished_makes_new_ones(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    services.cancel_prebooking(prebooking.pk)
    Job.objects.filter(name="prebooking.tasks.arm").update(
        status="succeeded"
    )  # found nothing to do

    assert services.rerun_prebooking(prebooking.pk)

    live = [armer for armer in armers(prebooking.opens_at) if armer.status == "queued"]
    assert len(live) == 2
