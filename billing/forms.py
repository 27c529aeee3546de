"""Forms of the user's billing page: which plan to subscribe to, how much to top up."""

from __future__ import annotations

from django import forms
from django.conf import settings

from billing.emails import ZERO_DECIMAL, money


def _plan_choices() -> list[tuple[str, str]]:
    return [(plan, plan.title()) for plan in settings.BILLING_PLANS]


class PlanForm(forms.Form):
    plan = forms.ChoiceField(choices=_plan_choices)


def _minor_units(currency: str) -> int:
    return 1 if currency in ZERO_DECIMAL else 100


def _bounds() -> str:
    currency = settings.BILLING_TOP_UP_CURRENCY
    low, high = settings.BILLING_TOP_UP_MIN, settings.BILLING_TOP_UP_MAX
    return f"between {money(low, currency)} and {money(high, currency)}"


class TopUpForm(forms.Form):
    """An amount in major units (12.50), cleaned to minor units (1250) within the bounds."""

    amount = forms.DecimalField(label="Amount", max_digits=9, decimal_places=2, min_value=0)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"].help_text = f"Any amount {_bounds()}."

    def clean_amount(self) -> int:
        currency = settings.BILLING_TOP_UP_CURRENCY
        minor = self.cleaned_data["amount"] * _minor_units(currency)
        if minor != minor.to_integral_value():
            raise forms.ValidationError(f"{currency.upper()} has no fractions of a unit.")
        if not settings.BILLING_TOP_UP_MIN <= minor <= settings.BILLING_TOP_UP_MAX:
            raise forms.ValidationError(f"Top up {_bounds()}.")
        return int(minor)
