"""The prebooking form: what to book, and when booking opens (in the user's time zone)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from billing.entitlements import pending_prebooking_limit
from prebooking.models import Prebooking
from prebooking.providers import provider_choices
from prebooking.services import PendingLimitReached

# Line breaks and other control characters: an id with one would end up in an e-mail subject,
# a log line or an alert, where it can forge a header or a line.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def refuse_control_characters(value: str) -> None:
    """Validator: text that goes into headers, logs or alerts is one plain line."""
    if CONTROL_CHARACTERS.search(value):
        raise forms.ValidationError("Remove the line breaks and other control characters.")


LOCAL_INPUT_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M:%S", attrs={"step": "1"}, **kwargs)


class PrebookingForm(forms.Form):
    provider = forms.ChoiceField(label="Gym", choices=provider_choices)
    class_id = forms.CharField(
        label="Class or session id",
        max_length=80,
        validators=[refuse_control_characters],
        help_text="As the gym's booking page shows it.",
    )
    class_starts_at = forms.DateTimeField(
        label="Class date and time", widget=LocalDateTimeInput(), input_formats=LOCAL_INPUT_FORMATS
    )
    opens_at = forms.DateTimeField(
        label="Booking opens at",
        widget=LocalDateTimeInput(),
        input_formats=LOCAL_INPUT_FORMATS,
        help_text="We send your booking at this exact second.",
    )
    notes = forms.CharField(
        label="Notes", required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )
    time_zone = forms.CharField(required=False, widget=forms.HiddenInput())

    def __init__(self, *args, owner, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def _zone(self) -> zoneinfo.ZoneInfo:
        name = self.data.get("time_zone") or "UTC"
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    def _localise(self, value: datetime | None) -> datetime | None:
        # The browser sends wall-clock time in the user's zone (the hidden field names it);
        # Django already read it in the server's zone, so take the wall-clock time back.
        if value is None:
            return None
        if timezone.is_aware(value):
            value = timezone.make_naive(value, timezone.get_current_timezone())
        value = value.replace(tzinfo=self._zone())
        try:
            value.astimezone(UTC)
        except OverflowError:
            # 9999-12-31 23:59 in a zone west of UTC is in year 10000 there: no datetime holds it.
            raise forms.ValidationError("Enter a date before the year 9999.") from None
        return value

    def clean_time_zone(self) -> str:
        return self._zone().key

    def clean_class_starts_at(self) -> datetime:
        return self._localise(self.cleaned_data["class_starts_at"])

    def clean_opens_at(self) -> datetime:
        opens_at = self._localise(self.cleaned_data["opens_at"])
        now = timezone.now()
        minimum = settings.PREBOOKING_MIN_AHEAD_SECONDS
        if opens_at < now + timedelta(seconds=minimum):
            raise forms.ValidationError(
                "Booking opening time is "
                + ("in the past" if opens_at <= now else "too soon")
                + f": it must be at least {minimum} seconds from now."
            )
        if opens_at > now + timedelta(days=settings.PREBOOKING_MAX_AHEAD_DAYS):
            raise forms.ValidationError(
                f"Booking can open at most {settings.PREBOOKING_MAX_AHEAD_DAYS} days from now."
            )
        return opens_at

    def clean(self) -> dict:
        data = super().clean()
        starts, opens = data.get("class_starts_at"), data.get("opens_at")
        within = timedelta(days=settings.PREBOOKING_CLASS_WITHIN_DAYS)
        if starts and opens and starts < opens:
            self.add_error("class_starts_at", "The class starts before booking opens.")
        elif starts and opens and starts > opens + within:
            self.add_error(
                "class_starts_at",
                f"The class must start within {within.days} days of booking opening.",
            )
        pending = Prebooking.objects.filter(owner=self.owner, status=Prebooking.Status.PENDING)
        if data.get("class_id") and data.get("provider"):
            duplicate = pending.filter(
                provider=data["provider"], payload__class_id=data["class_id"]
            ).exists()
            if duplicate:
                self.add_error("class_id", "You already have a pending prebooking for this class.")
        limit = pending_prebooking_limit(self.owner.pk)
        if pending.count() >= limit:
            raise forms.ValidationError(str(PendingLimitReached(limit)))
        return data

    def payload(self) -> dict:
        """What the gym's booking endpoint receives."""
        data = self.cleaned_data
        return {
            "class_id": data["class_id"],
            "class_starts_at": data["class_starts_at"].isoformat(),
            "notes": data["notes"],
            "member": self.owner.username,
        }
