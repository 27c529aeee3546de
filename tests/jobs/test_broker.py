"""jobs.broker.JobsBroker on real PostgreSQL: the Job table is the queue django-q2 claims from.

Order, concurrency, delays to the millisecond, wake-ups on commit only, crashed attempts found
by their lease, a lost connection, and django-q2's scheduler enqueueing through us.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task
from django_tasks import task

from jobs.broker import JobsBroker, channel_for, listen_connection_params
from jobs.errors import JobNotRegistered
from jobs.models import Job, JobAttempt, WorkerCluster
from jobs.services import execute_batch
from tests.jobs.helpers import enqueue

pytestmark = pytest.mark.django_db(transaction=True)
QUEUE = "default"


@task(queue_name=QUEUE, max_attempts=2, timeout=10)
def noop(n: int = 0) -> int:
    return n


class Rollback(Exception):
    pass


def make_broker(backstop: float = 0.05, bulk: int = 1) -> JobsBroker:
    broker = JobsBroker(list_key=QUEUE)
    broker.backstop = backstop
    broker.bulk = bulk
    return broker


def add(n: int = 0, **options: object) -> int:
    return enqueue(noop, n=n, **options).pk


def attempts(package: str) -> list[dict]:
    """The claimed attempts a django-q2 task of ours runs (one, or a batch)."""
    task = SignedPackage.loads(package)
    assert task["func"] == "jobs.services.execute_batch"
    return task["args"][0]


def claimed(broker: JobsBroker) -> list[int]:
    return [claim["id"] for _, package in broker.dequeue() or [] for claim in attempts(package)]


@pytest.fixture
def broker():
    broker = make_broker()
    yield broker
    broker.close()


def test_settings_select_our_broker():
    assert isinstance(get_broker(), JobsBroker)


def test_claims_come_in_run_at_then_id_order(broker):
    now = timezone.now()
    later = add(1, run_at=now - timedelta(seconds=1))
    first = add(2, run_at=now - timedelta(seconds=5))
    same_instant = [add(n, run_at=now - timedelta(seconds=3)) for n in range(3)]

    taken = []
    while ids := claimed(broker):
        taken += ids

    assert taken == [first, *same_instant, later]


def test_bulk_claim_returns_the_oldest_jobs_in_order(broker):
    enqueued = [add(n) for n in range(5)]
    broker.bulk = 3

    assert claimed(broker) == enqueued[:3]
    assert claimed(broker) == enqueued[3:]


def test_claim_marks_the_job_running_with_its_attempt_and_lease(broker):
    job_id = add()

    [(_, package)] = broker.dequeue()

    job = Job.objects.get(pk=job_id)
    assert job.status == "running" and job.attempts == 1
    lease = timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    assert lease - timedelta(seconds=2) < job.run_at - timezone.now() <= lease
    task = SignedPackage.loads(package)
    assert task["func"] == "jobs.services.execute_batch"
    assert task["args"][0][0]["id"] == job_id and task["args"][0][0]["attempt"] == 1


def test_a_bulk_claim_is_one_task_that_runs_its_jobs_in_order(broker):
    enqueued = [add(n) for n in range(3)]
    broker.bulk = 3

    [(_, package)] = broker.dequeue()

    task = SignedPackage.loads(package)
    assert task["func"] == "jobs.services.execute_batch"
    assert task["timeout"] == 30  # each job's 10 s
    assert execute_batch(*task["args"]) == ["succeeded"] * 3
    assert list(JobAttempt.objects.order_by("finished_at").values_list("job_id", flat=True)) == (
        enqueued
    )


def test_a_batch_stops_where_its_leases_would_pass_the_batch_limit(broker, settings):
    settings.JOBS_BATCH_SECONDS = 25
    enqueued = [add(n) for n in range(4)]  # 10 s each
    broker.bulk = 4

    assert claimed(broker) == enqueued[:2]
    assert claimed(broker) == enqueued[2:]


def test_every_job_of_a_batch_has_the_short_lease_its_holder_renews(broker):
    enqueued = [add(n) for n in range(3)]
    broker.bulk = 3
    before = timezone.now()

    broker.dequeue()

    leases = [(Job.objects.get(pk=pk).run_at - before).total_seconds() for pk in enqueued]
    assert [round(lease) for lease in leases] == [round(settings.JOBS_LEASE_SECONDS)] * 3


def test_a_claimed_job_runs_and_finishes_with_nothing_but_the_job_tables(broker):
    job_id = add(7)
    [(_, package)] = broker.dequeue()
    task = SignedPackage.loads(package)

    assert execute_batch(*task["args"]) == ["succeeded"]

    assert Job.objects.get(pk=job_id).status == "succeeded"
    [attempt] = JobAttempt.objects.filter(job_id=job_id)
    assert attempt.outcome == "succeeded" and attempt.number == 1
    assert OrmQ.objects.count() == 0


def test_concurrent_claimers_never_get_the_same_job():
    enqueued = {add(n) for n in range(300)}
    taken: list[list[int]] = [[] for _ in range(4)]

    def drain(index: int) -> None:
        broker = make_broker(bulk=1 + index % 2)  # each has its own LISTEN/claim connection
        try:
            while ids := claimed(broker):
                taken[index] += ids
        finally:
            broker.close()
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    every_take = [job_id for ids in taken for job_id in ids]
    assert len(every_take) == len(set(every_take))
    assert set(every_take) == enqueued
    assert sum(1 for ids in taken if ids) > 1  # they really ran side by side


def test_delayed_job_stays_invisible_until_due(broker):
    delayed = add(1, run_at=timezone.now() + timedelta(hours=1))
    ready = add(2)

    assert claimed(broker) == [ready]
    assert claimed(broker) == []
    assert broker.queue_size() == 0
    assert broker.lock_size() == 1

    Job.objects.filter(pk=delayed).update(run_at=timezone.now() - timedelta(seconds=1))
    assert claimed(broker) == [delayed]


def test_waiting_claimer_starts_a_delayed_job_at_its_instant_not_at_the_backstop():
    broker = make_broker(backstop=0)
    try:
        broker.dequeue()  # learns that nothing is scheduled
        broker.backstop = 30
        due_at = timezone.now() + timedelta(seconds=0.3)
        job_id = add(1, run_at=due_at)  # its NOTIFY carries the run_at: a timer, not a claim
        started = time.monotonic()

        assert claimed(broker) == [job_id]
        assert timezone.now() >= due_at
        assert time.monotonic() - started < 5  # woke for the run_at, not the 30 s backstop
    finally:
        broker.close()


def test_job_enqueued_in_a_rolled_back_transaction_is_never_seen(broker):
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as listener:
        listener.execute(f'LISTEN "{channel_for(QUEUE)}"')
        with pytest.raises(Rollback), transaction.atomic():
            add(1)
            raise Rollback

        assert list(listener.notifies(timeout=0.3)) == []
    assert claimed(broker) == []
    assert Job.objects.count() == 0


def test_enqueue_notifies_only_on_commit():
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as listener:
        listener.execute(f'LISTEN "{channel_for(QUEUE)}"')
        with transaction.atomic():
            add(1)
            assert list(listener.notifies(timeout=0.1)) == []

        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1


def test_notify_wakes_a_waiting_claimer_before_its_backstop():
    waiting = make_broker(backstop=0)
    result: list[list[int]] = []
    try:
        waiting.dequeue()  # opens the LISTEN connection before the enqueue below
        waiting.backstop = 30
        thread = threading.Thread(target=lambda: result.append(claimed(waiting)))
        started = time.monotonic()
        thread.start()
        time.sleep(0.2)  # let it block on LISTEN
        job_id = add(1)
        thread.join(timeout=30)

        assert result == [[job_id]]
        assert time.monotonic() - started < 5
    finally:
        waiting.close()


def test_crashed_attempt_is_found_by_its_expired_lease_in_the_claim(broker):
    job_id = add()
    assert claimed(broker) == [job_id]
    assert claimed(broker) == []  # running, lease ahead

    # The worker died: nobody finishes the attempt, and its lease runs out.
    Job.objects.filter(pk=job_id).update(run_at=timezone.now() - timedelta(seconds=1))
    [(_, package)] = broker.dequeue()

    job = Job.objects.get(pk=job_id)
    assert job.attempts == 2 and job.status == "running"
    [crash] = JobAttempt.objects.filter(job_id=job_id)
    assert crash.number == 1 and crash.outcome == "crashed"
    assert execute_batch(*SignedPackage.loads(package)["args"]) == ["succeeded"]
    assert Job.objects.get(pk=job_id).status == "succeeded"


def test_a_crash_of_the_last_attempt_buries_the_job_without_running_it(broker):
    job_id = add()
    claimed(broker)
    for _ in range(2):  # max_attempts=2: both attempts die
        Job.objects.filter(pk=job_id).update(run_at=timezone.now() - timedelta(seconds=1))
        [(_, package)] = broker.dequeue()

    assert execute_batch(*SignedPackage.loads(package)["args"]) == ["dead"]

    job = Job.objects.get(pk=job_id)
    assert job.status == "dead" and job.attempts == 2
    assert "worker died during attempt 2" in job.last_error
    assert list(
        JobAttempt.objects.filter(job_id=job_id).order_by("number").values_list("outcome")
    ) == [("crashed",), ("crashed",)]


def test_acknowledge_and_fail_change_nothing(broker):
    job_id = add()
    claimed(broker)

    broker.acknowledge(job_id)
    broker.fail(job_id)

    assert Job.objects.get(pk=job_id).status == "running"


def test_a_django_q_task_of_a_job_type_becomes_a_job(broker):
    async_task("tests.jobs.test_broker.noop", broker=broker, q_options={"group": "periodic:x"})

    [job] = Job.objects.all()
    assert job.name == "tests.jobs.test_broker.noop" and job.queue == QUEUE
    assert OrmQ.objects.count() == 0


def test_a_scheduled_run_is_one_job_however_often_it_is_enqueued(broker):
    for _ in range(3):
        async_task(
            "tests.jobs.test_broker.noop",
            scheduled_for="2026-12-01T10:00:00+00:00",
            broker=broker,
            q_options={"group": "periodic:tests.jobs.test_broker.noop"},
        )

    assert Job.objects.count() == 1


def test_a_django_q_task_that_is_not_a_job_type_is_refused(broker):
    with pytest.raises(JobNotRegistered):
        async_task("math.floor", 1.5, broker=broker)

    assert Job.objects.count() == 0 and OrmQ.objects.count() == 0


def test_claiming_writes_the_clusters_heartbeat(broker):
    broker.dequeue()

    [cluster] = WorkerCluster.objects.all()
    assert cluster.queue == QUEUE
    assert timezone.now() - cluster.seen_at < timedelta(seconds=5)


def test_queue_admin_queries_work(broker):
    add(1)
    add(2)
    claimed(broker)

    assert broker.queue_size() == 1
    assert broker.lock_size() == 1
    assert "LISTEN/NOTIFY" in broker.info()
    assert broker.ping()


def test_dequeue_survives_a_lost_connection(broker):
    add(1)
    broker.dequeue()
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'jobs claimer' AND datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    assert killed == [(True,)]
    job_id = add(2)

    assert broker.dequeue() is None  # logged and backed off, not raised
    assert claimed(broker) == [job_id]


def test_heartbeat_is_saved_again_right_after_its_connection_dies(broker):
    broker.set_stat("django_q:test:heartbeat", "first", 30)
    backend_pid = connection.connection.info.backend_pid
    with psycopg.connect(**listen_connection_params(Conf.ORM)) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    broker.set_stat("django_q:test:heartbeat", "second", 30)

    assert broker.get_stat("django_q:test:heartbeat") == "second"


def test_a_crashed_attempt_is_claimed_before_the_waiting_backlog(broker):
    crashed = add()
    assert claimed(broker) == [crashed]
    backlog = [add(n, run_at=timezone.now() - timedelta(minutes=5)) for n in range(3)]

    # Its holder died: the lease passes while older waiting jobs are still due.
    Job.objects.filter(pk=crashed).update(run_at=timezone.now() - timedelta(seconds=1))

    assert claimed(broker) == [crashed]
    assert claimed(broker) == backlog[:1]


def test_a_worker_taking_over_a_batch_skips_an_attempt_another_cluster_claimed(broker):
    job_id = add()
    [(_, stale)] = broker.dequeue()
    # The batch waited past its lease (its claimer died) and another cluster claimed the job.
    Job.objects.filter(pk=job_id).update(run_at=timezone.now() - timedelta(seconds=1))
    other = make_broker()
    [(_, fresh)] = other.dequeue()
    other.close()

    assert execute_batch(*SignedPackage.loads(stale)["args"]) == ["lost"]
    assert Job.objects.get(pk=job_id).attempts == 2
    assert execute_batch(*SignedPackage.loads(fresh)["args"]) == ["succeeded"]


@task(queue_name=QUEUE, max_attempts=2, timeout=10, atomic=False)
def send_once(path: str) -> None:
    """A side effect that no rollback undoes (a mail sent): it notes when it happened."""
    with open(path, "a") as handle:
        handle.write(f"{time.time()}\n")


@task(queue_name=QUEUE, max_attempts=2, timeout=10)
def create_user(username: str) -> None:
    from django.contrib.auth.models import User

    User.objects.create(username=username)


def stale_and_fresh(broker, job_id: int) -> tuple[list[dict], list[dict]]:
    """The batch a cluster claimed, left waiting past its lease, and the batch another cluster
    claimed the job in meanwhile."""
    [(_, stale)] = broker.dequeue()
    Job.objects.filter(pk=job_id).update(run_at=timezone.now() - timedelta(seconds=1))
    other = make_broker()
    [(_, fresh)] = other.dequeue()
    other.close()
    return SignedPackage.loads(stale)["args"][0], SignedPackage.loads(fresh)["args"][0]


def test_an_atomic_job_of_a_lost_attempt_started_before_the_take_over_is_rolled_back(broker):
    from django.contrib.auth.models import User

    from jobs.services import TakeOver, execute

    job_id = enqueue(create_user, username="once").pk
    stale, _ = stale_and_fresh(broker, job_id)

    # The keeper has not written the take-over yet: the job starts, its success is refused.
    assert execute(stale[0], TakeOver(stale)) == "lost"
    assert not User.objects.filter(username="once").exists()
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts) == ("running", 2)  # the other cluster's attempt
    assert not JobAttempt.objects.filter(job_id=job_id, outcome="failed").exists()


def test_a_non_atomic_job_of_a_lost_attempt_never_starts(broker, tmp_path):
    marker = tmp_path / "sent"
    job_id = enqueue(send_once, path=str(marker)).pk
    stale, fresh = stale_and_fresh(broker, job_id)

    assert execute_batch(stale) == ["lost"]
    assert not marker.exists()
    assert execute_batch(fresh) == ["succeeded"]
    assert len(marker.read_text().split()) == 1


def test_a_non_atomic_job_starts_only_once_its_take_over_is_written(broker, tmp_path):
    from jobs.services import TakeOver, execute

    marker = tmp_path / "sent"
    job_id = enqueue(send_once, path=str(marker)).pk
    [(_, package)] = broker.dequeue()
    batch = SignedPackage.loads(package)["args"][0]
    take_over = TakeOver(batch)
    finished = []

    def write_it_late() -> None:
        time.sleep(0.2)
        finished.append(time.time())
        take_over.finish({job_id})

    threading.Thread(target=write_it_late).start()
    assert execute(batch[0], take_over) == "succeeded"
    [sent] = marker.read_text().split()
    assert float(sent) >= finished[0]


def test_the_worker_process_that_takes_a_batch_over_writes_its_name_on_it(broker):
    job_id = add()
    [(_, package)] = broker.dequeue()
    assert "@" in Job.objects.get(pk=job_id).worker  # the claiming cluster's pusher

    from jobs.services import KEEPER

    assert KEEPER.take_over(SignedPackage.loads(package)["args"][0]).settle()
    KEEPER.release_all()

    assert Job.objects.get(pk=job_id).worker.endswith(f":{os.getpid()}")
