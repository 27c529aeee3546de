"""Create a prebooking from a script and print its id (power users, checks outside the suite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.entitlements import pending_prebooking_limit
from prebooking import services
from prebooking.aimharder import services as aimharder_services
from prebooking.forms import CONTROL_CHARACTERS
from prebooking.models import AimHarderBox, Prebooking
from prebooking.providers.aimharder import client as aimharder
from prebooking.providers.aimharder.client import AimHarderError


def _instant(value: str, zone: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{name}: not an ISO 8601 date and time: {value!r}") from None
    try:
        if timezone.is_naive(moment):  # wall-clock time at the box
            moment = aimharder_services.local_time(moment, zone)
        moment.astimezone(UTC)
    except OverflowError:
        raise CommandError(f"{name}: outside the calendar in UTC: {value!r}") from None
    return moment


class Command(BaseCommand):
    help = (
        "Prebook a class for USER: --provider aimharder --box SLUG --session-id ID --day "
        "YYYYMMDD --opens-at ISO8601 (a time without offset is the box's wall clock). "
        "Prints the prebooking id."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True)
        parser.add_argument("--provider", default="aimharder")
        parser.add_argument("--box", help="the box's slug (AimHarder)")
        parser.add_argument("--session-id", required=True, help="the class's id at the gym")
        parser.add_argument("--day", help="YYYYMMDD (AimHarder)")
        parser.add_argument("--opens-at", required=True, help="ISO 8601")
        parser.add_argument("--class-starts-at", help="ISO 8601 (default: from the gym's list)")
        parser.add_argument(
            "--no-waitlist", action="store_true", help="do not join the waiting list when full"
        )

    def handle(self, *args, **options) -> None:
        owner = get_user_model().objects.filter(username=options["user"]).first()
        if owner is None:
            raise CommandError(f"No user {options['user']!r}.")
        if CONTROL_CHARACTERS.search(options["session_id"]):
            raise CommandError("--session-id must not contain line breaks or control characters.")
        try:
            prebooking = self._prebook(owner, options)
        except services.PendingLimitReached as refused:
            raise CommandError(f"{owner}: {refused}") from None
        except AimHarderError as exc:
            raise CommandError(exc.reason) from None
        self.stdout.write(str(prebooking.pk))

    def _prebook(self, owner, options) -> Prebooking:
        if options["provider"] == "aimharder":
            return self._aimharder(owner, options)
        if options["provider"] not in settings.PREBOOKING_PROVIDERS:
            raise CommandError(f"Unknown provider {options['provider']!r}.")
        opens_at = _instant(options["opens_at"], "UTC", "--opens-at")
        starts = None
        if options["class_starts_at"]:
            starts = _instant(options["class_starts_at"], "UTC", "--class-starts-at")
        self._check(owner, opens_at, starts)
        payload = {"class_id": options["session_id"], "member": owner.username, "notes": ""}
        if starts is not None:
            payload["class_starts_at"] = starts.isoformat()
        return services.create_prebooking(owner, options["provider"], payload, opens_at)

    def _aimharder(self, owner, options) -> Prebooking:
        if not options["box"] or not options["day"]:
            raise CommandError("--box and --day are needed for AimHarder.")
        if not aimharder.valid_box_slug(options["box"]):
            raise CommandError("--box must be a box slug: lowercase letters, digits, hyphens.")
        box = (
            AimHarderBox.objects.filter(account__owner=owner, slug=options["box"])
            .order_by("id")
            .first()
        )
        if box is None:
            raise CommandError(f"{options['user']} has no linked AimHarder box {options['box']!r}.")
        try:
            day = datetime.strptime(options["day"], "%Y%m%d").date()
        except ValueError:
            raise CommandError("--day must be YYYYMMDD.") from None
        try:
            listed = aimharder_services.day_classes(box, day)
        except AimHarderError as exc:
            raise CommandError(f"Could not read the class list: {exc.reason}") from None
        gym_class = next((c for c in listed if c.session_id == options["session_id"]), None)
        if gym_class is None:
            raise CommandError(f"AimHarder lists no class {options['session_id']} that day.")
        opens_at = _instant(options["opens_at"], box.time_zone, "--opens-at")
        payload = aimharder_services.prebooking_payload(
            owner, box, day, gym_class, insist=not options["no_waitlist"]
        )
        if options["class_starts_at"]:
            starts = _instant(options["class_starts_at"], box.time_zone, "--class-starts-at")
            payload["class_starts_at"] = starts.isoformat()
        starts = datetime.fromisoformat(payload["class_starts_at"])
        self._check(owner, opens_at, starts)
        return aimharder_services.create_prebooking(owner, payload, opens_at)

    def _check(self, owner, opens_at: datetime, starts: datetime | None) -> None:
        now = timezone.now()
        if opens_at < now + timedelta(seconds=settings.PREBOOKING_MIN_AHEAD_SECONDS):
            raise CommandError("--opens-at is in the past (or only seconds away).")
        if opens_at > now + timedelta(days=settings.PREBOOKING_MAX_AHEAD_DAYS):
            raise CommandError(
                f"--opens-at is over {settings.PREBOOKING_MAX_AHEAD_DAYS} days away."
            )
        if starts is not None and starts <= opens_at:
            raise CommandError("The class starts before booking opens.")
        limit = pending_prebooking_limit(owner.pk)
        if services.pending_count(owner) >= limit:
            raise CommandError(f"{owner} has {limit} pending prebookings, the most allowed.")
