"""What a dead-job alert says, and what the log says about where it went."""

from __future__ import annotations

import logging

from jobs.alerts import dead_job_lines, send_alert
from jobs.models import Job


def test_an_alert_with_nowhere_to_go_is_logged_as_not_sent(settings, caplog):
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = ""
    with caplog.at_level(logging.WARNING, logger="jobs.alerts"):
        send_alert("Dead job: tests.refuses", ["why"])

    assert "alert not sent (set ADMINS or ALERT_WEBHOOK_URL): Dead job" in caplog.text
    assert "alert sent" not in caplog.text


def test_an_alert_mailed_to_the_admins_is_logged_with_where_it_went(settings, caplog, mailoutbox):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.ALERT_WEBHOOK_URL = ""
    with caplog.at_level(logging.WARNING, logger="jobs.alerts"):
        send_alert("Dead job: tests.refuses", ["why"])

    assert len(mailoutbox) == 1
    assert "alert sent to ADMINS by mail: Dead job" in caplog.text


def test_a_job_dead_after_one_attempt_says_one_attempt():
    job = Job(pk=7, name="tests.refuses", attempts=1, last_error="ValueError: no")

    assert "is dead after 1 attempt." in dead_job_lines(job)[0]
    job.attempts = 3
    assert "is dead after 3 attempts." in dead_job_lines(job)[0]
