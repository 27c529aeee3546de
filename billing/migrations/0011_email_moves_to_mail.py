"""The Email model now belongs to the mail app (mail 0001): the state only, no table changes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_event_email_search"),
        ("mail", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Email")],
            database_operations=[],
        ),
    ]
