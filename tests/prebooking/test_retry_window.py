"""Retries never outlive PREBOOKING_RETRY_WINDOW after opening; recovery respects it too."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs.models import Job
from jobs.testing import run_due_jobs
from prebooking import firing, services
from prebooking.models import Prebooking
from prebooking.providers.base import NOT_OPEN, RETRY, BookingResult

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_network_errors_back_off_inside_the_window_only(settings):
    settings.PREBOOKING_RETRY_WINDOW = 60
    error = BookingResult(RETRY, None, {}, "refused")
    opened = time.time()

    assert firing.retry_delay(error, 1, opened, opened + 1) == 0.25
    assert firing.retry_delay(error, 3, opened, opened + 1) == 1.0
    assert firing.retry_delay(error, 3, opened, opened + 59.5) is None


def test_not_open_yet_is_retried_only_in_the_first_seconds(settings):
    settings.PREBOOKING_NOT_OPEN_RETRY_SECONDS = 5
    not_open = BookingResult(NOT_OPEN, 425, {"error": "not_open"})
    opened = time.time()

    assert firing.retry_delay(not_open, 1, opened, opened + 0.1) == 0.1  # every 100 ms
    assert firing.retry_delay(not_open, 9, opened, opened + 1) == 0.1
    assert firing.retry_delay(not_open, 1, opened, opened + 6) is None


@pytest.mark.django_db(transaction=True)
def test_a_booking_failing_at_the_end_of_the_window_fails_instead_of_retrying(
    make_prebooking, settings, mailbox
):
    settings.PREBOOKING_PROVIDERS = {
        "demo": {"label": "Down", "url": f"http://127.0.0.1:{_closed_port()}", "token": ""}
    }
    prebooking = make_prebooking(opens_in=-59.9)

    firing.fire_now(prebooking.pk)

    prebooking.refresh_from_db()
    assert prebooking.status == "failed"
    assert prebooking.attempts == 1
    assert "retry window closed" in prebooking.error
    run_due_jobs(queue="default")  # the failure e-mail is a job of its own
    assert len(mailbox) == 1


def _claimed_then_worker_died(make_prebooking, opens_in: float) -> Prebooking:
    prebooking = make_prebooking(opens_in=opens_in)
    services.claim_for_firing([prebooking.pk], prebooking.opens_at)
    return prebooking


def test_sweep_retries_a_prebooking_whose_worker_died_inside_the_window(make_prebooking):
    prebooking = _claimed_then_worker_died(make_prebooking, opens_in=60)

    with time_machine.travel(prebooking.opens_at + timedelta(seconds=40)):
        counts = services.sweep()

    prebooking.refresh_from_db()
    assert counts["refired"] == 1
    assert prebooking.status == "firing"
    assert prebooking.attempts == 2
    assert Job.objects.get(name="prebooking.tasks.refire").kwargs == {
        "prebooking_id": prebooking.pk
    }


@pytest.mark.django_db(transaction=True)
def test_sweep_fails_a_prebooking_whose_worker_died_after_the_window(make_prebooking, mailbox):
    prebooking = _claimed_then_worker_died(make_prebooking, opens_in=60)

    with time_machine.travel(prebooking.opens_at + timedelta(seconds=61)):
        counts = services.sweep()
        run_due_jobs(queue="default")  # the failure e-mail is a job of its own

    prebooking.refresh_from_db()
    assert counts["failed"] == 1
    assert prebooking.status == "failed"
    assert "window has closed" in prebooking.error
    assert len(mailbox) == 1


def test_sweep_expires_a_prebooking_nobody_fired_before_the_window_closed(make_prebooking):
    prebooking = make_prebooking(opens_in=600)

    with time_machine.travel(prebooking.opens_at + timedelta(seconds=61)):
        services.sweep()

    prebooking.refresh_from_db()
    assert prebooking.status == "expired"
    assert prebooking.fired_at is None


def test_sweep_gives_an_instant_whose_armers_ended_new_ones(make_prebooking):
    prebooking = make_prebooking(opens_in=60)
    services.claim_for_arming(prebooking.opens_at)
    Job.objects.filter(name="prebooking.tasks.arm").update(status="dead")  # both armers gave up

    with time_machine.travel(prebooking.opens_at + timedelta(seconds=10)):
        counts = services.sweep()

    assert counts["rearmed"] == 1
    assert Job.objects.filter(name="prebooking.tasks.arm", status="queued").count() == 2


def test_sweep_leaves_an_instant_with_live_armers_alone(make_prebooking):
    prebooking = make_prebooking(opens_in=60)

    with time_machine.travel(prebooking.opens_at - timedelta(seconds=2)):
        counts = services.sweep()

    assert counts["rearmed"] == 0
    assert Job.objects.filter(name="prebooking.tasks.arm").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_prebooking_left_firing_by_a_dead_worker_is_sent_again_with_the_same_key(
    make_prebooking, demo_gym
):
    from prebooking.models import DemoGymRequest

    prebooking = make_prebooking(opens_in=-20, capacity=5)
    services.claim_for_firing([prebooking.pk], prebooking.opens_at)  # then the worker died
    Prebooking.objects.filter(pk=prebooking.pk).update(
        attempted_at=timezone.now() - timedelta(minutes=1)
    )
    Job.objects.filter(name="prebooking.tasks.arm").update(status="succeeded")  # they had ended

    assert services.sweep()["refired"] == 1
    run_due_jobs(queue="timing")

    prebooking.refresh_from_db()
    assert prebooking.status == "succeeded"
    assert prebooking.attempts == 2
    keys = DemoGymRequest.objects.values_list("request_key", flat=True)
    assert list(keys) == [f"prebooking-{prebooking.pk}"]
