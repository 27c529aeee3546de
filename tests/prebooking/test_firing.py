"""Firing at the instant against the real demo gym (served in-process on a free port)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from jobs.testing import run_due_jobs
from mail.models import Email
from prebooking import firing, services
from prebooking.models import DemoGymClass, DemoGymRequest, Prebooking

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_firing")]


def test_same_instant_prebookings_reach_the_gym_in_creation_order_within_milliseconds(
    make_prebooking, demo_gym, django_user_model
):
    owners = [
        django_user_model.objects.create_user(f"member{i}", f"m{i}@example.com", "x")
        for i in range(30)
    ]
    first = make_prebooking(opens_in=3600, owner=owners[0], class_id="spin", capacity=100)
    created = [first] + [
        make_prebooking(owner=owner, class_id="spin", opens_in=3600) for owner in owners[1:]
    ]
    # The instant is set once all exist, so however long creating them took it is still ahead.
    instant = timezone.now() + timedelta(seconds=1)
    Prebooking.objects.filter(pk__in=[p.pk for p in created]).update(opens_at=instant)
    DemoGymClass.objects.filter(class_id="spin").update(opens_at=instant)

    assert firing.arm_instant(instant) == 30

    arrivals = list(DemoGymRequest.objects.filter(class_id="spin").order_by("arrived_at"))
    assert [a.member for a in arrivals] == [owner.username for owner in owners]
    lateness_ms = [(a.arrived_at - instant).total_seconds() * 1000 for a in arrivals]
    assert min(lateness_ms) >= 0
    assert max(lateness_ms) < 50
    assert set(Prebooking.objects.values_list("status", flat=True)) == {"succeeded"}


def test_each_prebooking_reaches_the_gym_once_when_two_workers_arm_together(
    make_prebooking, demo_gym
):
    import threading

    from django.db import connection

    prebooking = make_prebooking(opens_in=1, capacity=5)

    def worker() -> None:  # the instant's two armers: one fires, the other waits, then finds none
        try:
            firing.arm_instant(prebooking.opens_at)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert DemoGymRequest.objects.filter(class_id=prebooking.payload["class_id"]).count() == 1


def test_a_full_class_is_a_final_answer_and_emails_the_owner(
    make_prebooking, demo_gym, mailbox, django_user_model
):
    other = django_user_model.objects.create_user("bob", "bob@example.com", "x")
    booked = make_prebooking(opens_in=1, class_id="yoga", capacity=1)
    refused = make_prebooking(opens_in=1, class_id="yoga", owner=other)
    Prebooking.objects.filter(pk=refused.pk).update(opens_at=booked.opens_at)

    firing.arm_instant(booked.opens_at)

    booked.refresh_from_db()
    refused.refresh_from_db()
    assert booked.status == "succeeded"
    assert refused.status == "failed"
    assert refused.attempts == 1
    assert "class_full" in refused.error
    assert refused.response["answer"] == {"error": "class_full"}
    run_due_jobs(queue="default")  # the failure e-mail is a job of its own
    assert [message.to for message in mailbox] == [["bob@example.com"]]
    message = mailbox[0]
    assert message.subject == "Your booking for yoga did not go through"
    assert "Reason: " in message.body and "class_full" in message.body
    assert f"/prebookings/{refused.pk}/" in message.body
    assert f"/prebookings/{refused.pk}/" in message.alternatives[0][0]


def test_the_failure_email_is_sent_once_however_often_the_failure_is_recorded(
    make_prebooking, demo_gym, mailbox, django_user_model
):
    other = django_user_model.objects.create_user("bob", "bob@example.com", "x")
    refused = make_prebooking(opens_in=3600, owner=other)
    with transaction.atomic():
        services.queue_failure_email(refused.pk)
    with transaction.atomic():
        services.queue_failure_email(refused.pk)  # a second failure path reaching it again
    run_due_jobs(queue="default")
    assert [message.to for message in mailbox] == [["bob@example.com"]]
    assert Email.objects.get().template == "prebooking_failed"


def test_a_failure_email_job_queued_under_its_old_name_still_mails_the_owner(
    make_prebooking, demo_gym, mailbox, django_user_model
):
    # jobs.0008 renamed queued "prebooking.notify_failure" jobs to this path; they must run.
    other = django_user_model.objects.create_user("bob", "bob@example.com", "x")
    refused = make_prebooking(opens_in=3600, owner=other)
    Job.objects.create(
        name="prebooking.tasks.notify_failure",
        kwargs={"prebooking_id": refused.pk},
        run_at=timezone.now(),
    )
    run_due_jobs(queue="default")
    assert [message.to for message in mailbox] == [["bob@example.com"]]
    assert Job.objects.get(name="prebooking.tasks.notify_failure").status == "succeeded"


def test_not_open_yet_is_retried_quickly_until_the_gym_opens(make_prebooking, demo_gym):
    prebooking = make_prebooking(opens_in=1, class_id="late-clock", capacity=5)
    # The gym's clock runs 300 ms behind ours.
    DemoGymClass.objects.filter(class_id="late-clock").update(
        opens_at=prebooking.opens_at + firing.timedelta(milliseconds=300)
    )

    firing.arm_instant(prebooking.opens_at)

    prebooking.refresh_from_db()
    assert prebooking.status == "succeeded"
    assert prebooking.attempts > 1
    answers = DemoGymRequest.objects.filter(class_id="late-clock").order_by("arrived_at")
    assert [a.status_code for a in answers][-1] == 201
    assert {a.status_code for a in answers[: len(answers) - 1]} == {425}


def test_server_errors_are_retried_with_the_same_idempotency_key(make_prebooking, demo_gym):
    prebooking = make_prebooking(opens_in=1, class_id="flaky", capacity=5)
    DemoGymClass.objects.filter(class_id="flaky").update(fail_next=2)

    firing.arm_instant(prebooking.opens_at)

    prebooking.refresh_from_db()
    assert prebooking.status == "succeeded"
    assert prebooking.attempts == 3
    keys = set(
        DemoGymRequest.objects.filter(class_id="flaky").values_list("request_key", flat=True)
    )
    assert keys == {f"prebooking-{prebooking.pk}"}


def test_a_cancelled_prebooking_is_not_sent_even_when_already_armed(make_prebooking, demo_gym):
    from prebooking import services

    kept = make_prebooking(opens_in=1, class_id="pilates", capacity=5)
    cancelled = make_prebooking(opens_in=1, class_id="pilates")
    Prebooking.objects.filter(pk=cancelled.pk).update(opens_at=kept.opens_at)
    services.claim_for_arming(kept.opens_at)  # armed, as by a worker that died
    services.cancel_prebooking(cancelled.pk)

    firing.arm_instant(kept.opens_at)

    assert DemoGymRequest.objects.filter(class_id="pilates").count() == 1


def test_a_standby_armer_fires_on_time_when_the_owner_of_the_instant_dies(
    make_prebooking, demo_gym
):
    """The owner's connection holds the instant's lock; when it dies, the standby takes over."""
    import threading

    import psycopg
    from django.conf import settings as django_settings
    from django.db import connection

    from jobs.broker import listen_connection_params
    from prebooking import services

    prebooking = make_prebooking(opens_in=2, capacity=5)
    owner = psycopg.connect(**listen_connection_params("default"))  # the primary's session
    owner.execute(services.QUERIES["lock_instant"], services.instant_lock(prebooking.opens_at))
    fired = []

    def standby() -> None:
        try:
            fired.append(firing.arm_instant(prebooking.opens_at))
        finally:
            connection.close()

    thread = threading.Thread(target=standby)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # waiting on the lock, not firing
    owner.close()  # the primary's worker died: PostgreSQL ends its session, the lock goes
    thread.join(10)

    assert fired == [1]
    prebooking.refresh_from_db()
    assert prebooking.status == "succeeded"
    arrival = DemoGymRequest.objects.get(class_id=prebooking.payload["class_id"]).arrived_at
    assert 0 <= (arrival - prebooking.opens_at).total_seconds() < 0.05
    assert django_settings.PREBOOKING_QUEUE == "timing"
