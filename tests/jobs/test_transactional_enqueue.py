"""The webhook design rests on this: a job is a row written in the caller's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from jobs.models import Job
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue


class Rollback(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_in_a_rolled_back_transaction_is_never_queued():
    with pytest.raises(Rollback), transaction.atomic():
        enqueue(sample_jobs.flaky, fails=0)
        assert Job.objects.count() == 1  # visible inside the transaction
        raise Rollback

    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_in_a_committed_transaction_is_queued():
    with transaction.atomic():
        enqueue(sample_jobs.flaky, fails=0)

    assert Job.objects.get().status == "queued"
