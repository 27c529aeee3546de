"""Exactly once: racing workers, each on its own PostgreSQL connection, claim a prebooking once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from prebooking import services
from prebooking.models import Prebooking


def _race(function, *args) -> list:
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def worker(slot: int) -> None:
        try:
            barrier.wait()
            results[slot] = function(*args)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_racing_workers_fire_each_prebooking_once(make_prebooking, settings):
    settings.PREBOOKING_MAX_PENDING = 50  # one member holds them all
    ids = [make_prebooking(opens_in=3600, class_id="race").pk for _ in range(50)]

    first, second = _race(services.claim_for_firing, ids, timezone.now())

    assert first | second == set(ids)
    assert first & second == set()
    assert set(Prebooking.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db(transaction=True)
def test_one_armer_owns_an_instant_and_the_other_gets_it_only_when_released(make_prebooking):
    prebooking = make_prebooking(opens_in=60, class_id="race")
    instant = prebooking.opens_at
    order: list[str] = []
    owned = threading.Event()

    def first() -> None:
        try:
            assert services.own_instant(instant, until=timezone.now() + timedelta(seconds=10))
            order.append("first owns")
            owned.set()
            time.sleep(0.3)
            order.append("first releases")
            services.release_instant(instant)
        finally:
            connection.close()

    def second() -> None:
        try:
            owned.wait(5)
            assert services.own_instant(instant, until=timezone.now() + timedelta(seconds=10))
            order.append("second owns")
            services.release_instant(instant)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    assert order == ["first owns", "first releases", "second owns"]


@pytest.mark.django_db(transaction=True)
def test_a_standby_gives_up_when_the_window_closes_first(make_prebooking):
    instant = make_prebooking(opens_in=60).opens_at
    assert services.own_instant(instant, until=timezone.now() + timedelta(seconds=5))

    def second() -> bool:
        try:
            return services.own_instant(instant, until=timezone.now() + timedelta(seconds=0.2))
        finally:
            connection.close()

    [result] = _race_one(second)

    assert result is False
    services.release_instant(instant)


def _race_one(function) -> list:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join(10)
    return result


@pytest.mark.django_db(transaction=True)
def test_a_replayed_claim_finds_nothing_to_fire(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    services.claim_for_firing([prebooking.pk], timezone.now())

    assert services.claim_for_firing([prebooking.pk], timezone.now()) == set()


@pytest.mark.django_db
def test_claims_stamp_the_applications_clock_which_the_sweep_compares_against(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    moment = timezone.now() + timedelta(days=3)  # far from the database server's own clock

    with time_machine.travel(moment, tick=False):
        armed = services.claim_for_arming(prebooking.opens_at)
        services.claim_for_firing([prebooking.pk], prebooking.opens_at)

    prebooking.refresh_from_db()
    assert [shot.id for shot in armed] == [prebooking.pk]
    assert prebooking.armed_at == moment
    assert prebooking.attempted_at == moment
