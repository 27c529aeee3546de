"""Sending a signed-in user to Stripe: Checkout for a plan or a wallet top-up, the Billing Portal.

Nothing here changes our billing state: the webhook's handlers do that when Stripe reports
the outcome (checkout.session.completed links the customer named by `client_reference_id` and
credits top-ups marked `metadata.wallet_top_up=true`). The one row written here is the
customer Stripe just created for the user, so the next checkout reuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import stripe
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from billing.audit import audit
from billing.models import Customer
from billing.stripe_api import client

logger = logging.getLogger(__name__)

# A person waits on these calls: give up well before a browser or gunicorn would.
PAGE_TIMEOUT_SECONDS = 10
# Stripe replaces this in success_url with the session's id; it must reach Stripe unescaped.
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


class BillingUnavailable(Exception):
    """Stripe could not be asked (no key, network, refused, down); the message is for the user.

    `status` is the HTTP answer: 503 when this server has no key, 502 when Stripe failed us.
    """

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


def configured() -> bool:
    """Whether an API key is set, so that the pages can offer Checkout and the Portal."""
    return bool(settings.STRIPE_API_KEY)


def _call(what: str, request: Callable[[stripe.StripeClient], object]) -> object:
    if not configured():
        raise BillingUnavailable("Payments are not set up on this server yet.", status=503)
    try:
        return request(client(timeout=PAGE_TIMEOUT_SECONDS))
    except stripe.APIConnectionError as error:
        logger.warning("stripe %s: cannot connect: %s", what, error)
        raise BillingUnavailable(
            "We could not reach Stripe, our payment provider. Nothing was charged; "
            "please try again in a minute."
        ) from error
    except stripe.StripeError as error:
        logger.error("stripe %s refused: %s %s", what, error.http_status, error.user_message)
        if error.http_status and error.http_status >= 500:
            message = "Stripe, our payment provider, is having trouble."
        else:
            message = "Stripe, our payment provider, refused the request."
        # In development the developer is the user: say what Stripe objected to.
        detail = f" (Stripe said: {error.user_message or error})" if settings.DEBUG else ""
        raise BillingUnavailable(
            f"{message} Nothing was charged; please try again later.{detail}"
        ) from error


def customer_of(user: AbstractBaseUser) -> Customer | None:
    """The user's Stripe customer, unless Stripe deleted it."""
    return Customer.objects.filter(user=user, deleted=False).first()


def _customer_id(user: AbstractBaseUser, api: stripe.StripeClient) -> tuple[str, bool]:
    """(the user's customer id, whether it is new): reused when one exists, else created.

    The idempotency key makes two concurrent first checkouts of one user get one customer.
    """
    existing = customer_of(user)
    if existing is not None:
        return existing.stripe_id, False
    created = api.v1.customers.create(
        {"email": user.email, "name": user.get_username(), "metadata": {"user_id": str(user.pk)}},
        {"idempotency_key": f"customer-for-user-{user.pk}"},
    )
    return created.id, True


def _remember_customer(user: AbstractBaseUser, customer_id: str) -> None:
    """Store the user's new customer (its customer.created event will fill in the rest).

    A user has one customer: one Stripe deleted gives the user up (it keeps its invoices).
    """
    try:
        with transaction.atomic():
            for old in Customer.objects.filter(user=user, deleted=True):
                old.user = None
                old.save(update_fields=["user", "updated_at"])
                cause = f"checkout:user:{user.pk}"
                audit(cause, old, "customer.unlinked_from_user", {"user_id": user.pk}, {})
            customer, _ = Customer.objects.get_or_create(stripe_id=customer_id)
            if customer.user_id is None:
                Customer.objects.filter(pk=customer.pk, user__isnull=True).update(user=user)
    except IntegrityError:
        # A concurrent request stored this user's customer first: the same one, by the key.
        logger.info("customer %s of user %s already stored", customer_id, user.pk)


def _checkout(user: AbstractBaseUser, params: dict, what: str) -> str:
    def create(api: stripe.StripeClient) -> tuple[str, str, bool]:
        customer_id, new = _customer_id(user, api)
        session = api.v1.checkout.sessions.create(
            {**params, "customer": customer_id, "client_reference_id": str(user.pk)}
        )
        return customer_id, session.url, new

    customer_id, url, new = _call(what, create)
    if new:
        _remember_customer(user, customer_id)
    return url


def start_subscription(user: AbstractBaseUser, plan: str, base_url: str) -> str:
    """A Checkout Session (mode subscription) for `plan`'s price; returns where to send the user."""
    price_id = settings.BILLING_PLANS[plan]
    params = {
        "mode": "subscription",
        "line_items": [{"price": price_id, "quantity": 1}],
        "success_url": (
            f"{base_url}/billing/success/?kind=subscription&session_id={SESSION_ID_PLACEHOLDER}"
        ),
        "cancel_url": f"{base_url}/billing/",
        "metadata": {"user_id": str(user.pk), "plan": plan},
        "subscription_data": {"metadata": {"user_id": str(user.pk), "plan": plan}},
    }
    return _checkout(user, params, f"checkout {plan}")


def start_top_up(user: AbstractBaseUser, amount: int, base_url: str) -> str:
    """A Checkout Session (mode payment) crediting `amount` (minor units) to the wallet."""
    marker = {"wallet_top_up": "true", "user_id": str(user.pk)}
    success = f"{base_url}/billing/success/?kind=top_up&session_id={SESSION_ID_PLACEHOLDER}"
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": settings.BILLING_TOP_UP_CURRENCY,
                    "unit_amount": amount,
                    "product_data": {"name": "Wallet top-up"},
                },
                "quantity": 1,
            }
        ],
        "success_url": success,
        "cancel_url": f"{base_url}/billing/",
        "metadata": marker,
        # Refund events carry the charge, which inherits the payment intent's metadata.
        "payment_intent_data": {"metadata": marker},
    }
    return _checkout(user, params, "top-up")


def portal_url(user: AbstractBaseUser, return_url: str) -> str | None:
    """A Billing Portal session for the user's customer; None when they have none yet."""
    customer = customer_of(user)
    if customer is None:
        return None

    def create(api: stripe.StripeClient) -> str:
        session = api.v1.billing_portal.sessions.create(
            {"customer": customer.stripe_id, "return_url": return_url}
        )
        return session.url

    return _call("portal", create)
