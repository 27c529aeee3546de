"""E-mail jobs queued before jobs became Django Tasks keep running: a job row names its task by
module path, so mail.send is now mail.tasks.send."""

from django.db import migrations

FORWARD = "UPDATE jobs_job SET name = 'mail.tasks.send' WHERE name = 'mail.send'"
BACKWARD = "UPDATE jobs_job SET name = 'mail.send' WHERE name = 'mail.tasks.send'"


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0002_send_job_name"),
        ("jobs", "0008_tasks_api"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
