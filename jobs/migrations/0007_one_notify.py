from django.db import migrations

# Every wake-up of a queue's workers goes through jobs_notify: a new job (jobs_enqueue), a
# retry (the fail statement) and a staff replay (the notify statement). Delivered on commit;
# the payload is the run_at (epoch seconds) of a job not due yet, so waiting workers set a
# timer for it, and empty for one due now.
CREATE_NOTIFY = """
CREATE FUNCTION jobs_notify(p_queue text, p_run_at timestamptz, p_now timestamptz)
RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify(
        'jobs:' || p_queue,
        CASE WHEN p_run_at > p_now THEN extract(epoch FROM p_run_at)::text ELSE '' END
    );
$$;
"""

ENQUEUE_BODY = """
CREATE OR REPLACE FUNCTION jobs_enqueue(
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
        PERFORM jobs_notify(p_queue, p_run_at, p_now);
    END IF;
    RETURN new_id;
END
$$;
"""


def previous_enqueue():
    from importlib import import_module

    create = import_module("jobs.migrations.0005_enqueue_clock_and_id").CREATE_ENQUEUE
    return create.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0006_console_search_groups_bulk")]

    operations = [
        migrations.RunSQL(
            CREATE_NOTIFY + ENQUEUE_BODY,
            previous_enqueue() + "DROP FUNCTION jobs_notify(text, timestamptz, timestamptz);",
        ),
    ]
