"""Alerts when a job goes dead: mail to ADMINS (through anymail) and a Slack-compatible post.

A storm of failures sends one alert for the first death, then one summary per window
(``ALERT_WINDOW_SECONDS``), never hundreds. The window is a row updated under a row lock, so
every web and worker process shares it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import Count
from django.dispatch import receiver
from django.template.defaultfilters import pluralize
from django.utils import timezone

from jobs import signals
from jobs.backend import task_named
from jobs.models import AlertWindow, Job

logger = logging.getLogger(__name__)
ALERT_JOBS = ("jobs.tasks.alert_dead_job", "jobs.tasks.alert_summary")


@receiver(signals.job_dead)
def on_job_dead(sender: str, job: Job, **kwargs: object) -> None:
    """Alert at once for the first death of a window; later ones wait for the summary."""
    if job.name in ALERT_JOBS:  # an alert that cannot be sent must not alert about itself
        return
    now = timezone.now()
    with transaction.atomic():
        window, _ = AlertWindow.objects.select_for_update().get_or_create(
            key="job_dead", defaults={"started_at": now, "ends_at": now}
        )
        if window.ends_at > now:
            return  # inside a window: the summary at its end will count this one
        window.started_at = now
        window.ends_at = now + timedelta(seconds=settings.ALERT_WINDOW_SECONDS)
        window.first_job = job
        window.save()
        # By name: jobs.tasks imports this module.
        alert_dead_job, alert_summary = (task_named(name) for name in ALERT_JOBS)
        alert_dead_job.using(target=f"jobs.job:{job.pk}").enqueue(job_id=job.pk)
        alert_summary.using(
            run_after=window.ends_at,
            unique_key=f"alert-summary:{window.started_at.isoformat()}",
        ).enqueue(started_at=window.started_at.isoformat(), first_job_id=job.pk)


def send_alert(subject: str, lines: list[str]) -> None:
    """Mail the ADMINS and post to ALERT_WEBHOOK_URL when set. Raises so the job retries."""
    body = "\n".join(lines)
    sent_to = []
    if settings.ADMINS:
        mail_admins(subject, body, fail_silently=False)
        sent_to.append("ADMINS by mail")
    if settings.ALERT_WEBHOOK_URL:
        response = httpx.post(
            settings.ALERT_WEBHOOK_URL, json={"text": f"*{subject}*\n{body}"}, timeout=10
        )
        response.raise_for_status()
        sent_to.append("ALERT_WEBHOOK_URL")
    if sent_to:
        logger.warning("alert sent to %s: %s", " and ".join(sent_to), subject)
    else:
        logger.warning("alert not sent (set ADMINS or ALERT_WEBHOOK_URL): %s", subject)


def dead_job_lines(job: Job) -> list[str]:
    return [
        f"Job #{job.pk} {job.name} ({job.target or 'no target'}) is dead after "
        f"{job.attempts} attempt{pluralize(job.attempts)}.",
        f"Last error: {job.last_error}",
        "Inspect and replay it in the admin: Dead letters.",
    ]


def summary_lines(started_at: str, first_job_id: int) -> list[str]:
    """The deaths of a window after its first one, counted by job type; empty when none."""
    more = (
        Job.objects.filter(status="dead", finished_at__gte=started_at)
        .exclude(pk=first_job_id)
        .exclude(name__in=ALERT_JOBS)
        .values("name")
        .annotate(count=Count("pk"))
        .order_by("-count")
    )
    return [f"{row['count']} x {row['name']}" for row in more]
