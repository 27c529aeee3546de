-- The job queue's statements: one table (jobs_job) is the queue, the jobs' state and, with
-- jobs_jobattempt, their log. Loaded once by jobs.sql; each statement is named by the
-- "-- name:" line above it and takes named parameters, %(like_this)s. Times are parameters
-- (the application's clock, as every other timestamp of the project), never the server's.
--
-- A job is claimable when it is waiting (queued, retrying) and its run_at has passed, or
-- running with run_at -- its lease -- passed: the process that held it died. Two partial
-- indexes serve the claim, the earliest next run_at and readiness: job_claimable, jobs_job
-- (queue, run_at, id) WHERE status IN ('queued', 'retrying'), and job_leases, (queue, run_at)
-- WHERE status = 'running' (a row is in one or the other, so a state change costs one entry,
-- as with a single index, and expired leases are found without walking the backlog).

-- name: enqueue
-- One job (jobs_enqueue, created by migration jobs.0007: insert, and wake the queue's workers
-- on commit through jobs_notify, the one place a NOTIFY is sent from). NULL when unique_key is taken: the caller reads the existing job.
SELECT jobs_enqueue(
    %(name)s, %(queue)s, %(kwargs)s::jsonb, %(target)s, %(unique_key)s,
    %(max_attempts)s, %(timeout)s, %(run_at)s, %(now)s, NULL, %(args)s::jsonb
);

-- name: claim
-- Take up to %(limit)s due jobs of a queue and mark them running with their new attempt number
-- and a lease of %(lease)s seconds in the same statement, skipping rows another worker is
-- taking. They run in the order taken, in one worker process. The lease is short and renewed
-- while it is held: by the claiming process until a worker process takes the batch over
-- (extend_leases), then by that process until each attempt ends. A running job whose lease
-- has passed crashed (its holder died): it is taken first, before any waiting job, its
-- attempt is logged as such here, and it runs again -- or, when that was its last attempt, it
-- comes back with exhausted = true for the runner to bury without running it. Then waiting
-- jobs, oldest run_at first (FIFO among equals by id). The last column, on every row and
-- alone when nothing was claimed, is the earliest run_at (or lease end) still ahead: when the
-- caller should look again.
WITH crashed AS (
    -- Running jobs whose lease passed (index job_leases: only running rows).
    SELECT id, run_at, timeout, true AS crashed, attempts >= max_attempts AS was_last,
           0 AS rank
      FROM jobs_job
     WHERE queue = %(queue)s
       AND status = 'running'
       AND run_at <= %(now)s
     ORDER BY run_at, id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
),
waiting AS (
    -- Due waiting jobs (index job_claimable: only queued and retrying rows).
    SELECT id, run_at, timeout, false AS crashed, false AS was_last, 1 AS rank
      FROM jobs_job
     WHERE queue = %(queue)s
       AND status IN ('queued', 'retrying')
       AND run_at <= %(now)s
     ORDER BY run_at, id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
),
due AS (
    SELECT * FROM crashed
     UNION ALL
    SELECT * FROM waiting
     ORDER BY rank, run_at, id
     LIMIT %(limit)s
),
queued AS (
    -- The claimed jobs run one after the other in one worker: what waits behind the first
    -- waits for the timeouts of those before it.
    SELECT due.*,
           sum(timeout) OVER (ORDER BY rank, run_at, id) AS batch_seconds,
           row_number() OVER (ORDER BY rank, run_at, id) AS position
      FROM due
),
taken AS (
    -- A batch stops where its timeouts would pass %(batch_seconds)s (a slow batch must not
    -- hold jobs other workers could run); the first job is always taken. The rest stay queued.
    SELECT * FROM queued WHERE position = 1 OR batch_seconds <= %(batch_seconds)s
),
crash_log AS (
    -- Reads jobs_job as it was before `claimed` (one snapshot per statement): the attempt
    -- that died, its start and its worker.
    INSERT INTO jobs_jobattempt
           (job_id, number, outcome, started_at, finished_at, error, error_class, traceback,
            worker)
    SELECT job.id, job.attempts, 'crashed', coalesce(job.started_at, %(now)s), %(now)s,
           'The worker stopped during this attempt (killed, out of memory or timed out).',
           'jobs.errors.WorkerDied', '', job.worker
      FROM jobs_job AS job
      JOIN taken AS due ON due.id = job.id
     WHERE due.crashed
),
claimed AS (
    UPDATE jobs_job AS job
       SET status = 'running',
           attempts = CASE WHEN due.crashed AND due.was_last
                           THEN job.attempts ELSE job.attempts + 1 END,
           started_at = %(now)s,
           run_at = %(now)s + make_interval(secs => %(lease)s),
           worker = %(worker)s,
           last_error = CASE WHEN due.crashed THEN 'worker died during attempt ' || job.attempts
                             ELSE job.last_error END
      FROM taken AS due
     WHERE job.id = due.id
 RETURNING job.id, job.name, job.kwargs, job.attempts AS attempt, job.max_attempts,
           job.timeout, due.crashed, due.crashed AND due.was_last AS exhausted, job.args,
           job.created_at AS enqueued_at, due.rank, due.run_at AS due_at
)
SELECT claimed.*,
       least((SELECT min(run_at) FROM jobs_job
               WHERE queue = %(queue)s
                 AND status IN ('queued', 'retrying')
                 AND run_at > %(now)s),
             (SELECT min(run_at) FROM jobs_job
               WHERE queue = %(queue)s
                 AND status = 'running'
                 AND run_at > %(now)s)) AS next_run_at
  FROM (VALUES (1)) AS always_one_row
  LEFT JOIN claimed ON true
 ORDER BY claimed.rank, claimed.due_at, claimed.id;

-- name: succeed
-- The attempt's success, in the job's own transaction (atomic jobs: with the work itself):
-- the job and its attempt row, or nothing when the lease was lost to another worker (the
-- caller then rolls the work back).
WITH job AS (
    UPDATE jobs_job
       SET status = 'succeeded', finished_at = %(now)s, last_error = '',
           return_value = %(return_value)s::jsonb
     WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
 RETURNING id, attempts, started_at
)
INSERT INTO jobs_jobattempt
       (job_id, number, outcome, started_at, finished_at, duration_ms, error, error_class,
        traceback, worker)
SELECT id, attempts, 'succeeded', started_at, %(now)s, %(duration_ms)s, '', '', '', %(worker)s
  FROM job
RETURNING job_id;

-- name: fail
-- A failed attempt: retrying at %(retry_at)s, or dead (status 'dead', retry_at NULL). The job,
-- its attempt row and, for a retry, the wake-up of the queue's workers at that instant.
-- No row when the lease was lost: the job belongs to whoever took it over.
WITH job AS (
    UPDATE jobs_job
       SET status = %(status)s::varchar,
           run_at = coalesce(%(retry_at)s::timestamptz, run_at),
           finished_at = CASE WHEN %(status)s::varchar = 'dead' THEN %(now)s END,
           last_error = %(error)s,
           error_fingerprint = %(fingerprint)s
     WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
 RETURNING id, queue, attempts, started_at, run_at
),
attempt AS (
    INSERT INTO jobs_jobattempt
           (job_id, number, outcome, started_at, finished_at, duration_ms, error, error_class,
            traceback, worker)
    SELECT id, attempts, 'failed', started_at, %(now)s, %(duration_ms)s, %(error)s,
           %(error_class)s, %(traceback)s, %(worker)s
      FROM job
)
SELECT id, run_at,
       CASE WHEN %(retry_at)s::timestamptz IS NOT NULL
            THEN jobs_notify(queue, run_at, %(now)s) END
  FROM job;

-- name: bury_exhausted
-- A job whose last attempt crashed (claimed with exhausted = true): dead without running.
UPDATE jobs_job
   SET status = 'dead', finished_at = %(now)s, last_error = %(error)s,
       error_fingerprint = %(fingerprint)s
 WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
RETURNING id;

-- name: take_over
-- A worker process takes over the batch its claimer handed it: its name on the rows, if each
-- attempt is still the one claimed (another cluster may have claimed a job whose lease passed
-- while the batch waited). From then on that process renews their leases (extend_leases). The
-- ids returned are those it now holds. Committed without waiting for the WAL flush, as the
-- claim is: lost in a database crash, it only leaves the claimer's name on the rows.
UPDATE jobs_job AS job
   SET worker = %(worker)s
  FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[]) AS mine(id, attempt),
       (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit
 WHERE job.id = ANY(%(ids)s::bigint[])
   AND job.id = mine.id
   AND job.status = 'running'
   AND job.attempts = mine.attempt
RETURNING job.id;

-- name: extend_leases
-- The heartbeat of the process holding claimed attempts: each job's lease now ends
-- %(leases)s seconds after %(now)s, if the attempt is still the one it holds. The claimer
-- renews what it handed off and no worker process took over yet (%(holder)s: its own name);
-- a worker process (%(holder)s NULL) what it took over. The ids returned are those it still
-- holds. Committed without waiting for the WAL flush (a renewal lost in a database crash
-- only shortens a lease).
UPDATE jobs_job AS job
   SET run_at = %(now)s + make_interval(secs => mine.lease)
  FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[], %(leases)s::float8[])
       AS mine(id, attempt, lease),
       (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit
 WHERE job.id = ANY(%(ids)s::bigint[])
   AND job.id = mine.id
   AND job.status = 'running'
   AND job.attempts = mine.attempt
   AND (%(holder)s::varchar IS NULL OR job.worker = %(holder)s::varchar)
RETURNING job.id;

-- name: notify
-- Wake the workers of a queue when the current transaction commits (a replay: due now).
SELECT jobs_notify(%(queue)s, NULL, NULL);

-- name: heartbeat
-- A worker cluster is alive: what /readyz and the dashboard read. One row per process.
INSERT INTO jobs_workercluster AS cluster
       (name, queue, host, pid, workers, started_at, seen_at)
VALUES (%(name)s, %(queue)s, %(host)s, %(pid)s, %(workers)s, %(now)s, %(now)s)
    ON CONFLICT (host, pid) DO UPDATE
   SET name = excluded.name, queue = excluded.queue, workers = excluded.workers,
       seen_at = excluded.seen_at;

-- name: queues_without_workers
-- Queues with work due for more than %(stale_seconds)s and no cluster seen in that time, with
-- when their oldest such work fell due and when a cluster of theirs was last seen (NULL: never
-- since the pruning of day-old clusters): the later of the two is since when nobody attends.
SELECT queue.name, due.oldest, seen.last_seen
  FROM unnest(%(queues)s::text[]) AS queue(name)
 CROSS JOIN LATERAL (
           SELECT least(
                      (SELECT min(run_at) FROM jobs_job
                        WHERE jobs_job.queue = queue.name
                          AND status IN ('queued', 'retrying')
                          AND run_at <= %(now)s - make_interval(secs => %(stale_seconds)s)),
                      (SELECT min(run_at) FROM jobs_job
                        WHERE jobs_job.queue = queue.name
                          AND status = 'running'
                          AND run_at <= %(now)s - make_interval(secs => %(stale_seconds)s)))
                  AS oldest) AS due
 CROSS JOIN LATERAL (
           SELECT max(seen_at) AS last_seen
             FROM jobs_workercluster
            WHERE jobs_workercluster.queue = queue.name) AS seen
 WHERE due.oldest IS NOT NULL
   AND (seen.last_seen IS NULL
        OR seen.last_seen <= %(now)s - make_interval(secs => %(stale_seconds)s));
