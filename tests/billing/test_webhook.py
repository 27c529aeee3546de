"""The webhook endpoint: verify, store once, enqueue in the same transaction, answer."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from billing.models import StripeEvent
from jobs.models import Job
from tests.billing.conftest import WEBHOOK_URL, make_event, post_event, sign

pytestmark = pytest.mark.django_db


def nothing_stored() -> bool:
    return not StripeEvent.objects.exists() and not Job.objects.exists()


def test_new_event_is_stored_and_its_processing_enqueued(client, customer_event):
    event = customer_event()

    response = post_event(client, event)

    assert (response.status_code, response.json()) == (200, {"received": True})
    stored = StripeEvent.objects.get()
    assert (stored.stripe_id, stored.type, stored.status) == (
        event["id"],
        "customer.created",
        "received",
    )
    assert stored.payload == event
    job = Job.objects.get()
    assert stored.job == job
    assert (job.name, job.kwargs, job.target) == (
        "billing.tasks.process_event",
        {"event_id": stored.pk},
        f"billing.stripeevent:{stored.pk}",
    )


def test_duplicate_event_is_stored_once_and_not_enqueued_again(client, customer_event):
    event = customer_event()
    post_event(client, event)

    response = post_event(client, event)

    assert (response.status_code, response.json()) == (200, {"received": True, "duplicate": True})
    assert StripeEvent.objects.count() == 1
    assert Job.objects.count() == 1


def test_any_of_the_configured_secrets_verifies_during_a_rotation(client, settings, customer_event):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_old, whsec_test_new"
    body = json.dumps(customer_event())

    response = post_event(client, body, signature=sign(body, secret="whsec_test_new"))

    assert response.status_code == 200
    assert StripeEvent.objects.count() == 1


def _nested(event: dict, levels: int) -> str:
    """The event's body with data.object.metadata nested so that the body is `levels` deep."""
    body = json.dumps({**event, "data": {"object": {"id": "cus_X", "metadata": "HOLE"}}})
    inner = levels - 3  # the event, data, object
    return body.replace('"HOLE"', '{"a": ' * inner + "1" + "}" * inner)


def test_body_nested_as_deep_as_the_limit_is_accepted(client):
    event = make_event("customer.created", {"id": "cus_X", "object": "customer"})
    body = _nested(event, 32)

    response = post_event(client, body)

    assert response.status_code == 200
    assert StripeEvent.objects.count() == 1


def _bad_requests():
    event = make_event("customer.created", {"id": "cus_X", "object": "customer"})
    body = json.dumps(event)
    now = int(time.time())
    good = sign(body)
    not_event = json.dumps({"id": "evt_1", "type": "x", "created": now})
    no_data = json.dumps({**event, "data": {}})
    bad_id = json.dumps({**event, "id": "ch_123"})
    nul = json.dumps({**event, "data": {"object": {"id": "cus_X", "name": "a\u0000b"}}})
    deep_990, deep_900, deep_33 = (_nested(event, levels) for levels in (990, 900, 33))
    huge = body.replace('"livemode": false', '"livemode": false, "n": 1' + "0" * 5000)
    long_number = body.replace('"livemode": false', '"livemode": false, "n": 1' + "0" * 100)
    infinite = body.replace('"livemode": false', '"livemode": false, "n": 1e999')
    return {
        "nested 990 deep (RecursionError)": (deep_990, sign(deep_990), "nests more than 32 levels"),
        "nested 900 deep": (deep_900, sign(deep_900), "nests more than 32 levels"),
        "nested just past the limit": (deep_33, sign(deep_33), "nests more than 32 levels"),
        "5,000-digit integer": (huge, sign(huge), "a number of more than 100 digits"),
        "101-digit integer": (long_number, sign(long_number), "a number of more than 100 digits"),
        "number out of range": (infinite, sign(infinite), "a number out of range"),
        "missing signature": (body, "", "missing Stripe-Signature header"),
        "malformed signature": (body, "garbage", "malformed Stripe-Signature header"),
        "no v1 signature": (body, f"t={now},v0=abc", "no v1 signature"),
        "wrong secret": (body, sign(body, secret="whsec_other"), "invalid signature"),
        "tampered body": (body.replace("cus_X", "cus_Y"), good, "invalid signature"),
        "stale timestamp": (body, sign(body, timestamp=now - 301), "outside the 300 s tolerance"),
        "not json": ("{not json", sign("{not json"), "body is not JSON"),
        "not an event": (not_event, sign(not_event), "not a Stripe event"),
        "no data.object": (no_data, sign(no_data), "no data.object"),
        "id not evt_": (bad_id, sign(bad_id), "bad id"),
        "nul byte jsonb refuses": (nul, sign(nul), "event cannot be stored"),
        "not utf-8": (b"\xff\xfe{}", sign("{}"), "invalid signature"),
    }


