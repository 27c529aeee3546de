"""Acceptance for billing against a running server (`make run`): one final state, whatever order.

    STRIPE_WEBHOOK_SECRET=whsec_accept make run            # in one terminal
    STRIPE_WEBHOOK_SECRET=whsec_accept DATABASE_URL=... \\
        python bench/billing_acceptance.py --url http://127.0.0.1:8000

Replays the two-customer story of tests/billing/story.py four times, each under its own ids:
in order (ordered); shuffled with every event delivered 1-3 times (shuffled); every event 10
times concurrently (burst); shuffled, duplicated and 10 times concurrently (mixed). Also sends
a battery of bad requests. Then waits for the workers and checks: every valid event stored
once and processed once, every bad request a 4xx with nothing stored, no 5xx, and the same
final billing state and emails for every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import stripe

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db.models import Sum  # noqa: E402

from billing.models import (  # noqa: E402
    Customer,
    Invoice,
    Payment,
    StripeEvent,
    Subscription,
    WalletTransaction,
)
from mail.models import Email  # noqa: E402
from tests.billing import story  # noqa: E402

IDS = re.compile(r"\b(evt_story|cus|sub|in|pi|ch|cs|pm|si)_([a-z0-9_]+)")
TIMING = {"payment_failed", "dunning_reminder"}
SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_dev").split(",")[0]


def namespaced(run: str) -> list[dict]:
    """The story under fresh ids and users, so that runs do not see each other's events."""
    ann = User.objects.create_user(f"ann_{run}", f"ann+{run}@example.com")
    bob = User.objects.create_user(f"bob_{run}", f"bob+{run}@example.com")
    text = json.dumps(story.events(ann.pk, bob.pk))
    text = IDS.sub(lambda m: f"{m.group(1)}_{m.group(2)}_{run}", text)
    text = text.replace("ann@example.com", f"ann+{run}@example.com")
    text = text.replace("bob@example.com", f"bob+{run}@example.com")
    return json.loads(text)


def post(http: httpx.Client, url: str, body: str, header: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return http.post(url, content=body, headers=headers).status_code


def deliver(http: httpx.Client, url: str, events: list[dict], copies: int, pool) -> Counter:
    """Deliver events in the given order; each one `copies` times at once."""
    statuses: Counter = Counter()
    for event in events:
        body = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
        futures = [pool.submit(post, http, url, body, header) for _ in range(copies)]
        statuses.update(future.result() for future in futures)
    return statuses


def bad_requests(http: httpx.Client, url: str) -> Counter:
    event = {
        "id": f"evt_bad_{uuid.uuid4().hex[:8]}",
        "object": "event",
        "type": "x",
        "created": int(time.time()),
        "data": {"object": {}},
    }
    body = json.dumps(event)
    now = int(time.time())
    sign = stripe.WebhookSignature.generate_signature_header
    cases = [
        (body, None),
        (body, "garbage"),
        (body, sign(body, "whsec_wrong")),
        (body, sign(body, SECRET, now - 400)),
        (body.replace("evt_bad", "evt_tampered"), sign(body, SECRET)),
        ("not json", sign("not json", SECRET)),
        ('{"object": "list"}', sign('{"object": "list"}', SECRET)),
        ("x" * (2 * 1024 * 1024), sign("x", SECRET)),
    ]
    statuses = Counter(post(http, url, b, h) for b, h in cases)
    statuses[http.get(url).status_code] += 1
    return statuses


def wait_done(timeout: float) -> None:
    """Until every event is processed and every email settled (a retry waits ~1 min)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = StripeEvent.objects.filter(status="received")
        emails = Email.objects.filter(status__in=["pending", "sending"])
        if not events.exists() and not emails.exists():
            return
        time.sleep(0.5)
    raise SystemExit(f"after {timeout}s: {events.count()} events, {emails.count()} emails left")


def state(run: str) -> dict:
    """The final billing state of a run, ids stripped of the run suffix to compare runs."""
    strip = lambda value: value.replace(f"_{run}", "").replace(f"+{run}", "")  # noqa: E731
    mine = {"stripe_id__endswith": f"_{run}"}
    wallet = WalletTransaction.objects.filter(customer__stripe_id__endswith=f"_{run}").aggregate(
        total=Sum("amount")
    )["total"]
    return {
        "customers": sorted(
            (strip(c.stripe_id), strip(c.user.username if c.user else ""), strip(c.email))
            for c in Customer.objects.filter(**mine).select_related("user")
        ),
        "subscriptions": sorted(
            (strip(s.stripe_id), s.status, s.plan, s.cancel_at_period_end)
            for s in Subscription.objects.filter(**mine)
        ),
        "invoices": sorted(
            (strip(i.stripe_id), i.status, i.amount_paid) for i in Invoice.objects.filter(**mine)
        ),
        "payments": sorted(
            (strip(p.stripe_id), p.status, p.amount, p.amount_refunded)
            for p in Payment.objects.filter(**mine)
        ),
        "wallet": wallet,
        # Whether a payment-failed email exists depends on order and timing (was the invoice
        # already paid when the failure was processed, or when the email job ran?): left out.
        "emails": sorted(
            (strip(e.key), e.status)
            for e in Email.objects.filter(key__contains=f"_{run}").exclude(template__in=TIMING)
        ),
        "events": Counter(
            StripeEvent.objects.filter(stripe_id__endswith=f"_{run}").values_list(
                "status", flat=True
            )
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    url = args.url.rstrip("/") + "/billing/webhooks/stripe/"
    tag = uuid.uuid4().hex[:6]
    rng = random.Random(tag)
    runs = {}
    statuses: Counter = Counter()
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(max_workers=10) as pool:
        for name, shuffle, copies in [
            ("ordered", False, 1),
            ("shuffled", True, 1),
            ("burst", False, 10),
            ("mixed", True, 10),
        ]:
            run = f"{name}{tag}"
            events = namespaced(run)
            if shuffle:
                events = [e for e in events for _ in range(rng.randint(1, 3))]
                rng.shuffle(events)
            started = time.monotonic()
            got = deliver(http, url, events, copies, pool)
            print(
                f"{name}: {sum(got.values())} deliveries in {time.monotonic() - started:.1f}s "
                f"-> {dict(got)}"
            )
            statuses.update(got)
            runs[name] = run
        bad = bad_requests(http, url)
        print(f"bad requests -> {dict(bad)}")
    started = time.monotonic()
    wait_done(args.timeout)
    print(f"all processed and emails settled {time.monotonic() - started:.1f}s after the last")
    states = {name: state(run) for name, run in runs.items()}
    reference = states["ordered"]
    ok = True
    for name, result in states.items():
        same = result == reference
        ok &= same
        print(
            f"{name}: events {dict(result['events'])}, wallet {result['wallet']}, "
            f"{len(result['emails'])} emails, same final state as ordered: {same}"
        )
        if not same:
            for key in reference:
                if result[key] != reference[key]:
                    print(f"  {key}: {result[key]} != {reference[key]}")
    fives = sum(n for status, n in (statuses + bad).items() if status >= 500)
    bad_ok = all(400 <= status < 500 for status in bad.elements())
    print(f"5xx answers: {fives}; every bad request a 4xx: {bad_ok}")
    stored_bad = StripeEvent.objects.filter(stripe_id__startswith="evt_bad").count()
    print(f"events stored from bad requests: {stored_bad}")
    return 0 if ok and fives == 0 and bad_ok and stored_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
