"""jobs.broker.PostgresBroker on real PostgreSQL: order, concurrency, visibility, wake-ups."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from jobs.broker import PostgresBroker, channel_for, listen_connection_params, notify_queue

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def make_broker(backstop: float = 0.05, bulk: int = 1) -> PostgresBroker:
    broker = PostgresBroker(list_key="test-queue")
    broker.backstop = backstop
    broker.bulk = bulk
    return broker


def payload(n: int) -> str:
    return SignedPackage.dumps({"n": n})


def dequeue_ids(broker: PostgresBroker) -> list[int]:
    return [task_id for task_id, _ in broker.dequeue() or []]


@pytest.fixture
def broker():
    broker = make_broker()
    yield broker
    broker.close()


def test_settings_select_our_broker():
    assert isinstance(get_broker(), PostgresBroker)


def test_dequeue_returns_tasks_in_enqueue_order(broker):
    enqueued = [broker.enqueue(payload(n)) for n in range(5)]

    dequeued = []
    for _ in enqueued:
        dequeued += dequeue_ids(broker)

    assert dequeued == enqueued


def test_bulk_dequeue_returns_oldest_tasks_in_order(broker):
    enqueued = [broker.enqueue(payload(n)) for n in range(5)]
    broker.bulk = 3

    assert dequeue_ids(broker) == enqueued[:3]
    assert dequeue_ids(broker) == enqueued[3:]


def test_dequeue_returns_the_enqueued_payload(broker):
    broker.enqueue(payload(7))

    [(_, message)] = broker.dequeue()

    assert SignedPackage.loads(message) == {"n": 7}


def test_concurrent_dequeuers_never_get_the_same_task():
    enqueued = {make_broker().enqueue(payload(n)) for n in range(300)}
    taken: list[list[int]] = [[] for _ in range(4)]

    def drain(index: int) -> None:
        broker = make_broker(bulk=1 + index % 2)  # each has its own LISTEN/claim connection
        try:
            while ids := dequeue_ids(broker):
                taken[index] += ids
        finally:
            broker.close()
            connections.close_all()  # the broker's constructor opened this thread's own

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    every_take = [task_id for ids in taken for task_id in ids]
    assert len(every_take) == len(set(every_take))
    assert set(every_take) == enqueued
    assert sum(1 for ids in taken if ids) > 1  # they really ran side by side


def test_task_locked_into_the_future_stays_invisible_until_due(broker):
    delayed = OrmQ.objects.create(
        key=broker.list_key, payload=payload(1), lock=timezone.now() + timedelta(hours=1)
    )
    ready = broker.enqueue(payload(2))

    assert dequeue_ids(broker) == [ready]
    assert dequeue_ids(broker) == []
    assert broker.queue_size() == 0
    assert broker.lock_size() == 2  # the delayed one and the claimed one

    OrmQ.objects.filter(pk=delayed.pk).update(lock=timezone.now() - timedelta(seconds=1))
    assert dequeue_ids(broker) == [delayed.pk]


def test_waiting_dequeue_wakes_when_a_delayed_task_falls_due():
    broker = make_broker(backstop=30)
    try:
        due_at = timezone.now() + timedelta(seconds=0.3)
        delayed = OrmQ.objects.create(key=broker.list_key, payload=payload(1), lock=due_at)
        started = time.monotonic()

        assert dequeue_ids(broker) == [delayed.pk]
        assert timezone.now() >= due_at
        assert time.monotonic() - started < 10  # woke for the due row, not the 30 s backstop
    finally:
        broker.close()


def test_task_enqueued_in_a_rolled_back_transaction_is_never_seen(broker):
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as listener:
        listener.execute(f'LISTEN "{channel_for(broker.list_key)}"')
        with pytest.raises(Rollback), transaction.atomic():
            broker.enqueue(payload(1))
            raise Rollback

        assert list(listener.notifies(timeout=0.3)) == []
    assert dequeue_ids(broker) == []
    assert OrmQ.objects.count() == 0


def test_enqueue_notifies_only_on_commit(broker):
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as listener:
        listener.execute(f'LISTEN "{channel_for(broker.list_key)}"')
        with transaction.atomic():
            broker.enqueue(payload(1))
            assert list(listener.notifies(timeout=0.1)) == []

        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1


def test_claimed_but_unacknowledged_task_comes_back_after_retry(broker):
    task_id = broker.enqueue(payload(1))
    assert dequeue_ids(broker) == [task_id]
    claimed_until = OrmQ.objects.get(pk=task_id).lock
    assert timedelta(seconds=broker.retry - 5) < claimed_until - timezone.now()
    assert claimed_until - timezone.now() <= timedelta(seconds=broker.retry)
    assert dequeue_ids(broker) == []

    # The worker died without acknowledging; let the visibility timeout run out.
    OrmQ.objects.filter(pk=task_id).update(lock=claimed_until - timedelta(seconds=broker.retry))

    assert dequeue_ids(broker) == [task_id]


def test_acknowledged_task_is_gone(broker):
    task_id = broker.enqueue(payload(1))
    dequeue_ids(broker)

    broker.acknowledge(task_id)

    assert not OrmQ.objects.filter(pk=task_id).exists()


def test_notify_wakes_a_waiting_dequeue_before_its_backstop():
    waiting = make_broker(backstop=0)
    result: list[list[int]] = []
    try:
        waiting.dequeue()  # opens the LISTEN connection before the enqueue below
        waiting.backstop = 30
        thread = threading.Thread(target=lambda: result.append(dequeue_ids(waiting)))
        started = time.monotonic()
        thread.start()
        time.sleep(0.2)  # let it block on LISTEN
        task_id = make_broker().enqueue(payload(1))
        thread.join(timeout=30)

        assert result == [[task_id]]
        assert time.monotonic() - started < 10
    finally:
        waiting.close()


def test_notify_queue_wakes_a_waiting_dequeue_for_a_row_inserted_by_hand():
    waiting = make_broker(backstop=0)
    result: list[list[int]] = []
    try:
        waiting.dequeue()
        waiting.backstop = 30
        thread = threading.Thread(target=lambda: result.append(dequeue_ids(waiting)))
        started = time.monotonic()
        thread.start()
        time.sleep(0.2)
        with transaction.atomic():
            row = OrmQ.objects.create(key=waiting.list_key, payload=payload(1), lock=timezone.now())
            notify_queue(waiting.list_key)
        thread.join(timeout=30)

        assert result == [[row.pk]]
        assert time.monotonic() - started < 10
    finally:
        waiting.close()


def test_async_task_goes_through_our_broker(broker):
    async_task("math.floor", 1.5, broker=broker)

    [(_, message)] = broker.dequeue()

    assert SignedPackage.loads(message)["func"] == "math.floor"


def test_queue_admin_queries_work(broker):
    broker.enqueue(payload(1))
    broker.enqueue(payload(2))
    dequeue_ids(broker)

    assert broker.queue_size() == 1
    assert broker.lock_size() == 1
    assert "LISTEN/NOTIFY" in broker.info()
    assert broker.ping()
    broker.purge_queue()
    assert OrmQ.objects.count() == 0


def test_queued_tasks_admin_page_lists_our_rows(admin_client, broker):
    async_task("math.floor", 1.5, broker=broker)

    response = admin_client.get("/admin/django_q/ormq/")

    assert response.status_code == 200
    assert b"math.floor" in response.content


def test_dequeue_survives_a_lost_connection(broker):
    broker.enqueue(payload(1))
    broker.dequeue()
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'django_q pusher' AND datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    assert killed == [(True,)]
    task_id = broker.enqueue(payload(2))

    assert broker.dequeue() is None  # logged and backed off, not raised
    assert dequeue_ids(broker) == [task_id]


def test_heartbeat_is_saved_again_right_after_its_connection_dies(broker):
    broker.set_stat("django_q:test:heartbeat", "first", 30)
    backend_pid = connection.connection.info.backend_pid
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    broker.set_stat("django_q:test:heartbeat", "second", 30)

    assert broker.get_stat("django_q:test:heartbeat") == "second"


def test_acknowledge_inside_a_transaction_rolls_back_with_it(broker):
    task_id = broker.enqueue(payload(1))
    dequeue_ids(broker)

    with pytest.raises(Rollback), transaction.atomic():
        broker.acknowledge(task_id)
        assert not OrmQ.objects.filter(pk=task_id).exists()
        raise Rollback

    assert OrmQ.objects.filter(pk=task_id).exists()


def test_acknowledge_reconnects_after_its_connection_dies(broker):
    task_id = broker.enqueue(payload(1))
    dequeue_ids(broker)
    backend_pid = connection.connection.info.backend_pid
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    broker.acknowledge(task_id)

    assert not OrmQ.objects.filter(pk=task_id).exists()
