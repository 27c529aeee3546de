-- Prebooking's statements that are more than an ORM call; loaded once (jobs.sql.load), each
-- named by the "-- name:" line above it, with named parameters. Times are parameters: the
-- application's clock, which the sweep compares them with, never the server's now().

-- name: set_lock_timeout
-- How long the next lock wait of this session may take ('0': no limit).
SELECT set_config('lock_timeout', %(timeout)s, false);

-- name: lock_instant
-- Wait for an instant's session advisory lock: the one armer that fires it holds it.
SELECT pg_advisory_lock(%(space)s, %(key)s);

-- name: unlock_instant
SELECT pg_advisory_unlock(%(space)s, %(key)s);

-- name: claim_for_arming
-- The instant's pending prebookings not held yet by the owner of its lock, stamped armed_at.
UPDATE prebooking_prebooking
   SET armed_at = %(now)s
 WHERE status = 'pending' AND opens_at = %(instant)s AND NOT (id = ANY(%(held)s))
RETURNING id, provider, payload, opens_at, created_at;

-- name: claim_for_firing
-- pending -> firing for the ids still pending; the ids this caller won. attempted_at is what
-- the sweep reads to tell a live sender from a dead one.
UPDATE prebooking_prebooking
   SET status = 'firing', fired_at = %(fired_at)s, attempted_at = %(now)s,
       attempts = attempts + 1,
       lateness_ms = EXTRACT(EPOCH FROM (%(fired_at)s - opens_at)) * 1000
 WHERE id = ANY(%(ids)s) AND status = 'pending'
RETURNING id;
