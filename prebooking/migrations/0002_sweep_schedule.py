"""The recovery sweep: a django-q2 schedule on the timing cluster, every minute."""

from django.db import migrations

NAME = "prebooking:sweep"


def add_sweep(apps, schema_editor):
    from django.utils import timezone

    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={
            "func": "prebooking.tasks.sweep",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
            "cluster": "timing",
            "next_run": timezone.now(),
        },
    )


def remove_sweep(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("prebooking", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_sweep, remove_sweep)]
