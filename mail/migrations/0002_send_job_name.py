"""E-mail jobs queued before the move keep running: their task is now mail.tasks.send."""

from django.db import migrations

FORWARD = """
UPDATE jobs_job
   SET name = 'mail.tasks.send', target = replace(target, 'billing.email:', 'mail.email:')
 WHERE name IN ('billing.send_email', 'mail.send')
"""
BACKWARD = """
UPDATE jobs_job
   SET name = 'billing.send_email', target = replace(target, 'mail.email:', 'billing.email:')
 WHERE name = 'mail.tasks.send'
"""


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0001_initial"),
        ("jobs", "0004_one_queue"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
