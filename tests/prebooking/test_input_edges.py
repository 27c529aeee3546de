"""Values a user types or a remote service sends: bounded, one line, a box slug and nothing more.

Each is refused where it is read (a form error, a command error, a skipped role), and a stored
row that holds an extreme anyway breaks no page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from prebooking.aimharder import services as aimharder_services
from prebooking.models import AimHarderAccount, AimHarderBox, Prebooking
from prebooking.providers.aimharder import client as aimharder
from prebooking.providers.aimharder.client import AimHarderError
from tests.prebooking.conftest import AIMHARDER_EMAIL, AIMHARDER_PASSWORD
from tests.prebooking.test_views import _form

pytestmark = pytest.mark.django_db

CONTROL = ["line\nbreak", "carriage\rreturn", "nul\x00", "tab\there", "sep\u2028arator", "del\x7f"]


@pytest.fixture
def member(client, user):
    client.force_login(user)
    return client


def _save_rule(member, box, **fields):
    prefix = f"box{box.pk}"
    data = {f"{prefix}-time_zone": "Europe/Madrid", f"{prefix}-at_time": "12:00"}
    data.update({f"{prefix}-{name}": value for name, value in fields.items()})
    return member.post(f"/prebookings/accounts/boxes/{box.pk}/rule/", data, follow=True)


# Item 6: every number a user types is bounded where the form reads it.


@pytest.mark.parametrize(
    ("rule", "field", "value"),
    [
        ("hours_before", "hours_before", "-1"),
        ("hours_before", "hours_before", "1441"),
        ("hours_before", "hours_before", "2147483647"),
        ("hours_before", "hours_before", "9223372036854775808"),
        ("days_before_at", "days_before", "-1"),
        ("days_before_at", "days_before", "61"),
        ("days_before_at", "days_before", "32768"),
    ],
)
def test_a_box_rule_out_of_range_is_refused_with_a_message(
    member, linked_account, rule, field, value
):
    box = linked_account.boxes.get()

    page = _save_rule(member, box, rule=rule, **{field: value})

    assert "Rule not saved" in page.content.decode()
    box.refresh_from_db()
    assert (box.rule, box.hours_before) == ("hours_before", 72)


@pytest.mark.parametrize(
    ("rule", "field", "value"),
    [
        ("hours_before", "hours_before", "0"),
        ("hours_before", "hours_before", "1440"),
        ("days_before_at", "days_before", "0"),
        ("days_before_at", "days_before", "60"),
    ],
)
def test_a_box_rule_at_its_bounds_is_saved(member, linked_account, rule, field, value):
    box = linked_account.boxes.get()

    _save_rule(member, box, rule=rule, **{field: value})

    box.refresh_from_db()
    assert (box.rule, getattr(box, field)) == (rule, int(value))


@pytest.mark.parametrize(
    "rule",
    [
        {"hours_before": 2147483647},
        {"time_zone": "Not/AZone"},
    ],
)
def test_a_stored_absurd_rule_breaks_neither_the_class_list_nor_the_pick_page(
    member, linked_account, gym_class, rule
):
    fake_class = gym_class(opens_in=3600, starts_in=86400)
    box = linked_account.boxes.get()
    AimHarderBox.objects.filter(pk=box.pk).update(**rule)  # written around the form
    day = datetime.strptime(fake_class.day, "%Y%m%d").date().isoformat()

    listing = member.get(f"/prebookings/classes/?box={box.pk}&day={day}")
    pick = member.get(
        f"/prebookings/classes/pick/?box={box.pk}&day={day}&session_id={fake_class.session_id}"
    )

    assert listing.status_code == 200
    assert "gives no opening time" in listing.content.decode()
    assert pick.status_code == 400
    assert "gives no opening time" in pick.content.decode()


@pytest.mark.parametrize("opens_at", ["0001-01-01T00:00", "9999-12-31T23:59"])
def test_a_picked_opening_at_the_edge_of_the_calendar_is_a_form_error(
    member, linked_account, gym_class, opens_at
):
    fake_class = gym_class(opens_in=3600, starts_in=86400)
    box = linked_account.boxes.get()
    # East of UTC the year 1 underflows; west of it the year 9999 overflows.
    zone = "Asia/Tokyo" if opens_at.startswith("0001") else "America/New_York"
    AimHarderBox.objects.filter(pk=box.pk).update(time_zone=zone)
    day = datetime.strptime(fake_class.day, "%Y%m%d").date().isoformat()

    response = member.post(
        "/prebookings/classes/pick/",
        {"box": box.pk, "day": day, "session_id": fake_class.session_id, "opens_at": opens_at},
    )

    assert response.status_code == 400
    assert "Enter a date between the years 2 and 9998." in response.content.decode()
    assert not Prebooking.objects.exists()


@pytest.mark.parametrize("amount", ["-1", "0", "1e400", "99999999999", "NaN", "Infinity"])
def test_a_top_up_amount_at_the_extremes_is_a_form_error(client, user, settings, amount):
    settings.STRIPE_API_KEY = "sk_test_unused"  # the form refuses before anything is asked
    settings.BILLING_PLAN_FEATURES = {"free": ["wallet"]}
    client.force_login(user)

    response = client.post("/billing/top-up/", {"amount": amount})

    assert response.status_code == 400
    assert "Check the amount." in response.content.decode()


# Item 7: text that ends up in headers, logs or alerts refuses control characters.


@pytest.mark.parametrize("class_id", CONTROL)
def test_a_class_id_with_a_control_character_is_refused(member, class_id):
    response = member.post("/prebookings/new/", _form(class_id=class_id))

    assert "Remove the line breaks and other control characters." in response.content.decode()
    assert not Prebooking.objects.exists()


@pytest.mark.parametrize("session_id", CONTROL[:3])
def test_a_picked_session_id_with_a_control_character_is_refused(
    member, linked_account, session_id
):
    box = linked_account.boxes.get()
    day = (timezone.now() + timedelta(days=2)).date().isoformat()

    response = member.post(
        "/prebookings/classes/pick/", {"box": box.pk, "day": day, "session_id": session_id}
    )

    assert response.status_code == 400
    assert "Remove the line breaks and other control characters." in response.content.decode()
    assert not Prebooking.objects.exists()


def test_the_prebook_command_refuses_a_session_id_with_a_line_break(user):
    opens = (timezone.now() + timedelta(days=1)).isoformat()

    with pytest.raises(CommandError, match="control characters"):
        call_command(
            "prebook", "--user", user.username, "--provider", "demo",
            "--session-id", "wod\nSubject: free", "--opens-at", opens,
        )  # fmt: skip
    assert not Prebooking.objects.exists()


# Item 9: a gym's box slug matches ^[a-z0-9-]+$ wherever it comes from.


def test_a_login_role_whose_box_host_is_no_slug_is_not_stored(fake_aimharder, user):
    fake_aimharder.add_box("bad_box", "999", "Bad Box")
    fake_aimharder.accounts[AIMHARDER_EMAIL].boxes.append("bad_box")

    account = aimharder_services.link_account(user, AIMHARDER_EMAIL, AIMHARDER_PASSWORD)

    assert list(account.boxes.values_list("slug", flat=True)) == ["crossfit-sur"]


@pytest.mark.parametrize(
    "slug", ["", "Crossfit", "a_b", "evil.example", "x/../admin", "x?y=1", "box\n", "bo x"]
)
def test_a_box_url_is_never_formatted_from_anything_but_a_slug(slug):
    with pytest.raises(AimHarderError, match="Not a box slug"):
        aimharder.box_url(slug)


@pytest.mark.parametrize("slug", ["Crossfit", "a_b", "evil.example/x", "box\n"])
def test_the_database_refuses_a_box_slug_that_is_no_host_label(user, slug):
    account = AimHarderAccount.objects.create(
        owner=user, email="a@example.com", password_token="x", fingerprint="f" * 50
    )

    with pytest.raises(IntegrityError, match="aimharder_box_slug_host_label"), transaction.atomic():
        AimHarderBox.objects.create(account=account, boid="1", slug=slug)


def test_the_prebook_command_refuses_a_box_that_is_no_slug(linked_account, user):
    with pytest.raises(CommandError, match="--box must be a box slug"):
        call_command(
            "prebook", "--user", user.username, "--box", "../admin", "--day", "20270101",
            "--session-id", "1", "--opens-at", "2027-01-01T10:00", stdout=StringIO(),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--count", "0"),
        ("--count", "100000000"),
        ("--in", "1e308"),
        ("--in", "-5"),
        ("--in", "nan"),
        ("--spread", "inf"),
        ("--capacity", "-1"),
        ("--prefix", "bad\nprefix"),
    ],
)
def test_the_demo_command_refuses_extreme_numbers_with_a_message(option, value):
    with pytest.raises(CommandError, match="must be"):
        call_command("prebooking_demo", option, value, "--json", stdout=StringIO())
    assert not Prebooking.objects.exists()


@pytest.mark.parametrize("provider", ["demo", "aimharder"])
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"class_id": ["x"], "class_starts_at": "garbage", "day": 5, "box": 3, "class_name": {}},
        {"class_id": "x" * 5000, "class_starts_at": "9999-12-31T23:59:59-10:00"},
    ],
)
def test_no_page_breaks_on_a_stored_prebooking_whatever_its_payload(
    member, user, provider, payload
):
    prebooking = Prebooking.objects.create(
        owner=user, provider=provider, payload=payload, opens_at=timezone.now() + timedelta(days=1)
    )
    pages = [
        "/prebookings/",
        f"/prebookings/{prebooking.pk}/",
        f"/prebookings/{prebooking.pk}/cancel/",
        f"/prebookings/status.json?ids={prebooking.pk}",
        f"/prebookings/{prebooking.pk}/status.json",
    ]

    assert [member.get(page).status_code for page in pages] == [200] * len(pages)


def test_the_prebook_command_refuses_a_class_start_outside_the_calendar(user):
    opens = (timezone.now() + timedelta(days=1)).isoformat()

    with pytest.raises(CommandError, match="outside the calendar"):
        call_command(
            "prebook", "--user", user.username, "--provider", "demo", "--session-id", "wod",
            "--opens-at", opens, "--class-starts-at", "9999-12-31T23:59:59-10:00",
        )  # fmt: skip
    assert not Prebooking.objects.exists()
