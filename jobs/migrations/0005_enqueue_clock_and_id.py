from django.db import migrations

# jobs_enqueue takes the application's clock (p_now: when the job is created, and whether its
# run_at lies ahead) instead of reading the server's now(), and optionally the new job's id
# (p_id), drawn beforehand from the table's sequence by a statement that stores a row pointing
# at its job (billing's ingest_event) before the job exists: foreign keys are checked at commit.
# p_now defaults to now() for the one caller that has no clock to give: an old data migration.
CREATE_ENQUEUE = """
CREATE FUNCTION jobs_enqueue(
    p_name text, p_queue text, p_kwargs jsonb, p_target text, p_unique_key text,
    p_max_attempts integer, p_timeout integer, p_run_at timestamptz,
    p_now timestamptz DEFAULT now(), p_id bigint DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO jobs_job (id, name, queue, kwargs, target, unique_key, status, attempts,
                          max_attempts, timeout, run_at, last_error, worker, created_at)
    VALUES (coalesce(p_id, nextval(pg_get_serial_sequence('jobs_job', 'id'))), p_name, p_queue,
            p_kwargs, p_target, p_unique_key, 'queued', 0, p_max_attempts, p_timeout, p_run_at,
            '', '', p_now)
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NOT NULL THEN
        PERFORM pg_notify(
            'jobs:' || p_queue,
            CASE WHEN p_run_at > p_now THEN extract(epoch FROM p_run_at)::text ELSE '' END
        );
    END IF;
    RETURN new_id;
END
$$;
"""

DROP_OLD = """
DROP FUNCTION jobs_enqueue(text, text, jsonb, text, text, integer, integer, timestamptz);
"""
DROP_NEW = """
DROP FUNCTION jobs_enqueue(
    text, text, jsonb, text, text, integer, integer, timestamptz, timestamptz, bigint
);
"""


def old_function():
    from importlib import import_module

    return import_module("jobs.migrations.0004_one_queue").CREATE_ENQUEUE


class Migration(migrations.Migration):
    dependencies = [("jobs", "0004_one_queue")]

    operations = [
        migrations.RunSQL(DROP_OLD + CREATE_ENQUEUE, DROP_NEW + old_function()),
    ]
