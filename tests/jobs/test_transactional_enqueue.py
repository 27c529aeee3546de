"""The webhook design rests on this: django-q2's ORM broker writes in our transaction."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_q.models import OrmQ
from django_q.tasks import async_task


class Rollback(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_a_rolled_back_transaction_is_never_queued():
    with pytest.raises(Rollback), transaction.atomic():
        async_task("math.floor", 1.5)
        assert OrmQ.objects.count() == 1  # visible inside the transaction
        raise Rollback

    assert OrmQ.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_a_committed_transaction_is_queued():
    with transaction.atomic():
        async_task("math.floor", 1.5)

    assert OrmQ.objects.count() == 1
