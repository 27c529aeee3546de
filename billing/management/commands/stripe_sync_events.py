"""Fetch events from the Stripe API and ingest the ones we lack, as the webhook would have."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import stripe
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services import ingest_event
from billing.stripe_api import client
from jobs.errors import PermanentError

PAGE_SIZE = 100


class Command(BaseCommand):
    help = "List Stripe events since a date (auto-paging) and ingest those not yet stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", required=True, type=date.fromisoformat, help="YYYY-MM-DD, UTC midnight"
        )

    def handle(self, *args: Any, since: date, **options: Any) -> None:
        start = datetime.combine(since, time.min, tzinfo=UTC)
        try:
            events = client().v1.events.list(
                params={"created": {"gte": int(start.timestamp())}, "limit": PAGE_SIZE}
            )
            fetched = new = 0
            for event in events.auto_paging_iter():
                fetched += 1
                if ingest_event(event.to_dict(for_json=True)) is not None:
                    new += 1
                if fetched % PAGE_SIZE == 0:
                    self.stdout.write(f"... {fetched} fetched, {new} new")
        except (stripe.StripeError, PermanentError) as exc:
            raise CommandError(f"Stripe API: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"since {start.isoformat()}: fetched {fetched}, new {new}, "
                f"already had {fetched - new}"
            )
        )
