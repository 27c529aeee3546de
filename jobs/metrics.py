"""Prometheus metrics of the jobs layer.

Counters are bumped where attempts end (in the worker processes); with
``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` sets it) every process writes its samples
there and /metrics sums them. Queue depths are read from PostgreSQL at scrape time.
"""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

JOB_ATTEMPTS = Counter(
    "jobs_attempts_total", "Job attempts that ended, by job type and outcome", ["job", "outcome"]
)
JOBS_DEAD = Counter("jobs_dead_total", "Jobs that exhausted their attempts", ["job"])


class QueueCollector(Collector):
    """Queue depth per queue and state, and the age of the oldest due job, from the database."""

    def collect(self):
        from jobs import selectors

        depth = GaugeMetricFamily(
            "jobs_queue_depth", "Jobs per queue and state", labels=["queue", "state"]
        )
        for queue, counts in selectors.queue_counts().items():
            for state in selectors.STATES:
                depth.add_metric([queue, state], counts[state])
        yield depth
        age = selectors.oldest_due_age()
        yield GaugeMetricFamily(
            "jobs_oldest_due_seconds",
            "Seconds the oldest due, unstarted job has waited",
            value=age.total_seconds() if age else 0.0,
        )
