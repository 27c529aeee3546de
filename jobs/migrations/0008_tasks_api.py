"""Jobs are Django Tasks: a row names its task by module path, keeps positional arguments and
the return value, and an attempt's error its exception class (TaskResult.errors)."""

from importlib import import_module

from django.db import migrations, models
from django.db.models import Value

ENQUEUE_10 = (
    "jobs_enqueue(text, text, jsonb, text, text, integer, integer, timestamptz, timestamptz, bigint)"
)
PREVIOUS = "jobs.migrations.0007_one_notify"
ENQUEUE_11 = ENQUEUE_10.replace("bigint)", "bigint, jsonb)")

# As jobs.0007's, with the task's positional arguments last (statements that pass ten
# arguments, such as billing's ingest_event, get an empty list).
CREATE_ENQUEUE = """
CREATE FUNCTION jobs_enqueue(
    p_name text, p_queue text, p_kwargs jsonb, p_target text, p_unique_key text,
    p_max_attempts integer, p_timeout integer, p_run_at timestamptz,
    p_now timestamptz DEFAULT now(), p_id bigint DEFAULT NULL, p_args jsonb DEFAULT '[]'
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO jobs_job (id, name, queue, args, kwargs, target, unique_key, status, attempts,
                          max_attempts, timeout, run_at, last_error, worker, created_at)
    VALUES (coalesce(p_id, nextval(pg_get_serial_sequence('jobs_job', 'id'))), p_name, p_queue,
            p_args, p_kwargs, p_target, p_unique_key, 'queued', 0, p_max_attempts, p_timeout,
            p_run_at, '', '', p_now)
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NOT NULL THEN
        PERFORM jobs_notify(p_queue, p_run_at, p_now);
    END IF;
    RETURN new_id;
END
$$;
"""

# The old job-type names and the module paths of the tasks that replace them.
RENAMED = {
    "billing.process_event": "billing.tasks.process_event",
    "billing.dunning_step": "billing.tasks.dunning_step",
    "billing.alert_top_up_failed": "billing.tasks.alert_top_up_failed",
    "billing.alert_top_up_failures_summary": "billing.tasks.alert_top_up_failures_summary",
    "billing.prune_events": "billing.tasks.prune_events",
    "jobs.alert_dead_job": "jobs.tasks.alert_dead_job",
    "jobs.alert_summary": "jobs.tasks.alert_summary",
    "jobs.prune": "jobs.tasks.prune",
    "prebooking.notify_failure": "prebooking.tasks.notify_failure",
    "prebooking.arm": "prebooking.tasks.arm",
    "prebooking.refire": "prebooking.tasks.refire",
    "prebooking.sweep": "prebooking.tasks.sweep",
}


def rename(apps, schema_editor, mapping=RENAMED):
    Job = apps.get_model("jobs", "Job")
    for old, new in mapping.items():
        Job.objects.filter(name=old).update(name=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [("jobs", "0007_one_notify")]

    operations = [
        migrations.AlterField(
            model_name="job",
            name="name",
            field=models.CharField(
                help_text="Its task's module path, e.g. billing.tasks.process_event.",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="args",
            field=models.JSONField(
                blank=True, db_default=Value([], models.JSONField()), default=list
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="return_value",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="job",
            name="worker",
            field=models.CharField(
                blank=True,
                help_text="Who holds the attempt (claimer, then worker).",
                max_length=100,
            ),
        ),
        migrations.AddField(
            model_name="jobattempt",
            name="error_class",
            field=models.CharField(blank=True, db_default="", max_length=200),
        ),
        migrations.RunSQL(
            [f"DROP FUNCTION {ENQUEUE_10}", CREATE_ENQUEUE],
            [f"DROP FUNCTION {ENQUEUE_11}", import_module(PREVIOUS).ENQUEUE_BODY],
        ),
        migrations.RunPython(rename, rename_back),
    ]
