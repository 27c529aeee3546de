"""Create demo users and N prebookings against the demo gym, all opening at one instant."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from devgyms.demo_gym import register_class
from prebooking import services

# Bounds that keep every date and name the command makes valid (a demo, not a load test).
MAX_COUNT = 10_000
MAX_AHEAD_SECONDS = 7 * 86400


class Command(BaseCommand):
    help = (
        "Create --count demo prebookings (one demo user each, in a known creation order) "
        "opening --in seconds from now, or spread over --spread seconds; prints the instant."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, default=100)
        parser.add_argument("--in", dest="opens_in", type=float, default=60.0)
        parser.add_argument("--spread", type=float, default=0.0)
        parser.add_argument("--capacity", type=int, default=0, help="default: --count")
        parser.add_argument("--prefix", default="demo", help="names of users and classes")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, count: int, opens_in: float, spread: float, **options) -> None:
        prefix = options["prefix"]
        for name, value, low, high in (
            ("--count", count, 1, MAX_COUNT),
            ("--in", opens_in, 0, MAX_AHEAD_SECONDS),
            ("--spread", spread, 0, MAX_AHEAD_SECONDS),
            ("--capacity", options["capacity"], 0, MAX_COUNT),
        ):
            if not low <= value <= high:  # also refuses nan
                raise CommandError(f"{name} must be between {low} and {high}, not {value}.")
        if not re.fullmatch(r"[a-z0-9-]{1,40}", prefix):
            raise CommandError("--prefix must be 1 to 40 of a-z, 0-9 and -.")
        # A whole second, so the instant is easy to read and compare.
        instant = datetime.fromtimestamp(math.ceil(time.time() + opens_in), tz=UTC)
        run = instant.strftime("%H%M%S")
        capacity = options["capacity"] or count
        users = self._users(prefix, count)
        created = []
        for index, user in enumerate(users):
            offset = spread * index / count if spread else 0.0
            opens_at = instant + timedelta(seconds=offset)
            class_id = f"{prefix}-{run}" + (f"-{index:04d}" if spread else "")
            register_class(class_id, opens_at, opens_at + timedelta(hours=1), capacity=capacity)
            payload = {
                "class_id": class_id,
                "class_starts_at": (opens_at + timedelta(hours=1)).isoformat(),
                "notes": f"demo {index + 1}/{count}",
                "member": user.username,
            }
            created.append(services.create_prebooking(user, "demo", payload, opens_at))
        summary = {
            "instant": instant.isoformat(),
            "spread": spread,
            "count": len(created),
            "ids": [prebooking.pk for prebooking in created],
            "class_ids": sorted({prebooking.payload["class_id"] for prebooking in created}),
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(f"instant: {summary['instant']}")
        self.stdout.write(
            f"created {len(created)} prebookings (ids {created[0].pk}..{created[-1].pk}) "
            + (f"spread over {spread:g} s" if spread else "all opening at that instant")
        )

    def _users(self, prefix: str, count: int) -> list:
        User = get_user_model()
        users = []
        for number in range(1, count + 1):
            username = f"{prefix}-user-{number:04d}"
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            users.append(user)
        return users
