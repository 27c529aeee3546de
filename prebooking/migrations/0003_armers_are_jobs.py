"""Arming, re-sending and the sweep became jobs of the jobs layer.

Drops the django-q2 schedules that used to arm each prebooking and run the sweep (the sweep is
now the periodic job prebooking.sweep), and gives every pending prebooking's instant its two
armer jobs (what services.schedule_armers does for new ones).
"""

from datetime import UTC, timedelta

from django.conf import settings
from django.db import migrations


def armers_for_pending(apps, schema_editor):
    from django.utils import timezone

    apps.get_model("django_q", "Schedule").objects.filter(name__startswith="prebooking:").delete()
    Prebooking = apps.get_model("prebooking", "Prebooking")
    instants = set(
        Prebooking.objects.filter(status="pending").values_list("opens_at", flat=True)
    )
    lead = timedelta(seconds=settings.PREBOOKING_LEAD_SECONDS)
    with schema_editor.connection.cursor() as cursor:
        for instant in instants:
            for replica in (1, 2):
                key = f"prebooking.arm:{instant.astimezone(UTC).isoformat()}:{replica}"
                cursor.execute(
                    "SELECT jobs_enqueue('prebooking.arm', %s, jsonb_build_object('instant', %s),"
                    " %s, %s, 3, %s, %s)",
                    [
                        settings.PREBOOKING_QUEUE,
                        instant.isoformat(),
                        key,
                        key,
                        settings.PREBOOKING_ARM_SECONDS,
                        max(instant - lead, timezone.now()),
                    ],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("prebooking", "0002_sweep_schedule"),
        ("jobs", "0004_one_queue"),
    ]

    operations = [migrations.RunPython(armers_for_pending, migrations.RunPython.noop)]
