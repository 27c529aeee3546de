"""Billing state mirrored from Stripe: the event log and the objects its handlers maintain."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, Lower


class MirroredFromStripe(models.Model):
    """A row kept in step with a Stripe object by event handlers.

    Order safety: Stripe's `created` of the newest event applied to the row, and the rank of
    its type, which settles events of the same second (billing.handlers.sync).
    """

    stripe_event_created = models.DateTimeField(null=True, blank=True)
    stripe_event_rank = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


# The address a Stripe object carries, wherever its type keeps it (customer, invoice, charge,
# checkout session), lower-cased: what staff search events by (billing_event_email_idx).
PAYLOAD_EMAIL = Lower(
    Coalesce(
        KT("payload__data__object__email"),
        KT("payload__data__object__customer_email"),
        KT("payload__data__object__receipt_email"),
        KT("payload__data__object__billing_details__email"),
        KT("payload__data__object__customer_details__email"),
    )
)


class StripeEvent(models.Model):
    """One Stripe event as delivered (webhook or backfill), stored once, processed by its job.

    The job (jobs.Job) alone holds the processing state: attempts, the next one, errors. The
    event keeps what Stripe sent and, in ``status``, the outcome: received until its job
    settles it (docs/stripe.md, "Event status").
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "received"
        PROCESSED = "processed", "processed"
        DEAD = "dead", "dead"  # of a permanent error or exhausted attempts: the page says which
        RESOLVED = "resolved", "resolved by staff (not run)"
        IGNORED = "ignored", "ignored (no handler, or discarded by staff)"

    class Kind(models.TextChoices):
        SNAPSHOT = "snapshot", "snapshot (v1 webhook: the object in the payload)"
        THIN = "thin", "thin (v2 notification: the object fetched from the API)"

    SETTLED = (Status.PROCESSED, Status.RESOLVED, Status.IGNORED)  # nothing more will run

    stripe_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100, help_text="As sent: a thin event's is v1.<type>.")
    kind = models.CharField(
        max_length=8, choices=Kind.choices, default=Kind.SNAPSHOT, db_default=Kind.SNAPSHOT
    )
    api_version = models.CharField(max_length=64, blank=True, default="")
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(help_text="Stripe's creation time of the event.")
    payload = models.JSONField(help_text="The whole event as Stripe sent it.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    received_at = models.DateTimeField(auto_now_add=True)
    # Null once the jobs layer's retention pruned a settled job; the event outlives it.
    job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stripe_events",
        help_text="The job that processes the event: its attempts, errors and next attempt.",
    )

    class Meta:
        permissions = [("replay_stripeevent", "Can replay Stripe events")]
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_event_stripe_id_unique"),
            models.CheckConstraint(
                condition=Q(status__in=["received", "processed", "dead", "resolved", "ignored"]),
                name="billing_event_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["snapshot", "thin"]), name="billing_event_kind_valid"
            ),
        ]
        indexes = [
            # Admin filters, each sorted newest first as the changelist shows them.
            models.Index(fields=["status", "-received_at"], name="billing_event_status_idx"),
            models.Index(fields=["type", "-received_at"], name="billing_event_type_idx"),
            models.Index(fields=["-received_at"], name="billing_event_received_idx"),
            # "Oldest unprocessed": small, because processed rows (almost all) are not in it.
            models.Index(
                fields=["received_at"],
                condition=Q(status="received"),
                name="billing_event_unprocessed_idx",
            ),
            # Staff search by the object an event is about, or by its customer.
            models.Index(KT("payload__data__object__id"), name="billing_event_object_idx"),
            models.Index(KT("payload__data__object__customer"), name="billing_event_customer_idx"),
            # Partial event ids pasted by staff: a trigram index serves LIKE '%...%'.
            GinIndex(
                fields=["stripe_id"], opclasses=["gin_trgm_ops"], name="billing_event_id_trgm_idx"
            ),
            # Staff search by an e-mail address in the payload, even with no customer row yet.
            models.Index(PAYLOAD_EMAIL, name="billing_event_email_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id} ({self.status})"

    @property
    def handled_type(self) -> str:
        """The v1 event type whose handler applies it (a thin `v1.invoice.paid` is invoice.paid)."""
        return self.type.removeprefix("v1.") if self.kind == self.Kind.THIN else self.type


class Customer(MirroredFromStripe):
    """A Stripe customer, linked to the user who owns it once a checkout tells us who that is."""

    stripe_id = models.CharField(max_length=255)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="billing_customer",
    )
    email = models.EmailField(blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_customer_stripe_id_unique"),
        ]
        indexes = [
            # Event search by (part of) a customer's e-mail: trigrams serve `~*` (iregex).
            GinIndex(
                fields=["email"], opclasses=["gin_trgm_ops"], name="billing_customer_email_trgm"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email or '(no email yet)'} {self.stripe_id}"


class ActivityLog(models.Model):
    """Audit trail: one row per change a Stripe event made to a customer's billing state."""

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity"
    )
    stripe_event_id = models.CharField(max_length=255, help_text="The event that made the change.")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=255)
    action = models.CharField(max_length=100)
    before = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    after = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="billing_activity_customer_idx"),
            models.Index(fields=["stripe_event_id"], name="billing_activity_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id} by {self.stripe_event_id}"


class Subscription(MirroredFromStripe):
    """A customer's subscription to a plan, as Stripe last told us."""

    stripe_id = models.CharField(max_length=255)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=32, blank=True, default="")
    price_id = models.CharField(max_length=255, blank=True, default="")
    plan = models.CharField(max_length=255, blank=True, default="")
    quantity = models.PositiveIntegerField(default=1)
    trial_end = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)

    ENTITLED = ("active", "trialing", "past_due")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_subscription_unique"),
        ]
        indexes = [models.Index(fields=["customer", "status"], name="billing_sub_customer_idx")]

    def __str__(self) -> str:
        return f"{self.plan or self.price_id or '?'} {self.stripe_id} ({self.status or 'unknown'})"


