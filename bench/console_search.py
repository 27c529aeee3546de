"""The console's search at scale: a million jobs and 300,000 Stripe events.

Seeds the rows inside a transaction that is rolled back at the end (nothing stays behind), runs
ANALYZE, then times each kind of search the console offers, through the admin's own query
functions (jobs.search.job_match, billing.admin.matching_events): the median of 5 runs each.
The baseline in the same run is the job search with one unindexed branch added (an equality
on the job type, which the search once had): PostgreSQL then scans every job. Writes
bench/results/console_search.json.

    python scripts/withdb.py --name bench -- python -m bench.console_search
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
JOBS = int(os.environ.get("BENCH_SEARCH_JOBS", "1000000"))
EVENTS = int(os.environ.get("BENCH_SEARCH_EVENTS", "300000"))
RUNS = 5

SEED = """
INSERT INTO jobs_job (name, kwargs, target, queue, status, attempts, max_attempts, run_at,
                      timeout, worker, last_error, error_fingerprint, created_at, finished_at)
SELECT CASE WHEN i %% 3 = 0 THEN 'billing.process_event' ELSE 'bench.other' END, '{}'::jsonb,
       'bench.row:' || i, 'default',
       CASE WHEN i %% 1000 = 0 THEN 'dead' ELSE 'succeeded' END, 1, 5, now(), 60, '',
       CASE WHEN i %% 100 = 0 THEN 'DoesNotExist: User ' || i || ' matching query does not exist.'
            ELSE '' END,
       '', now(), now()
  FROM generate_series(1, %(jobs)s) AS i;
INSERT INTO billing_stripeevent (stripe_id, type, api_version, livemode, created, payload,
                                 status, kind, received_at, job_id)
SELECT 'evt_' || md5(i::text), 'customer.created', '2026-10-28.endive', false, now(),
       jsonb_build_object('id', 'evt_' || md5(i::text), 'data', jsonb_build_object('object',
         jsonb_build_object('id', 'cus_' || substr(md5(i::text), 1, 14), 'object', 'customer',
                            'email', 'user' || i || '@example.com'))),
       'processed', 'snapshot', now(), NULL
  FROM generate_series(1, %(events)s) AS i;
ANALYZE jobs_job;
ANALYZE billing_stripeevent
"""


class Rollback(Exception):
    pass


def median_ms(call) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Q

    call_command("migrate", verbosity=0)
    from billing.admin import matching_events
    from billing.models import StripeEvent
    from jobs.models import Job
    from jobs.search import job_match

    def job_search(term: str, extra: Q | None = None) -> int:
        match = job_match(term) if extra is None else job_match(term) | extra
        newest = Job.objects.filter(match).order_by("-pk").values_list("pk", flat=True)
        return len(list(newest[:1000]))

    def md5(text: bytes) -> str:  # the seed's ids are PostgreSQL's md5() of the row number
        return hashlib.md5(text, usedforsecurity=False).hexdigest()

    event_id = "evt_" + md5(b"123456")
    results: dict[str, object] = {"jobs": JOBS, "events": EVENTS, "runs": RUNS}
    try:
        with transaction.atomic():
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for statement in SEED.split(";"):
                    if statement.strip():
                        params = {"jobs": JOBS, "events": EVENTS} if "%(" in statement else None
                        cursor.execute(statement, params)
            results["seed_s"] = round(time.perf_counter() - started, 1)
            job_terms = {
                "job id": "777777",
                "error text": "User 424200 matching",
                "error text, 10,000 matches": "matching query",
                "Stripe event id": event_id,
                "e-mail in an event payload": "user123456@example.com",
            }
            results["job_search_ms"] = {
                label: median_ms(lambda term=term: job_search(term))
                for label, term in job_terms.items()
            }
            results["baseline_unindexed_branch_ms"] = {
                label: median_ms(lambda term=term: job_search(term, Q(name=term)))
                for label, term in job_terms.items()
            }
            event_terms = {
                "e-mail in the payload": "user123456@example.com",
                "part of an event id (6)": event_id[4:10],
                "part of an event id (3)": event_id[4:7],
                "customer id": "cus_" + md5(b"5000")[:14],
            }
            results["event_search_ms"] = {
                label: median_ms(lambda term=term: matching_events(StripeEvent.objects.all(), term))
                for label, term in event_terms.items()
            }
            raise Rollback
    except Rollback:
        pass
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "console_search.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
