"""The member's AimHarder pages over HTTP: link, rules, class picker, cancel at the gym."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from prebooking.aimharder import services as aimharder_services
from prebooking.models import AimHarderAccount, AimHarderBox, AimHarderCancellation, Prebooking
from prebooking.providers import credentials
from tests.prebooking.conftest import AIMHARDER_EMAIL, AIMHARDER_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client, user):
    client.force_login(user)
    return client


def test_linking_checks_the_password_and_stores_it_only_encrypted(member, fake_aimharder, user):
    response = member.post(
        "/prebookings/accounts/", {"email": AIMHARDER_EMAIL, "password": AIMHARDER_PASSWORD}
    )

    assert response.status_code == 302
    account = AimHarderAccount.objects.get(owner=user)
    assert account.password_token != AIMHARDER_PASSWORD
    assert credentials.decrypt(account.password_token) == AIMHARDER_PASSWORD
    assert len(account.fingerprint) == 50
    assert list(account.boxes.values_list("slug", "boid", "name")) == [
        ("crossfit-sur", "4321", "CrossFit Sur")
    ]
    page = member.get("/prebookings/accounts/").content.decode()
    assert AIMHARDER_EMAIL in page and "CrossFit Sur" in page


@pytest.mark.parametrize(
    ("trouble", "words"),
    [("wrong", "did not accept"), ("locked", "locked"), ("down", "unavailable")],
)
def test_a_failed_link_is_a_form_error_and_stores_nothing(member, fake_aimharder, trouble, words):
    password = "not-it" if trouble == "wrong" else AIMHARDER_PASSWORD
    if trouble == "locked":
        fake_aimharder.accounts[AIMHARDER_EMAIL].failures = fake_aimharder.LOCK_AFTER
    fake_aimharder.down = trouble == "down"

    response = member.post(
        "/prebookings/accounts/", {"email": AIMHARDER_EMAIL, "password": password}
    )

    assert response.status_code == 400
    assert words in response.content.decode()
    assert not AimHarderAccount.objects.exists()


def test_unlinking_deletes_the_credentials_and_cancels_pending_prebookings(
    member, linked_account, gym_class, aimharder_prebooking
):
    prebooking = aimharder_prebooking(gym_class(opens_in=3600))

    response = member.post(f"/prebookings/accounts/{linked_account.pk}/unlink/")

    assert response.status_code == 302
    assert not AimHarderAccount.objects.exists()
    assert not AimHarderBox.objects.exists()
    prebooking.refresh_from_db()
    assert prebooking.status == "cancelled"


def test_the_box_rule_is_saved_and_validated(member, linked_account):
    box = linked_account.boxes.get()
    prefix = f"box{box.pk}"

    bad = member.post(
        f"/prebookings/accounts/boxes/{box.pk}/rule/",
        {
            f"{prefix}-rule": "days_before_at",
            f"{prefix}-days_before": "2",
            f"{prefix}-time_zone": "Europe/Madrid",
        },
    )
    box.refresh_from_db()
    assert bad.status_code == 302 and box.rule == "hours_before"

    member.post(
        f"/prebookings/accounts/boxes/{box.pk}/rule/",
        {
            f"{prefix}-rule": "days_before_at",
            f"{prefix}-days_before": "2",
            f"{prefix}-at_time": "12:00",
            f"{prefix}-time_zone": "Europe/Madrid",
        },
    )
    box.refresh_from_db()
    assert (box.rule, box.days_before, str(box.at_time)) == ("days_before_at", 2, "12:00:00")


def test_the_class_list_shows_the_days_classes_with_their_opening(
    member, linked_account, fake_aimharder
):
    madrid = aimharder_services.zoneinfo.ZoneInfo("Europe/Madrid")
    day = timezone.now().astimezone(madrid).date() + timedelta(days=4)
    starts = datetime(day.year, day.month, day.day, 18, 0, tzinfo=madrid)
    fake_aimharder.add_class(
        "crossfit-sur",
        starts,
        starts - timedelta(hours=72),
        "Halterofilia",
        coach="Nerea",
        capacity=12,
    )
    box = linked_account.boxes.get()

    page = member.get(f"/prebookings/classes/?box={box.pk}&day={day.isoformat()}")

    text = page.content.decode()
    assert page.status_code == 200
    assert "18:00 - 19:00" in text and "Halterofilia" in text and "Nerea" in text
    assert "0/12" in text
    opens = (starts.astimezone(UTC) - timedelta(hours=72)).astimezone(madrid)
    assert opens.strftime("%Y-%m-%d %H:%M:%S") in text  # 72 hours before, in Madrid time


def test_picking_a_class_creates_a_prebooking_at_the_rules_instant(
    member, linked_account, gym_class, user
):
    fake_class = gym_class(opens_in=3600, starts_in=86400)
    box = linked_account.boxes.get()
    box.hours_before = 20
    box.save()
    day = datetime.strptime(fake_class.day, "%Y%m%d").date().isoformat()

    form = member.get(
        f"/prebookings/classes/pick/?box={box.pk}&day={day}&session_id={fake_class.session_id}"
    )
    response = member.post(
        "/prebookings/classes/pick/",
        {"box": box.pk, "day": day, "session_id": fake_class.session_id, "insist": "on"},
    )

    assert form.status_code == 200
    prebooking = Prebooking.objects.get(owner=user)
    assert response.status_code == 302
    assert prebooking.provider == "aimharder"
    expected = datetime.fromtimestamp(fake_class.starts_at, tz=UTC) - timedelta(hours=20)
    assert abs((prebooking.opens_at - expected).total_seconds()) < 60  # class starts on a minute
    assert prebooking.payload["session_id"] == fake_class.session_id
    assert prebooking.payload["insist"] is True


def test_a_per_prebooking_opening_overrides_the_rule(member, linked_account, gym_class, user):
    fake_class = gym_class(opens_in=3600, starts_in=86400)
    box = linked_account.boxes.get()
    day = datetime.strptime(fake_class.day, "%Y%m%d").date()
    local = (
        (timezone.now() + timedelta(hours=3))
        .astimezone(aimharder_services.zoneinfo.ZoneInfo("Europe/Madrid"))
        .replace(microsecond=0)
    )

    member.post(
        "/prebookings/classes/pick/",
        {
            "box": box.pk,
            "day": day.isoformat(),
            "session_id": fake_class.session_id,
            "opens_at": local.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )

    assert Prebooking.objects.get(owner=user).opens_at == local


def test_an_opening_already_past_is_a_form_error(member, linked_account, gym_class):
    fake_class = gym_class(opens_in=-60, starts_in=3600)
    box = linked_account.boxes.get()
    day = datetime.strptime(fake_class.day, "%Y%m%d").date().isoformat()

    response = member.post(
        "/prebookings/classes/pick/",
        {"box": box.pk, "day": day, "session_id": fake_class.session_id},
    )

    assert response.status_code == 400
    assert "already open" in response.content.decode()
    assert not Prebooking.objects.exists()


def _booked(aimharder_prebooking, gym_class, fake_aimharder, starts_in):
    from prebooking import firing

    fake_class = gym_class(opens_in=-5, starts_in=starts_in)
    prebooking = aimharder_prebooking(fake_class)
    firing.fire_now(prebooking.pk)
    prebooking.refresh_from_db()
    assert prebooking.status == "succeeded"
    return prebooking, fake_class


def test_cancelling_at_the_gym_frees_the_place(
    member, linked_account, aimharder_prebooking, gym_class, fake_aimharder
):
    prebooking, fake_class = _booked(aimharder_prebooking, gym_class, fake_aimharder, 86400)

    response = member.post(f"/prebookings/{prebooking.pk}/cancel-booking/")

    assert response.status_code == 302
    assert fake_class.booked == {}
    assert AimHarderCancellation.objects.get(prebooking=prebooking).late is False


def test_a_late_cancellation_asks_to_confirm_first(
    member, linked_account, aimharder_prebooking, gym_class, fake_aimharder
):
    prebooking, fake_class = _booked(aimharder_prebooking, gym_class, fake_aimharder, 1800)

    warning = member.post(f"/prebookings/{prebooking.pk}/cancel-booking/")
    still_booked = dict(fake_class.booked)
    confirmed = member.post(f"/prebookings/{prebooking.pk}/cancel-booking/", {"late": "1"})

    assert warning.status_code == 200 and "loses the session" in warning.content.decode()
    assert still_booked and not AimHarderCancellation.objects.filter(late=False).exists()
    assert confirmed.status_code == 302
    assert fake_class.booked == {}
    assert AimHarderCancellation.objects.get(prebooking=prebooking).late is True


def test_another_members_account_and_prebookings_are_invisible(
    client, linked_account, aimharder_prebooking, gym_class, django_user_model
):
    prebooking = aimharder_prebooking(gym_class(opens_in=3600))
    box = linked_account.boxes.get()
    other = django_user_model.objects.create_user("mallory", "m@example.com", "x")
    client.force_login(other)

    assert AIMHARDER_EMAIL not in client.get("/prebookings/accounts/").content.decode()
    assert client.post(f"/prebookings/accounts/{linked_account.pk}/unlink/").status_code == 404
    assert client.post(f"/prebookings/accounts/boxes/{box.pk}/rule/", {}).status_code == 404
    assert (
        client.get(
            f"/prebookings/classes/pick/?box={box.pk}&day=2030-01-01&session_id=1"
        ).status_code
        == 400
    )
    assert client.get(f"/prebookings/{prebooking.pk}/").status_code == 404
    assert client.post(f"/prebookings/{prebooking.pk}/cancel-booking/").status_code == 404
    listing = client.get("/prebookings/").content.decode()
    assert f'data-prebooking="{prebooking.pk}"' not in listing
    assert AimHarderAccount.objects.filter(pk=linked_account.pk).exists()


def test_the_plain_password_appears_in_no_table_log_or_traceback(
    member, fake_aimharder, caplog, settings
):
    from django.views.debug import ExceptionReporter

    caplog.set_level("DEBUG")
    member.post(
        "/prebookings/accounts/", {"email": AIMHARDER_EMAIL, "password": AIMHARDER_PASSWORD}
    )
    member.post(
        "/prebookings/accounts/", {"email": AIMHARDER_EMAIL, "password": AIMHARDER_PASSWORD + "x"}
    )
    fake_aimharder.down = True
    try:
        aimharder_services.link_account(
            AimHarderAccount.objects.get().owner, AIMHARDER_EMAIL, AIMHARDER_PASSWORD
        )
    except Exception:
        traceback = ExceptionReporter(None, *sys.exc_info()).get_traceback_text()
    assert "link_account" in traceback

    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        hits = []
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE %s',  # noqa: S608
                [f"%{AIMHARDER_PASSWORD}%"],
            )
            if cursor.fetchone()[0]:
                hits.append(table)
    assert AimHarderAccount.objects.count() == 1
    assert hits == []
    assert AIMHARDER_PASSWORD not in caplog.text
    assert AIMHARDER_PASSWORD not in traceback


def test_link_attempts_are_rate_limited_per_member(member, fake_aimharder, settings):
    settings.AIMHARDER_LINK_RATE = "2/h"
    for _ in range(2):
        member.post("/prebookings/accounts/", {"email": AIMHARDER_EMAIL, "password": "guess"})

    response = member.post(
        "/prebookings/accounts/", {"email": AIMHARDER_EMAIL, "password": AIMHARDER_PASSWORD}
    )

    assert response.status_code == 429
    assert fake_aimharder.accounts[AIMHARDER_EMAIL].failures == 2
    assert not AimHarderAccount.objects.exists()


def _count_listings(fake_aimharder) -> list:
    """Record each /api/bookings the fake AimHarder answers."""
    calls: list = []
    answer = fake_aimharder.bookings

    def counted(*args, **kwargs):
        calls.append(args[1:])
        return answer(*args, **kwargs)

    fake_aimharder.bookings = counted
    return calls


def test_reloading_the_class_list_calls_aimharder_once_per_box_and_day(
    member, linked_account, fake_aimharder
):
    calls = _count_listings(fake_aimharder)
    box = linked_account.boxes.get()
    day = timezone.now().date() + timedelta(days=2)
    url = f"/prebookings/classes/?box={box.pk}&day={day.isoformat()}"

    answers = [member.get(url).status_code for _ in range(5)]
    member.get(f"/prebookings/classes/?box={box.pk}&day={(day + timedelta(days=1)).isoformat()}")

    assert answers == [200] * 5
    assert len(calls) == 2


def test_class_listings_are_rate_limited_per_member(
    member, linked_account, fake_aimharder, settings
):
    settings.AIMHARDER_CLASSES_RATE = "3/h"
    box = linked_account.boxes.get()
    today = timezone.now().date()
    urls = [
        f"/prebookings/classes/?box={box.pk}&day={(today + timedelta(days=n)).isoformat()}"
        for n in range(4)
    ]

    answers = [member.get(url).status_code for url in urls]

    assert answers == [200, 200, 200, 429]
