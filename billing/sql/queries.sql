-- Billing's statements that are more than an ORM call; loaded once (jobs.sql.load), each named
-- by the "-- name:" line above it, with named parameters.

-- name: ingest_event
-- The webhooks' one round trip: store a verified event once (the unique stripe_id settles
-- concurrent deliveries) and, only when it was new, its processing job (jobs_enqueue, which
-- also wakes the workers on commit). The event points at its job by an id drawn from the
-- jobs' sequence before the job exists: the foreign key is checked at commit, when both do.
-- One statement is one transaction: an event is never stored without its job. No row when
-- the event id was already stored.
WITH event AS (
    INSERT INTO billing_stripeevent
           (stripe_id, type, kind, api_version, livemode, created, payload, status,
            received_at, job_id)
    VALUES (%(stripe_id)s, %(type)s, %(kind)s, %(api_version)s, %(livemode)s, %(created)s,
            %(payload)s::jsonb, 'received', %(now)s,
            nextval(pg_get_serial_sequence('jobs_job', 'id')))
        ON CONFLICT (stripe_id) DO NOTHING
 RETURNING id, job_id
)
SELECT id,
       jobs_enqueue(%(job_name)s, %(job_queue)s, jsonb_build_object('event_id', id),
                    'billing.stripeevent:' || id, NULL, %(job_max_attempts)s, %(job_timeout)s,
                    %(now)s, %(now)s, job_id) AS job_id
  FROM event;

-- name: start_processing
-- An attempt of billing.process_event takes its event: locks the row, reads it and marks it
-- processed in one statement, inside the job's transaction. If the handler then fails, the
-- transaction rolls back and the mark with it. No row: the event is settled, or dead.
UPDATE billing_stripeevent
   SET status = 'processed'
 WHERE id = %(id)s
   AND status = 'received'
RETURNING id, stripe_id, type, kind, api_version, livemode, created, payload, received_at,
          job_id;