@pytest.mark.parametrize("case", list(_bad_requests()))
def test_bad_request_is_refused_with_its_reason_and_nothing_stored(client, case):
    body, header, reason = _bad_requests()[case]
    headers = {"HTTP_STRIPE_SIGNATURE": header} if header else {}

    response = client.post(WEBHOOK_URL, body, content_type="application/json", **headers)

    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert nothing_stored()


@pytest.mark.parametrize("method", ["get", "put", "delete", "head"])
def test_methods_other_than_post_are_refused(client, method):
    response = getattr(client, method)(WEBHOOK_URL)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_body_over_the_limit_is_refused_before_it_is_read(client, settings, customer_event):
    settings.STRIPE_WEBHOOK_MAX_BYTES = 200
    event = customer_event()
    event["data"]["object"]["description"] = "x" * 200

    response = post_event(client, event)

    assert response.status_code == 413
    assert nothing_stored()


def test_body_whose_length_is_not_declared_is_not_read(client, customer_event):
    body = json.dumps(customer_event())

    response = client.generic(
        "POST",
        WEBHOOK_URL,
        body,
        "application/json",
        HTTP_STRIPE_SIGNATURE=sign(body),
        CONTENT_LENGTH="",
    )

    assert response.status_code == 400
    assert nothing_stored()


def test_unconfigured_secret_answers_503_so_stripe_retries(client, settings, customer_event):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = post_event(client, customer_event())

    assert response.status_code == 503


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_of_one_event_store_one_row_and_one_job(customer_event):
    body = json.dumps(customer_event())
    header = sign(body)
    start = threading.Barrier(20)
    answers: list[dict] = []

    def deliver() -> None:
        try:
            start.wait()
            response = Client().post(
                WEBHOOK_URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
            )
            answers.append({"status": response.status_code, **response.json()})
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(answers) == 20
    assert all(answer["status"] == 200 for answer in answers)
    assert sum(1 for answer in answers if not answer.get("duplicate")) == 1
    assert StripeEvent.objects.count() == 1
    assert Job.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_event_is_not_stored_when_its_job_cannot_be_enqueued(client, customer_event):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full' USING ERRCODE = 'disk_full'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_delivery BEFORE INSERT ON jobs_job "
            "FOR EACH ROW EXECUTE FUNCTION refuse_delivery()"
        )
    try:
        response = post_event(client, customer_event())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_delivery ON jobs_job")
            cursor.execute("DROP FUNCTION refuse_delivery()")

    assert response.status_code == 503
    assert nothing_stored()


@pytest.mark.django_db(transaction=True)
def test_database_down_answers_503_so_stripe_retries(client, customer_event):
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["NAME"] = "no_such_database"
    try:
        response = post_event(client, customer_event())
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)

    assert response.status_code == 503
    assert response.json() == {"error": "database unavailable, retry later"}
    assert nothing_stored()


def test_webhook_needs_no_csrf_token_and_sets_no_cookie(customer_event):
    strict = Client(enforce_csrf_checks=True)

    response = post_event(strict, customer_event())

    assert response.status_code == 200
    assert not response.cookies  # no session, no CSRF cookie on this path


def test_other_posts_still_need_a_csrf_token():
    strict = Client(enforce_csrf_checks=True)

    response = strict.post("/accounts/login/", {"username": "x", "password": "y"})

    assert response.status_code == 403


def test_a_refusal_is_logged_once_with_its_reason(client, caplog):
    caplog.set_level("INFO")

    response = client.post(WEBHOOK_URL, data=b"{}", content_type="application/json")

    assert response.status_code == 400
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("billing.views", "INFO", "stripe webhook refused: missing Stripe-Signature header")
    ]


def test_other_routes_keep_djangos_line_for_a_client_error(client, caplog):
    caplog.set_level("INFO")

    assert client.get("/no-such-page/").status_code == 404
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == [
        "Not Found: /no-such-page/"
    ]
