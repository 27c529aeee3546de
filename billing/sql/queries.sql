-- Billing's statements that are more than an ORM call; loaded once (jobs.sql.load), each named
-- by the "-- name:" line above it, with named parameters.

-- name: ingest_event
-- The webhook's one round trip: store a verified event once (the unique stripe_id settles
-- concurrent deliveries) and, only when it was new, its processing job (jobs_enqueue, which
-- also wakes the workers on commit). One statement is one transaction: an event is never
-- stored without its job. No row when the event id was already stored.
WITH event AS (
    INSERT INTO billing_stripeevent
           (stripe_id, type, api_version, livemode, created, payload, status, attempts,
            last_error, received_at)
    VALUES (%(stripe_id)s, %(type)s, %(api_version)s, %(livemode)s, %(created)s,
            %(payload)s::jsonb, 'received', 0, '', %(now)s)
        ON CONFLICT (stripe_id) DO NOTHING
 RETURNING id
)
SELECT id,
       jobs_enqueue(%(job_name)s, %(job_queue)s, jsonb_build_object('event_id', id),
                    'billing.stripeevent:' || id, NULL, %(job_max_attempts)s, %(job_timeout)s,
                    %(now)s)
  FROM event;

-- name: start_processing
-- An attempt of billing.process_event takes its event: locks the row, reads it and marks it
-- processed in one statement, inside the job's transaction. If the handler then fails, the
-- transaction rolls back and the mark with it. No row: the event is already settled.
UPDATE billing_stripeevent
   SET status = 'processed',
       attempts = coalesce(%(attempts)s, attempts + 1),
       processed_at = %(now)s,
       next_attempt_at = NULL,
       last_error = ''
 WHERE id = %(id)s
   AND status NOT IN ('processed', 'resolved', 'ignored')
RETURNING id, stripe_id, type, api_version, livemode, created, payload, attempts,
          received_at, kind;