class Invoice(MirroredFromStripe):
    """A Stripe invoice; money in the currency's smallest unit."""

    stripe_id = models.CharField(max_length=255)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    status = models.CharField(max_length=32, blank=True, default="")
    amount_due = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    attempt_count = models.PositiveIntegerField(default=0)
    next_payment_attempt = models.DateTimeField(null=True, blank=True)
    hosted_invoice_url = models.URLField(max_length=2000, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_invoice_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.amount_due} {self.currency} ({self.status})"


class Payment(MirroredFromStripe):
    """A payment intent and its charge: what was taken and what was refunded."""

    stripe_id = models.CharField(max_length=255, help_text="The payment intent (pi_...).")
    charge_id = models.CharField(max_length=255, blank=True, default="")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0, help_text="The charge's amount_refunded.")
    refunded = models.BooleanField(default=False, help_text="The charge's refunded (in full).")
    currency = models.CharField(max_length=3, blank=True, default="")
    status = models.CharField(
        max_length=32, blank=True, default="", help_text="The payment intent's status."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_payment_unique"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0), name="billing_payment_refund_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.amount} {self.currency} ({self.status})"


class PaymentMethod(models.Model):
    """A card (or other method) attached to a customer, or detached since."""

    stripe_id = models.CharField(max_length=255)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="payment_methods"
    )
    type = models.CharField(max_length=32, blank=True, default="")
    brand = models.CharField(max_length=32, blank=True, default="")
    last4 = models.CharField(max_length=4, blank=True, default="")
    attached = models.BooleanField(default=False)
    stripe_event_created = models.DateTimeField(null=True, blank=True)
    stripe_event_rank = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_payment_method_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.brand or self.type} ...{self.last4} {'attached' if self.attached else ''}"


class WalletTransaction(models.Model):
    """One movement of a customer's prepaid wallet; the balance is the sum of these rows.

    `source` names the Stripe object that caused it and is unique, so a replayed or duplicated
    event can never move money twice: a top-up is keyed by its payment intent, which both
    checkout.session.completed and payment_intent.succeeded name.
    """

    class Kind(models.TextChoices):
        TOP_UP = "top_up", "top-up"
        REFUND = "refund", "refund of a top-up"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="wallet")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="Smallest currency unit; negative debits.")
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=255, help_text="The Stripe object that caused it.")
    payment_intent_id = models.CharField(max_length=255, blank=True, default="")
    charge_id = models.CharField(max_length=255, blank=True, default="")
    stripe_event_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source"], name="billing_wallet_source_unique"),
            models.CheckConstraint(condition=~Q(amount=0), name="billing_wallet_amount_nonzero"),
            models.CheckConstraint(
                condition=Q(kind="top_up", amount__gt=0) | Q(kind="refund", amount__lt=0),
                name="billing_wallet_sign_matches_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "currency"], name="billing_wallet_customer_idx"),
            models.Index(fields=["charge_id"], name="billing_wallet_charge_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency} ({self.source})"


class DunningCase(models.Model):
    """Recovery of one failed invoice: reminders on a timeline, then cancellation."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        PAID = "paid", "closed: paid"
        CANCELED = "canceled", "closed: subscription canceled"

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="dunning")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    opened_by_event = models.CharField(max_length=255)
    closed_by = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["opened_at"], condition=Q(status="open"), name="billing_dunning_open_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"dunning of {self.invoice.stripe_id} ({self.status})"
