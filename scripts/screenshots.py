"""Screenshots of the operations console for the docs: dashboard, dead letters, a dead event.

    make screenshots

runs this against its own database ("screenshots", in the dev PostgreSQL cluster, emptied on
each run): it seeds a day of Stripe events (most processed, a few failing, one dead), starts
a web server and a worker cluster, and drives Debian's Chromium to write
docs/screenshots/{dashboard,dead-letters,stripe-events-dead,dead-event}.png.

Against a running `make run` instead (its database, its server):

    python scripts/withdb.py --name dev -- .venv/bin/python scripts/screenshots.py \\
        --url http://127.0.0.1:8000 [--seed]

`--seed` adds the same demo events to that database (ids evt_demo_*, so twice adds nothing).
Either way the script logs in as a staff user "screenshots" whose password it sets itself.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
OWN_DATABASE = "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CHROMIUM_ARGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]
STAFF = "screenshots"


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def customer(number: int, **fields: object) -> dict:
    """A Stripe customer object shaped like the API's (enough of it to look real)."""
    return {
        "id": f"cus_demo{number:04d}",
        "object": "customer",
        "email": f"member{number}@example.com",
        "name": f"Member {number}",
        "address": {"city": "Lyon", "country": "FR", "postal_code": "69002"},
        "currency": "eur",
        "invoice_settings": {"default_payment_method": None},
        "metadata": {},
        **fields,
    }


def seed() -> dict:
    """A day of webhook traffic ending now: mostly processed, some failing, two dead."""
    import time_machine
    from django.db import transaction
    from django.utils import timezone

    import billing.tasks  # noqa: F401 - declares the job types
    from billing.models import StripeEvent
    from billing.services import ingest_event
    from jobs.testing import run_due_jobs

    now = timezone.now().replace(second=0, microsecond=0)
    number = 0

    def arrive(moment, event_type: str, obj: dict) -> None:
        nonlocal number
        number += 1
        event = {
            "id": f"evt_demo_{number:05d}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(moment.timestamp()),
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
        }
        with time_machine.travel(moment, tick=False), transaction.atomic():
            event_id = ingest_event(event)
            if event_id is not None:  # received_at is the database's clock: set it to `moment`
                StripeEvent.objects.filter(pk=event_id).update(received_at=moment)

    for hours_ago in range(23, -1, -1):
        slot = now - timedelta(hours=hours_ago)
        busy = 4 + (23 - hours_ago) % 7 + (6 if 9 <= slot.hour <= 18 else 0)
        for index in range(busy):
            moment = slot - timedelta(minutes=50 - index * 2)
            if number % 3 == 2 and number > 3:  # an update of a customer seen before
                arrive(moment, "customer.updated", customer(number - 2, name="Renamed"))
            else:
                arrive(moment, "customer.created", customer(number))
            if index % 5 == 4:
                arrive(moment, "balance.available", {"object": "balance", "available": []})
        if hours_ago == 6:  # names a user who does not exist: fails until its attempts run out
            arrive(slot, "customer.created", customer(9001, metadata={"user_id": "990001"}))
        if hours_ago == 3:  # bad data: dead at once, no retry can help
            arrive(slot, "customer.created", customer(9004, metadata={"user_id": "n/a"}))
        if hours_ago == 1:  # the same cause, still retrying
            for extra in (9002, 9003):
                arrive(slot, "customer.created", customer(extra, metadata={"user_id": "990002"}))
        with time_machine.travel(slot, tick=False):
            run_due_jobs()
    return {"dead": StripeEvent.objects.filter(status="dead").count()}


def staff_password() -> str:
    """(Re)create the staff user the browser logs in as, with a fresh random password."""
    from django.contrib.auth import get_user_model

    password = secrets.token_urlsafe(16)
    user, _ = get_user_model().objects.get_or_create(username=STAFF)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return password


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - our own local server
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in {timeout} s")


def wait_for_worker(timeout: float = 30) -> None:
    from jobs.selectors import clusters_alive

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not clusters_alive():
        time.sleep(0.5)


def start_own_stack() -> tuple[str, list[subprocess.Popen]]:
    """Migrate and empty the screenshots database, seed it, start a web server and a worker."""
    from django.core.management import call_command
    from django.db import connection

    if connection.settings_dict["NAME"] != OWN_DATABASE:
        raise SystemExit(
            f"refusing to empty database {connection.settings_dict['NAME']!r}: run through "
            f"`make screenshots` (database {OWN_DATABASE!r}) or give --url"
        )
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    seed()
    port = free_port()
    env = {**os.environ, "DEBUG": "true", "LOG_LEVEL": "WARNING"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    processes = [
        subprocess.Popen([*manage, "runserver", "--noreload", f"127.0.0.1:{port}"], env=env),
        subprocess.Popen([*manage, "jobs_worker", "--queue", "default"], env=env),
    ]
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz")
    wait_for_worker()
    return url, processes


def shoot(url: str, password: str) -> list[Path]:
    """Log in and write the PNGs; returns their paths."""
    from playwright.sync_api import sync_playwright

    from billing.models import StripeEvent

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM reads between browser steps
    OUT.mkdir(parents=True, exist_ok=True)
    # The event that used up its attempts: its page shows the whole timeline.
    dead = StripeEvent.objects.filter(status="dead").order_by("-attempts", "pk").first()
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=url, viewport={"width": 1366, "height": 900})
        # The admin's app sidebar, folded as a user can fold it: the tables get the width.
        page.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        page.goto("/admin/login/?next=/admin/")
        page.fill("input[name=username]", STAFF)
        page.fill("input[name=password]", password)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")

        shots = [  # name, page, viewport height (None: the whole page)
            ("dashboard.png", "/admin/dashboard/", None),
            ("dead-letters.png", "/admin/jobs/deadletter/", 560),
            ("stripe-events-dead.png", "/admin/billing/stripeevent/?status__exact=dead", 620),
        ]
        if dead is not None:
            shots.append(("dead-event.png", f"/admin/billing/stripeevent/{dead.pk}/change/", None))
        for name, path, height in shots:
            page.set_viewport_size({"width": 1366, "height": height or 900})
            page.goto(path)
            target = OUT / name
            page.screenshot(path=str(target), full_page=height is None)
            written.append(target)
        browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (make run) instead of our own")
    parser.add_argument("--seed", action="store_true", help="with --url: add the demo events")
    args = parser.parse_args()
    setup_django()
    processes: list[subprocess.Popen] = []
    try:
        if args.url:
            if args.seed:
                seed()
            url = args.url.rstrip("/")
        else:
            url, processes = start_own_stack()
        for path in shoot(url, staff_password()):
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
