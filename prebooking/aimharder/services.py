"""What members do with AimHarder: link an account, list a day's classes, prebook one at the
instant its box's rule opens it, cancel the booking. Always scoped to the owner."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from prebooking import services
from prebooking.models import AimHarderAccount, AimHarderBox, AimHarderCancellation, Prebooking
from prebooking.providers import credentials, get_provider
from prebooking.providers.aimharder import client as aimharder
from prebooking.providers.aimharder.client import AimHarderError, GymClass, SessionExpired

PROVIDER = "aimharder"


def _provider():
    return get_provider(PROVIDER)


@sensitive_variables("password")
def link_account(owner, email: str, password: str) -> AimHarderAccount:
    """Log in at AimHarder to check the credentials, then store them encrypted with the boxes.

    Raises AimHarderError (LoginFailed for a refusal) and stores nothing when the login fails.
    Linking the same e-mail again replaces the password and keeps the boxes' rules.
    """
    email = email.strip().lower()
    existing = AimHarderAccount.objects.filter(owner=owner, email=email).first()
    fingerprint = existing.fingerprint if existing else aimharder.new_fingerprint()
    session = _provider().client.login(email, password, fingerprint)
    if not session.boxes:
        raise AimHarderError("This AimHarder account belongs to no box.")
    with transaction.atomic():
        account, _ = AimHarderAccount.objects.update_or_create(
            owner=owner,
            email=email,
            defaults={
                "password_token": credentials.encrypt(password),
                "fingerprint": fingerprint,
                "member_id": session.member_id,
                "name": session.name,
                "last_login_at": timezone.now(),
            },
        )
        for box in session.boxes:
            AimHarderBox.objects.update_or_create(
                account=account,
                boid=box.boid,
                defaults={"slug": box.slug, "name": box.name},
                create_defaults={
                    "slug": box.slug,
                    "name": box.name,
                    "time_zone": settings.AIMHARDER_DEFAULT_TIME_ZONE,
                },
            )
    _provider().remember_session(account.pk, session)
    return account


@transaction.atomic
def unlink_account(owner, account_id: int) -> int:
    """Delete the account and its credentials; its pending prebookings are cancelled.

    Returns how many pending prebookings were cancelled.
    """
    account = AimHarderAccount.objects.select_for_update().get(pk=account_id, owner=owner)
    pending = Prebooking.objects.filter(
        owner=owner,
        provider=PROVIDER,
        status=Prebooking.Status.PENDING,
        payload__account=account.pk,
    ).values_list("pk", flat=True)
    cancelled = sum(services.cancel_prebooking(pk) for pk in list(pending))
    account.delete()
    _provider().forget_account(account_id)
    return cancelled


def _with_session(account_id: int, call):
    provider = _provider()
    try:
        return call(provider.session(account_id))
    except SessionExpired:
        return call(provider.session(account_id, fresh=True))


def day_classes(box: AimHarderBox, day: date) -> list[GymClass]:
    """The classes of `day` at `box`, from AimHarder's /api/bookings, kept a short while.

    Listing and picking both ask for the day; a reload (or a loop) within
    AIMHARDER_CLASSES_CACHE_SECONDS reads our cache instead of calling AimHarder again. The key
    is the member's box row, so one member never sees another's booked marks.
    """
    key = f"aimharder:classes:{box.pk}:{day.isoformat()}"
    classes = cache.get(key)
    if classes is None:
        classes = _with_session(
            box.account_id,
            lambda session: _provider().client.classes(session, box.slug, box.boid, day),
        )
        cache.set(key, classes, settings.AIMHARDER_CLASSES_CACHE_SECONDS)
    return classes


def class_starts_at(box: AimHarderBox, day: date, gym_class: GymClass) -> datetime:
    """When the class starts (aware), from its "HH:MM - HH:MM" in the box's time zone.

    Raises AimHarderError when the class's time or the box's stored zone cannot be read.
    """
    try:
        hours, minutes = (int(part) for part in gym_class.starts.split(":"))
        return local_time(datetime.combine(day, time(hours, minutes)), box.time_zone)
    except (OverflowError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise _unusable_rule(box) from None


def local_time(wall_clock: datetime, zone_name: str) -> datetime:
    """The naive `wall_clock` as an aware time in the zone `zone_name` (DST-aware)."""
    # A wall-clock time in the gap of a spring-forward change does not exist: ZoneInfo gives it
    # the offset from before; normalising through UTC moves it to the first real time after.
    zone = zoneinfo.ZoneInfo(zone_name)
    return wall_clock.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def opening_instant(box: AimHarderBox, starts_at: datetime) -> datetime:
    """When booking opens for a class starting at `starts_at`, by the box's rule.

    "N hours before" counts elapsed hours (across a DST change the wall clock moves by one
    more or less); "D days before at HH:MM" is that wall-clock time in the box's zone.

    Raises AimHarderError when a stored rule reaches outside the calendar (the form bounds the
    numbers; a row written another way must still not break the pages).
    """
    try:
        if box.rule == AimHarderBox.Rule.HOURS_BEFORE:
            return (starts_at.astimezone(UTC) - timedelta(hours=box.hours_before)).astimezone(
                zoneinfo.ZoneInfo(box.time_zone)
            )
        local_day = starts_at.astimezone(zoneinfo.ZoneInfo(box.time_zone)).date()
        opening_day = local_day - timedelta(days=box.days_before)
        return local_time(datetime.combine(opening_day, box.at_time), box.time_zone)
    except (OverflowError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise _unusable_rule(box) from None


def _unusable_rule(box: AimHarderBox) -> AimHarderError:
    return AimHarderError(
        f"The booking rule of {box.name or box.slug} gives no opening time: "
        "change it on the AimHarder accounts page."
    )


def prebooking_payload(
    owner, box: AimHarderBox, day: date, gym_class: GymClass, insist: bool
) -> dict:
    """What the AimHarder provider needs at the instant, plus labels for people."""
    starts = class_starts_at(box, day, gym_class)
    return {
        "class_id": gym_class.session_id,
        "account": box.account_id,
        "box": box.slug,
        "boid": box.boid,
        "box_name": box.name,
        "session_id": gym_class.session_id,
        "day": aimharder.day_string(day),
        "insist": insist,
        "class_name": gym_class.name,
        "class_time": gym_class.time,
        "coach": gym_class.coach,
        "class_starts_at": starts.isoformat(),
        "member": owner.username,
    }


def create_prebooking(owner, payload: dict, opens_at: datetime) -> Prebooking:
    """Store an AimHarder prebooking (the generic service schedules its firing)."""
    return services.create_prebooking(owner, PROVIDER, payload, opens_at)


CANCELLED, NEEDS_CONFIRMATION = "cancelled", "needs_confirmation"


def reservation_id(prebooking: Prebooking) -> str:
    answer = (prebooking.response or {}).get("answer") or {}
    return str(answer.get("idres") or answer.get("id") or "")


def cancel_booking(prebooking: Prebooking, late: bool = False) -> str:
    """Cancel at the gym the class a prebooking booked: CANCELLED, or NEEDS_CONFIRMATION when
    AimHarder warns that a late cancellation loses the credit (send again with late=True).

    Raises AimHarderError with a reason when AimHarder refuses or cannot be reached.
    """
    if AimHarderCancellation.objects.filter(prebooking=prebooking).exists():
        return CANCELLED
    idres = reservation_id(prebooking)
    if prebooking.status != Prebooking.Status.SUCCEEDED or not idres:
        raise AimHarderError("There is no booking at the gym to cancel.")
    payload = prebooking.payload
    state = _with_session(
        int(payload["account"]),
        lambda session: _provider().client.cancel(session, payload["box"], idres, late),
    )
    if state == aimharder.LATE_WARNING:
        return NEEDS_CONFIRMATION
    if state != aimharder.CANCELLED:
        raise AimHarderError("AimHarder could not cancel this booking.")
    AimHarderCancellation.objects.get_or_create(
        prebooking=prebooking, defaults={"cancelled_at": timezone.now(), "late": late}
    )
    return CANCELLED
