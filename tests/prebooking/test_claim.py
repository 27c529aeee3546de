"""Exactly once: racing workers, each on its own PostgreSQL connection, claim a prebooking once."""

from __future__ import annotations

import threading

import pytest
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
def test_two_racing_workers_fire_each_prebooking_once(make_prebooking):
    ids = [make_prebooking(opens_in=3600, class_id="race").pk for _ in range(50)]

    first, second = _race(services.claim_for_firing, ids, timezone.now())

    assert first | second == set(ids)
    assert first & second == set()
    assert set(Prebooking.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db(transaction=True)
def test_two_racing_workers_arm_each_prebooking_once(make_prebooking):
    ids = {make_prebooking(opens_in=60, class_id="race").pk for _ in range(50)}
    until = timezone.now() + timezone.timedelta(seconds=120)

    first, second = _race(services.claim_for_arming, until)

    first_ids, second_ids = {shot.id for shot in first}, {shot.id for shot in second}
    assert first_ids | second_ids == ids
    assert first_ids & second_ids == set()


@pytest.mark.django_db(transaction=True)
def test_a_replayed_claim_finds_nothing_to_fire(make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    services.claim_for_firing([prebooking.pk], timezone.now())

    assert services.claim_for_firing([prebooking.pk], timezone.now()) == set()
