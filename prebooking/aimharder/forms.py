"""Forms of the AimHarder pages: link an account, a box's booking rule, a day, a pick."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator
from django.utils import timezone

from billing.entitlements import pending_prebooking_limit
from prebooking.forms import LOCAL_INPUT_FORMATS, LocalDateTimeInput, refuse_control_characters
from prebooking.models import AimHarderBox, Prebooking
from prebooking.services import PendingLimitReached, pending_count


class LinkAccountForm(forms.Form):
    email = forms.EmailField(label="AimHarder e-mail")
    password = forms.CharField(
        label="AimHarder password",
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Checked with AimHarder now and stored encrypted; never shown again.",
    )


# A gym opens booking days, not months, ahead; larger values only overflow date arithmetic.
HOURS_BEFORE_MAX = 24 * 60
DAYS_BEFORE_MAX = 60


class BoxRuleForm(forms.ModelForm):
    class Meta:
        model = AimHarderBox
        fields = ["rule", "hours_before", "days_before", "at_time", "time_zone"]
        widgets = {"at_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}
        labels = {
            "rule": "Booking opens",
            "hours_before": "Hours before the class",
            "days_before": "Days before the class",
            "at_time": "At (box time)",
            "time_zone": "Box time zone",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, highest in (("hours_before", HOURS_BEFORE_MAX), ("days_before", DAYS_BEFORE_MAX)):
            field = self.fields[name]
            field.max_value = highest
            field.validators.append(MaxValueValidator(highest))
            field.widget.attrs["max"] = highest

    def clean_time_zone(self) -> str:
        name = self.cleaned_data["time_zone"]
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError("Unknown time zone (e.g. Europe/Madrid).") from None
        return name

    def clean(self) -> dict:
        data = super().clean()
        if data.get("rule") == AimHarderBox.Rule.HOURS_BEFORE:
            if data.get("hours_before") is None:
                self.add_error("hours_before", "Say how many hours before the class.")
        elif data.get("rule") == AimHarderBox.Rule.DAYS_BEFORE_AT:
            if data.get("days_before") is None:
                self.add_error("days_before", "Say how many days before the class.")
            if data.get("at_time") is None:
                self.add_error("at_time", "Say at what time booking opens.")
        return data


def _owner_boxes(owner):
    return AimHarderBox.objects.filter(account__owner=owner).select_related("account")


class BoxChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, box: AimHarderBox) -> str:
        return f"{box.name or box.slug} ({box.account.email})"


class ClassDayForm(forms.Form):
    """Which box and day to list (GET)."""

    box = BoxChoiceField(queryset=AimHarderBox.objects.none(), empty_label=None)
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, owner, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["box"].queryset = _owner_boxes(owner)

    def clean_day(self) -> date:
        day = self.cleaned_data["day"]
        today = timezone.localdate()
        if day < today - timedelta(days=1):
            raise forms.ValidationError("That day has passed.")
        if day > today + timedelta(days=settings.PREBOOKING_MAX_AHEAD_DAYS + 14):
            raise forms.ValidationError("That day is too far ahead.")
        return day


class PickForm(ClassDayForm):
    """The class picked, its opening (override optional) and the waiting-list choice (POST)."""

    session_id = forms.CharField(
        max_length=40, widget=forms.HiddenInput(), validators=[refuse_control_characters]
    )
    opens_at = forms.DateTimeField(
        label="Booking opens at (box time)",
        required=False,
        widget=LocalDateTimeInput(),
        input_formats=LOCAL_INPUT_FORMATS,
        help_text="Computed from the box's rule; change it if this class opens differently.",
    )
    insist = forms.BooleanField(
        label="Join the waiting list if the class is full", required=False, initial=True
    )

    def __init__(self, *args, owner, **kwargs) -> None:
        super().__init__(*args, owner=owner, **kwargs)
        self.owner = owner

    def clean_opens_at(self) -> datetime | None:
        value = self.cleaned_data.get("opens_at")
        box = self.cleaned_data.get("box")
        if value is None or box is None:
            return value
        # Entered as the box's wall-clock time, whatever zone the server reads it in.
        if timezone.is_aware(value):
            value = timezone.make_naive(value, timezone.get_current_timezone())
        from prebooking.aimharder.services import local_time

        try:
            return local_time(value, box.time_zone)
        except OverflowError:
            raise forms.ValidationError("Enter a date between the years 2 and 9998.") from None

    def check_opening(self, opens_at: datetime, starts_at: datetime) -> bool:
        """Add the form errors the opening instant deserves; True when it can be used."""
        now = timezone.now()
        if opens_at < now + timedelta(seconds=settings.PREBOOKING_MIN_AHEAD_SECONDS):
            self.add_error("opens_at", "Booking for this class is already open (or opens now).")
        elif opens_at > now + timedelta(days=settings.PREBOOKING_MAX_AHEAD_DAYS):
            self.add_error(
                "opens_at",
                f"Booking can open at most {settings.PREBOOKING_MAX_AHEAD_DAYS} days from now.",
            )
        elif starts_at <= opens_at:
            self.add_error("opens_at", "The class starts before booking opens.")
        pending = Prebooking.objects.filter(
            owner=self.owner, provider="aimharder", status=Prebooking.Status.PENDING
        )
        if pending.filter(payload__session_id=self.cleaned_data["session_id"]).exists():
            self.add_error(None, "You already have a pending prebooking for this class.")
        elif pending_count(self.owner) >= (limit := pending_prebooking_limit(self.owner.pk)):
            self.add_error(None, str(PendingLimitReached(limit)))
        return not self.errors
