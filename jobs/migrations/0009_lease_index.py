"""Running jobs leave the claim's index for one of their own, by lease end: a crashed attempt
is found (and claimed before waiting jobs) without walking the backlog. A row is in one of the
two partial indexes, so a state change still costs one index entry."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    # Built without locking out writes: workers keep claiming during a deploy.
    atomic = False

    dependencies = [("jobs", "0008_tasks_api")]

    operations = [
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                fields=["queue", "run_at"], name="job_leases", condition=Q(status="running")
            ),
        ),
        RemoveIndexConcurrently(model_name="job", name="job_claimable"),
        AddIndexConcurrently(
            model_name="job",
            index=models.Index(
                fields=["queue", "run_at", "id"],
                name="job_claimable",
                condition=Q(status__in=["queued", "retrying"]),
            ),
        ),
    ]
