"""What billing's e-mails need beyond the mail app: amounts as people read them, the links and
names their templates read, and the checks that skip a reminder whose invoice was paid or
whose dunning case closed meanwhile."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from billing.models import DunningCase, Invoice

ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd"}


def money(amount: int, currency: str) -> str:
    """Minor units as a person reads them: 1999, "eur" -> "19.99 EUR"."""
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d} {currency.upper()}"


def invoice_unpaid(context: dict[str, Any]) -> bool:
    return not Invoice.objects.filter(stripe_id=context.get("invoice"), status="paid").exists()


def dunning_open(context: dict[str, Any]) -> bool:
    return DunningCase.objects.filter(pk=context.get("case"), status="open").exists()


def context_defaults(email: Any) -> dict[str, Any]:
    """The pages billing's e-mails speak of (the user's billing page, Stripe's portal through
    it), the customer's name, and for a dunning e-mail without update_url its hosted invoice."""
    site = settings.SITE_URL.rstrip("/")
    defaults = {
        "billing_url": f"{site}/billing/",
        "portal_url": f"{site}/billing/portal/",
        "update_url": email.context.get("hosted_invoice_url") or "",
    }
    if email.customer is not None:
        defaults["name"] = email.customer.name
    return defaults
