"""The Email model moves from billing to mail: the state only, the table billing_email stays."""

import django.core.serializers.json
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("billing", "0010_event_email_search"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Email",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("key", models.CharField(help_text="<cause>:<template>, unique.", max_length=255)),
                        ("template", models.CharField(max_length=64)),
                        ("to", models.EmailField(blank=True, default="", help_text="Empty: the customer's address.", max_length=254)),
                        ("context", models.JSONField(blank=True, default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder)),
                        ("status", models.CharField(choices=[("pending", "pending"), ("sending", "sending (outcome unknown if it stays)"), ("sent", "sent"), ("skipped", "skipped (no longer relevant)")], default="pending", max_length=16)),
                        ("message_id", models.CharField(blank=True, default="", max_length=255)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("customer", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="emails", to="billing.customer")),
                    ],
                    options={
                        "db_table": "billing_email",
                        "constraints": [models.UniqueConstraint(fields=("key",), name="billing_email_key_unique")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
