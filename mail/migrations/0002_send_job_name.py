"""E-mail jobs queued before the move keep running: billing.send_email is now mail.send."""

from django.db import migrations

FORWARD = """
UPDATE jobs_job
   SET name = 'mail.send', target = replace(target, 'billing.email:', 'mail.email:')
 WHERE name = 'billing.send_email'
"""
BACKWARD = """
UPDATE jobs_job
   SET name = 'billing.send_email', target = replace(target, 'mail.email:', 'billing.email:')
 WHERE name = 'mail.send'
"""


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0001_initial"),
        ("jobs", "0004_one_queue"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
