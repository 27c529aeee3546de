"""The user's pages: form validation, ownership (404 for another user's), cancel."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from prebooking import services
from prebooking.models import Prebooking

pytestmark = pytest.mark.django_db


def _local(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _form(**changes) -> dict:
    opens = timezone.now() + timedelta(days=1)
    data = {
        "provider": "demo",
        "class_id": "crossfit-0700",
        "class_starts_at": _local(opens + timedelta(days=2)),
        "opens_at": _local(opens),
        "notes": "front row",
        "time_zone": "UTC",
    }
    data.update(changes)
    return data


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def someone_else(django_user_model):
    return django_user_model.objects.create_user("mallory", "mallory@example.com", "x")


def armed(prebooking) -> bool:
    return Job.objects.filter(
        name="prebooking.tasks.arm",
        kwargs__instant=prebooking.opens_at.isoformat(),
        status__in=["queued", "running"],
    ).exists()


def test_creating_a_prebooking_stores_it_with_its_armers(signed_in, user):
    response = signed_in.post("/prebookings/new/", _form())

    prebooking = Prebooking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/prebookings/{prebooking.pk}/"
    assert prebooking.owner == user
    assert prebooking.status == "pending"
    assert prebooking.payload["class_id"] == "crossfit-0700"
    assert prebooking.payload["member"] == user.username
    assert armed(prebooking)


def test_opening_time_is_read_in_the_users_time_zone(signed_in):
    opens = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    madrid = opens.astimezone(zoneinfo.ZoneInfo("Europe/Madrid"))
    signed_in.post(
        "/prebookings/new/",
        _form(opens_at=madrid.strftime("%Y-%m-%dT%H:%M:%S"), time_zone="Europe/Madrid"),
    )

    assert Prebooking.objects.get().opens_at == opens


def test_opening_time_in_the_past_is_refused(signed_in):
    response = signed_in.post(
        "/prebookings/new/", _form(opens_at=_local(timezone.now() - timedelta(minutes=1)))
    )

    assert response.status_code == 200
    assert "Booking opening time is in the past" in response.content.decode()
    assert not Prebooking.objects.exists()


def test_opening_time_too_far_ahead_is_refused(signed_in, settings):
    settings.PREBOOKING_MAX_AHEAD_DAYS = 30
    far = timezone.now() + timedelta(days=31)
    response = signed_in.post(
        "/prebookings/new/",
        _form(opens_at=_local(far), class_starts_at=_local(far + timedelta(days=1))),
    )

    assert "at most 30 days from now" in response.content.decode()
    assert not Prebooking.objects.exists()


def test_class_starting_before_booking_opens_is_refused(signed_in):
    opens = timezone.now() + timedelta(days=1)
    response = signed_in.post(
        "/prebookings/new/",
        _form(opens_at=_local(opens), class_starts_at=_local(opens - timedelta(hours=1))),
    )

    assert "The class starts before booking opens." in response.content.decode()
    assert not Prebooking.objects.exists()


def test_a_second_pending_prebooking_for_the_same_class_is_refused(signed_in):
    signed_in.post("/prebookings/new/", _form())
    response = signed_in.post("/prebookings/new/", _form())

    assert "already have a pending prebooking for this class" in response.content.decode()
    assert Prebooking.objects.count() == 1


def test_more_than_the_pending_limit_is_refused(signed_in, settings):
    settings.PREBOOKING_MAX_PENDING = 2
    for number in range(2):
        signed_in.post("/prebookings/new/", _form(class_id=f"class-{number}"))
    response = signed_in.post("/prebookings/new/", _form(class_id="one-too-many"))

    assert "2 pending prebookings, the most allowed." in response.content.decode()
    assert Prebooking.objects.count() == 2


def test_list_shows_only_my_prebookings_upcoming_first(signed_in, make_prebooking, someone_else):
    later = make_prebooking(opens_in=7200, class_id="later-class")
    sooner = make_prebooking(opens_in=3600, class_id="sooner-class")
    make_prebooking(opens_in=3600, class_id="not-mine", owner=someone_else)

    page = signed_in.get("/prebookings/").content.decode()

    assert page.index("sooner-class") < page.index("later-class")
    assert "not-mine" not in page
    assert f'data-until="{sooner.opens_at.isoformat()}"' in page
    assert later.pk


def test_list_shows_past_results_with_lateness(signed_in, make_prebooking):
    prebooking = make_prebooking(opens_in=3600, class_id="done-class")
    Prebooking.objects.filter(pk=prebooking.pk).update(
        status="succeeded",
        fired_at=prebooking.opens_at + timedelta(milliseconds=3),
        lateness_ms=3.2,
        attempts=1,
        finished_at=timezone.now(),
        response={"status_code": 201, "answer": {"status": "booked"}, "reason": ""},
    )

    page = signed_in.get("/prebookings/").content.decode()

    assert "3.2 ms" in page
    assert "Booked." in page


def test_detail_of_my_prebooking(signed_in, make_prebooking):
    prebooking = make_prebooking(opens_in=3600, class_id="mine")

    response = signed_in.get(f"/prebookings/{prebooking.pk}/")

    assert response.status_code == 200
    assert "mine" in response.content.decode()


def test_another_users_prebooking_is_a_404(signed_in, make_prebooking, someone_else):
    theirs = make_prebooking(opens_in=3600, owner=someone_else)

    assert signed_in.get(f"/prebookings/{theirs.pk}/").status_code == 404
    assert signed_in.post(f"/prebookings/{theirs.pk}/cancel/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "pending"


def test_cancel_cancels_it(signed_in, make_prebooking):
    prebooking = make_prebooking(opens_in=3600)

    response = signed_in.post(f"/prebookings/{prebooking.pk}/cancel/")

    prebooking.refresh_from_db()
    assert response.status_code == 302
    assert prebooking.status == "cancelled"


def test_cancel_asks_for_confirmation_before_a_post_cancels(signed_in, make_prebooking):
    prebooking = make_prebooking(opens_in=3600)

    page = signed_in.get(f"/prebookings/{prebooking.pk}/cancel/")

    assert page.status_code == 200
    assert "Yes, cancel it" in page.content.decode()
    prebooking.refresh_from_db()
    assert prebooking.status == "pending"


def test_pages_need_a_login(client):
    response = client.get("/prebookings/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_forms_are_csrf_protected(user, make_prebooking):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    prebooking = make_prebooking(opens_in=3600)

    assert strict.post("/prebookings/new/", _form()).status_code == 403
    assert strict.post(f"/prebookings/{prebooking.pk}/cancel/").status_code == 403


def test_staff_cancel_action_cancels_pending_ones_only(client, make_prebooking, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin_user)
    pending = make_prebooking(opens_in=3600)
    done = make_prebooking(opens_in=3600)
    services.cancel_prebooking(done.pk)

    response = client.post(
        "/admin/prebooking/prebooking/",
        {
            "action": "cancel",
            "index": 0,
            "_selected_action": [pending.pk, done.pk],
            "confirmed": "yes",
        },
        follow=True,
    )

    pending.refresh_from_db()
    assert pending.status == "cancelled"
    assert "1 cancelled, 1 skipped: not pending" in [str(m) for m in response.context["messages"]]


def test_staff_rerun_action_schedules_a_cancelled_prebooking_again(
    client, make_prebooking, django_user_model
):
    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin_user)
    prebooking = make_prebooking(opens_in=3600)
    services.cancel_prebooking(prebooking.pk)

    response = client.post(
        "/admin/prebooking/prebooking/",
        {"action": "rerun", "index": 0, "_selected_action": [prebooking.pk]},
        follow=True,
    )

    prebooking.refresh_from_db()
    assert prebooking.status == "pending"
    assert armed(prebooking)
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["1 scheduled again"]


def test_a_prebookings_page_offers_cancel_which_asks_first_and_is_logged(
    client, make_prebooking, django_user_model
):
    from django.contrib.admin.models import LogEntry

    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin_user)
    prebooking = make_prebooking(opens_in=3600)
    page = f"/admin/prebooking/prebooking/{prebooking.pk}/change/"
    act = f"/admin/prebooking/prebooking/{prebooking.pk}/act/cancel/"

    shown = client.get(page).content.decode()
    asked = client.get(act, {"next": page})
    prebooking.refresh_from_db()
    assert ">Cancel…</a>" in shown
    assert asked.status_code == 200 and prebooking.status == "pending"

    done = client.post(act, {"confirmed": "yes", "note": "member asked", "next": page})

    prebooking.refresh_from_db()
    assert (done.status_code, done.url) == (302, page)
    assert prebooking.status == "cancelled"
    assert LogEntry.objects.get().get_change_message() == "Cancelled by staff action. member asked"


def test_the_job_search_finds_a_prebookings_armers_by_its_id_or_its_members_email(
    client, make_prebooking, django_user_model
):
    from jobs.models import Job

    admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin_user)
    member = django_user_model.objects.create_user("mia", email="Mia@Example.com")
    prebooking = make_prebooking(opens_in=3600, owner=member)
    other = make_prebooking(opens_in=7200)
    armers = set(Job.objects.filter(target__contains=prebooking.opens_at.isoformat()[:19]))
    assert len(armers) == 2

    for term in (f"{prebooking.pk}", "mia@example.com"):
        page = client.get("/admin/jobs/job/", {"q": term}).content.decode()
        for armer in armers:
            assert f'<a href="/admin/jobs/job/{armer.pk}/change/' in page
        assert other.opens_at.isoformat()[:19] not in page
