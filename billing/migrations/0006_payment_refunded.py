"""Payment.refunded from the charge; statuses and top-up keys as Stripe names them.

Rows written before: a refunded payment's status said "refunded" / "partially_refunded"
(no PaymentIntent status); it becomes "succeeded" (a refund leaves the intent succeeded) with
the new `refunded` flag. A top-up credited from its checkout session was keyed by the session;
it is re-keyed by its payment intent, the key payment_intent.succeeded now credits under too.
"""

from django.db import migrations, models
from django.db.models import F, Q


def forwards(apps, schema_editor):
    Payment = apps.get_model("billing", "Payment")
    WalletTransaction = apps.get_model("billing", "WalletTransaction")
    Payment.objects.filter(status="refunded").update(status="succeeded", refunded=True)
    Payment.objects.filter(status="partially_refunded").update(status="succeeded")
    WalletTransaction.objects.filter(kind="top_up").exclude(
        Q(payment_intent_id="") | Q(source=F("payment_intent_id"))
    ).update(source=F("payment_intent_id"))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_event_resolved"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="refunded",
            field=models.BooleanField(default=False, help_text="The charge's refunded (in full)."),
        ),
        migrations.AlterField(
            model_name="payment",
            name="amount_refunded",
            field=models.BigIntegerField(default=0, help_text="The charge's amount_refunded."),
        ),
        migrations.AlterField(
            model_name="payment",
            name="status",
            field=models.CharField(
                blank=True, default="", help_text="The payment intent's status.", max_length=32
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
