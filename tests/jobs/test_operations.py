"""/readyz, /metrics, dead-job alerts and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from jobs.models import Job, WorkerCluster
from jobs.tasks import prune
from jobs.testing import run_due_jobs
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def heartbeat(queue: str, seconds_ago: float, pid: int = 4242) -> None:
    """A worker cluster's heartbeat row, as a running jobs_worker writes it."""
    now = timezone.now()
    WorkerCluster.objects.update_or_create(
        host="test-host",
        pid=pid,
        defaults={
            "name": queue,
            "queue": queue,
            "workers": 2,
            "started_at": now - timedelta(minutes=5),
            "seen_at": now - timedelta(seconds=seconds_ago),
        },
    )


@pytest.fixture
def cluster_heartbeat():
    heartbeat("default", 0)


def test_readyz_names_the_queue_whose_due_work_has_no_live_worker(client):
    heartbeat("timing", 0, pid=1)  # another queue's cluster is alive: it does not count
    heartbeat("default", 30, pid=2)  # the default queue's stopped beating 30 s ago
    with time_machine.travel(timezone.now() - timedelta(seconds=10)):
        enqueue(sample_jobs.flaky, fails=0)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    [reason] = response.json()["reasons"]
    # Unattended since its last worker's heartbeat (30 s), later than the work fell due (10 s).
    assert reason.startswith("queue 'default' has had due work and no live worker for 10 s")
    assert "its last worker was seen 30 s ago" in reason


def test_readyz_says_how_long_a_queue_without_any_worker_has_waited(client):
    with time_machine.travel(timezone.now() - timedelta(seconds=95)):
        enqueue(sample_jobs.flaky, fails=0)

    [reason] = client.get("/readyz").json()["reasons"]

    assert "no live worker for 95 s (no worker of it seen in the last day)" in reason


def test_a_degraded_readyz_is_logged_once_at_warning_not_as_an_error_per_probe(client, caplog):
    from ops.views import READINESS_LOG

    READINESS_LOG.kinds = frozenset()  # another test's probe may have left this process degraded
    with time_machine.travel(timezone.now() - timedelta(seconds=60)):
        enqueue(sample_jobs.flaky, fails=0)

    with caplog.at_level("INFO"):
        statuses = [client.get("/readyz").status_code for _ in range(3)]

    assert statuses == [503, 503, 503]
    records = [r for r in caplog.records if r.name in ("ops.views", "django.request")]
    assert [(r.levelname, r.name) for r in records] == [("WARNING", "ops.views")]
    assert "queue 'default' has had due work and no live worker for 60 s" in records[0].getMessage()
    heartbeat("default", 0)
    with caplog.at_level("INFO"):
        assert client.get("/readyz").status_code == 200
    assert caplog.records[-1].getMessage() == "ready again"


def test_readyz_gives_a_queue_a_few_seconds_before_it_counts(client):
    enqueue(sample_jobs.flaky, fails=0)  # due just now, and no cluster at all yet

    assert client.get("/readyz").status_code == 200


def test_readyz_is_ok_with_a_cluster_and_small_backlog(client, cluster_heartbeat):
    with time_machine.travel(timezone.now() - timedelta(seconds=10)):
        enqueue(sample_jobs.flaky, fails=0)

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def test_dashboard_lists_clusters_by_name_and_queue(admin_client, cluster_heartbeat):
    response = admin_client.get("/admin/dashboard/")

    assert response.status_code == 200
    assert b"<td>default</td><td>default</td><td>test-host (4242)</td><td>2</td>" in (
        response.content
    )


def test_dashboard_shows_a_stale_cluster_as_stale_instead_of_dropping_it(admin_client):
    heartbeat("default", 42)

    body = admin_client.get("/admin/dashboard/").content.decode()

    assert "test-host (4242)" in body
    assert "<strong>stale</strong>: last seen 42 s ago" in body
    assert "No worker cluster alive" in body


def test_readyz_is_degraded_when_the_backlog_is_too_big(client, cluster_heartbeat, settings):
    settings.READY_MAX_BACKLOG = 3
    for _ in range(3):
        enqueue(sample_jobs.flaky, fails=0)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert "backlog of 3 due jobs" in response.json()["reasons"][0]


def test_metrics_exposes_queue_depth_and_attempts(client):
    enqueue(sample_jobs.refuses)
    run_due_jobs()
    enqueue(sample_jobs.flaky, fails=0)

    body = client.get("/metrics").content.decode()

    assert 'jobs_queue_depth{queue="default",state="dead"} 1.0' in body
    assert 'jobs_queue_depth{queue="default",state="waiting"} 1.0' in body
    assert 'jobs_dead_total{job="tests.jobs.sample_jobs.refuses"}' in body
    assert "jobs_oldest_due_seconds" in body


def test_a_job_waiting_to_retry_counts_as_failed_not_delayed(client):
    enqueue(sample_jobs.flaky, fails=1)
    run_due_jobs()  # attempt 1 fails; attempt 2 is due in a minute
    enqueue(sample_jobs.flaky, fails=0, run_at=timezone.now() + timedelta(hours=1))

    body = client.get("/metrics").content.decode()

    assert 'jobs_queue_depth{queue="default",state="failed"} 1.0' in body
    assert 'jobs_queue_depth{queue="default",state="delayed"} 1.0' in body


def test_metrics_require_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_a_storm_of_dead_jobs_sends_one_alert_then_one_summary(
    settings, django_capture_on_commit_callbacks
):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ALERT_WINDOW_SECONDS = 300
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        for _ in range(50):
            enqueue(sample_jobs.refuses)
        run_due_jobs()
    with time_machine.travel(T0, tick=False):
        run_due_jobs()  # the immediate alert
    assert len(mail.outbox) == 1
    assert "Dead job: tests.jobs.sample_jobs.refuses" in mail.outbox[0].subject

    with time_machine.travel(T0 + timedelta(seconds=301), tick=False):
        run_due_jobs()  # the window's summary

    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject.endswith("49 more jobs went dead")
    assert "49 x tests.jobs.sample_jobs.refuses" in mail.outbox[1].body


def test_pruning_deletes_old_finished_jobs_and_keeps_dead_ones(settings):
    with time_machine.travel(T0, tick=False):
        done = enqueue(sample_jobs.flaky, fails=0)
        dead = enqueue(sample_jobs.refuses)
        run_due_jobs()
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        recent = enqueue(sample_jobs.flaky, fails=0)
        run_due_jobs()

    with time_machine.travel(T0 + timedelta(hours=25), tick=False):
        result = prune.call()

    assert result["succeeded"] == 1
    assert not Job.objects.filter(pk=done.pk).exists()
    assert Job.objects.filter(pk=recent.pk).exists()  # younger than 24 h

    with time_machine.travel(T0 + timedelta(days=365), tick=False):
        prune.call()
    assert Job.objects.filter(pk=dead.pk, status="dead").exists()  # unresolved: never pruned


def test_metrics_count_requests_by_route_and_status(client):
    client.get("/healthz")

    body = client.get("/metrics").content.decode()

    assert 'http_requests_total{route="healthz",status="200"}' in body
    assert 'http_request_duration_seconds_bucket{le="0.005",route="healthz"}' in body
