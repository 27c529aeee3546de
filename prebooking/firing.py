"""Firing at the instant: what a timing worker does between arming and the provider's answers.

arm_instant() (the prebooking.arm job, two per instant) owns one instant through an advisory
lock, takes its pending prebookings, opens the provider connections a few seconds before it,
claims the group (pending -> firing, one UPDATE) just before it, sleeps precisely until the
instant and writes the requests in creation order from one thread; answers are read and retried
concurrently afterwards.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from prebooking import services
from prebooking.providers import get_provider, prepare_seconds
from prebooking.providers.base import BOOKED, NOT_OPEN, REJECTED, RETRY, WAITLISTED, BookingResult
from prebooking.services import Shot

log = logging.getLogger(__name__)
# sleep_until busy-waits this last stretch: a sleeping thread wakes up to a millisecond late.
SPIN_SECONDS = 0.002
# An armer takes prebookings created for its instant at least this often while it waits...
ARMING_POLL_SECONDS = 1.0
# ...and every PREPARING_POLL_SECONDS once their connections are being prepared, waking
# FINAL_WAKE_SECONDS before the instant at the latest; a prebooking created later than
# LAST_TAKE_SECONDS before it is sent one by one, not with the group.
PREPARING_POLL_SECONDS = 0.5
FINAL_WAKE_SECONDS = 0.25
LAST_TAKE_SECONDS = 0.3
PREPARE_SLACK_SECONDS = 0.05  # the waiting loop stops sleeping this close to preparation time
# Threads that read answers and retry: one per request of the largest instant we expect.
RECEIVER_THREADS = 200
# While an instant fires, a thread waiting for the GIL gets it within this (Python's default
# switch interval is 5 ms): other threads write outcomes and read answers meanwhile.
FIRING_SWITCH_INTERVAL = 0.0005
# Network errors and 5xx are retried after 0.25 s, doubling, at most 5 s apart.
RETRY_FIRST_DELAY, RETRY_MAX_DELAY = 0.25, 5.0


def sleep_until(deadline: float) -> None:
    """Sleep until the wall-clock `deadline` (epoch seconds): coarse sleep, then a short spin."""
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            return
        if remaining > SPIN_SECONDS:
            time.sleep(remaining - SPIN_SECONDS)


@contextmanager
def realtime_priority():
    """Run the send burst under SCHED_FIFO when allowed (root or CAP_SYS_NICE).

    On a busy machine the scheduler preempts the sending thread in favour of whatever else
    runs (the gym answering the first requests, other workers), spreading a 100-request burst
    over tens of milliseconds, and wakes a sleeping thread late. A few hundred milliseconds of
    real-time priority, nearly all asleep, keep it together.
    """
    previous = None
    if settings.PREBOOKING_REALTIME_SEND and hasattr(os, "SCHED_FIFO"):
        try:
            previous = os.sched_getscheduler(0), os.sched_getparam(0)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError:  # not permitted here: run at normal priority
            previous = None
    try:
        yield
    finally:
        if previous is not None:
            os.sched_setscheduler(0, *previous)


def retry_delay(result: BookingResult, attempts: int, opens_at: float, now: float) -> float | None:
    """Seconds to wait before the next attempt, or None when the answer is final.

    Business answers are final. "Not open yet" is retried every
    PREBOOKING_NOT_OPEN_RETRY_INTERVAL_MS (100) during the first seconds: our clock and the
    gym's differ, and arrival targeting may still be a few milliseconds early. Network
    errors and 5xx back off briefly, and never past the retry window: a booking made late is
    worse than a clear failure.
    """
    if result.outcome not in (NOT_OPEN, RETRY):  # booked, refused, waitlisted: final
        return None
    if result.outcome == NOT_OPEN:
        delay = settings.PREBOOKING_NOT_OPEN_RETRY_INTERVAL_MS / 1000
        limit = opens_at + settings.PREBOOKING_NOT_OPEN_RETRY_SECONDS
    else:
        delay = min(RETRY_FIRST_DELAY * 2 ** (attempts - 1), RETRY_MAX_DELAY)
        limit = opens_at + settings.PREBOOKING_RETRY_WINDOW
    return delay if now + delay < limit else None


def give_up_reason(result: BookingResult) -> str:
    if result.outcome == WAITLISTED:
        return (
            "The class was full: you are on its waiting list, and the gym gives you the place "
            "if one frees up."
        )
    if result.outcome == REJECTED:
        return f"The gym refused: {result.reason}."
    if result.outcome == NOT_OPEN:
        return (
            f"Booking was still not open {settings.PREBOOKING_NOT_OPEN_RETRY_SECONDS} s "
            "after the opening time."
        )
    return f"Gave up when the retry window closed; last error: {result.reason}."


def settle(shot: Shot, result: BookingResult, attempts: int, on_attempt) -> tuple:
    """Retry `shot` until the answer is final or its window closes; returns (result, attempts)."""
    opens = shot.opens_at.timestamp()
    provider = get_provider(shot.provider)
    while (delay := retry_delay(result, attempts, opens, time.time())) is not None:
        time.sleep(delay)
        attempts += 1
        on_attempt(shot.id, attempts)
        result = provider.book(shot.payload, shot.key)
    return result, attempts


def _finish(shot: Shot, result: BookingResult, sent: float, attempts: int) -> None:
    reason = "" if result.outcome == BOOKED else give_up_reason(result)
    fired_at = datetime.fromtimestamp(sent, tz=UTC)
    services.finish(shot.id, result, fired_at, attempts, reason)


class Writer(threading.Thread):
    """Writes outcomes through one database connection, off the firing thread's path."""

    def __init__(self) -> None:
        super().__init__(name="prebooking-writer", daemon=True)
        self.inbox: queue.Queue = queue.Queue()

    def run(self) -> None:
        try:
            while (item := self.inbox.get()) is not None:
                kind, args = item
                try:
                    if kind == "attempt":
                        services.record_attempt(*args)
                    else:
                        _finish(*args)
                except Exception:
                    log.exception("could not record %s for prebooking %s", kind, args[0])
        finally:
            connection.close()

    def attempt(self, prebooking_id: int, attempts: int) -> None:
        self.inbox.put(("attempt", (prebooking_id, attempts)))

    def finish(self, shot: Shot, result: BookingResult, sent: float, attempts: int) -> None:
        self.inbox.put(("finish", (shot, result, sent, attempts)))

    def stop(self) -> None:
        self.inbox.put(None)
        self.join()


class Prepared:
    """One instant's shots with their provider connections open."""

    def __init__(self, shots: list[Shot]) -> None:
        self.shots = shots
        self.slots = []
        by_provider: dict[str, list[int]] = {}
        for index, shot in enumerate(shots):
            by_provider.setdefault(shot.provider, []).append(index)
        self.releases = []
        slots: dict[int, tuple] = {}
        for name, indexes in by_provider.items():
            release = get_provider(name).prepare(
                [(shots[i].payload, shots[i].key) for i in indexes]
            )
            self.releases.append(release)
            for position, index in enumerate(indexes):
                slots[index] = (release, position)
        self.slots = [slots[index] for index in range(len(shots))]

    @property
    def lead(self) -> float:
        """How long before our instant the first request leaves (arrival targeting)."""
        return max((_lead(release, position) for release, position in self.slots), default=0.0)

    def close(self) -> None:
        for release in self.releases:
            release.close()


def fire_group(prepared: Prepared, writer: Writer, receivers: ThreadPoolExecutor) -> int:
    """Claim, wait for the instant, send in creation order; answers are handled by `receivers`."""
    shots = prepared.shots
    instant = shots[0].opens_at
    deadline = instant.timestamp()
    if time.time() > deadline + settings.PREBOOKING_RETRY_WINDOW:
        for shot in shots:
            services.expire(shot.id, "Not sent: the booking window closed before it could fire.")
        prepared.close()
        return 0
    # Each request leaves `lead` seconds before our instant so it reaches the gym at the gym's
    # own instant (a release without a clock estimate sends at ours). A stable sort: requests
    # to one host keep their creation order.
    plan = sorted(
        (
            (deadline - _lead(release, position), order)
            for order, (release, position) in enumerate(prepared.slots)
        ),
    )
    sent = []
    # Real-time priority from here (a few hundred ms, nearly all asleep): on a loaded machine a
    # normal thread's wake-up from sleep can be tens of milliseconds late.
    with realtime_priority():
        sleep_until(plan[0][0] - settings.PREBOOKING_CLAIM_AHEAD_MS / 1000)
        claim_started = time.time()
        won = services.claim_for_firing([shot.id for shot in shots], instant)
        claim_ms = (time.time() - claim_started) * 1000
        for send_at, order in plan:
            shot, (release, position) = shots[order], prepared.slots[order]
            if shot.id in won:
                sleep_until(send_at)
                sent.append((shot, release, position, release.send(position)))
    if sent:
        log.info(
            "sent %d at %s: first %.2f ms, last %.2f ms after the instant (claim took %.1f ms)",
            len(sent),
            instant.isoformat(),
            (sent[0][3] - deadline) * 1000,
            (sent[-1][3] - deadline) * 1000,
            claim_ms,
        )
    for shot, release, position, sent_at in sent:
        receivers.submit(_receive, shot, release, position, sent_at, writer)
    for shot, (release, position) in zip(shots, prepared.slots, strict=True):
        if shot.id not in won and release.connections[position] is not None:
            release.connections[position].close()  # cancelled meanwhile, or fired elsewhere
    return len(sent)


def _lead(release, position: int) -> float:
    lead = getattr(release, "lead", None)
    return lead(position) if lead is not None else 0.0


def _receive(shot: Shot, release, position: int, sent_at: float, writer: Writer) -> None:
    try:
        result = release.receive(position)
        result, attempts = settle(shot, result, 1, writer.attempt)
    except Exception as exc:  # never leave a claimed row without an outcome while we live
        log.exception("prebooking %s: answer handling failed", shot.id)
        result, attempts = BookingResult(RETRY, None, {}, f"{type(exc).__name__}: {exc}"), 1
    writer.finish(shot, result, sent_at, attempts)


def _fire_late_comer(prebooking_id: int) -> None:
    try:
        fire_now(prebooking_id)
    finally:
        connection.close()


def arm_instant(instant: datetime) -> int:
    """Fire every pending prebooking opening at `instant`, at that instant; the armer job.

    Two armers run per instant. The one that gets the instant's advisory lock fires; the other
    waits on the lock and, if the first one's worker dies, takes over the moment PostgreSQL
    drops its connection: it sends again what was left firing (same idempotency key) and fires
    what is still pending, on time if the instant has not passed. The lock is held until every
    answer is recorded, so a standby that gets it from a live owner finds nothing left to do.
    Returns how many requests were sent.
    """
    window_closes = instant + timedelta(seconds=settings.PREBOOKING_RETRY_WINDOW)
    if not services.own_instant(instant, until=window_closes):
        log.warning("instant %s: its window closed while another armer held it", instant)
        return 0
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(FIRING_SWITCH_INTERVAL)
    writer = Writer()
    writer.start()
    receivers = ThreadPoolExecutor(
        max_workers=RECEIVER_THREADS, thread_name_prefix="prebooking-receive"
    )
    try:
        fired = 0
        for prebooking_id in services.orphans(instant):
            receivers.submit(_refire_orphan, prebooking_id)
            fired += 1
        return fired + _fire_instant(instant, writer, receivers)
    finally:
        receivers.shutdown(wait=True)
        writer.stop()
        sys.setswitchinterval(switch_interval)
        services.release_instant(instant)


def _fire_instant(instant: datetime, writer: Writer, receivers: ThreadPoolExecutor) -> int:
    """Take the instant's prebookings until just before it, prepare, fire at the instant."""
    preparer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prebooking-prepare")
    try:
        held, preparing = _take_until_instant(instant, preparer)
        if not held:
            return 0
        if preparing is None:  # armed late (a standby, a re-run): prepare now
            preparing = preparer.submit(Prepared, _in_creation_order(held))
        return _fire_held(instant, held, preparing, writer, receivers)
    finally:
        preparer.shutdown(wait=True)


def _in_creation_order(held: dict[int, Shot]) -> list[Shot]:
    return sorted(held.values(), key=lambda shot: (shot.created_at, shot.id))


def _take_until_instant(
    instant: datetime, preparer: ThreadPoolExecutor
) -> tuple[dict[int, Shot], Future | None]:
    """Take the instant's pending prebookings as they are created, until LAST_TAKE_SECONDS
    before it; start preparing their connections when the slowest provider's time comes.
    Returns the shots taken and their preparation (None when it has not started)."""
    prepare_ahead = settings.PREBOOKING_PREPARE_SECONDS
    deadline = instant.timestamp()
    held: dict[int, Shot] = {}
    preparing: Future | None = None
    while True:
        for shot in services.claim_for_arming(instant, held):
            held[shot.id] = shot
        remaining = deadline - time.time()
        # A provider that prepares earlier (AimHarder logs in and measures clocks) starts
        # when its own preparation time comes.
        ahead = max(
            (prepare_seconds(name) for name in {shot.provider for shot in held.values()}),
            default=prepare_ahead,
        )
        if held and preparing is None and remaining <= ahead:
            preparing = preparer.submit(Prepared, _in_creation_order(held))
        if preparing is not None and preparing.done() and preparing.exception() is None:
            remaining -= preparing.result().lead  # its first request may leave before ours
        if remaining > prepare_ahead + PREPARE_SLACK_SECONDS:
            time.sleep(min(remaining - prepare_ahead, ARMING_POLL_SECONDS))
        elif remaining > LAST_TAKE_SECONDS:
            time.sleep(min(remaining - FINAL_WAKE_SECONDS, PREPARING_POLL_SECONDS))
        else:
            return held, preparing


def _fire_held(
    instant: datetime,
    held: dict[int, Shot],
    preparing: Future,
    writer: Writer,
    receivers: ThreadPoolExecutor,
) -> int:
    """Send the prepared group at the instant, then, one by one, what it does not hold (taken
    after its connections were opened, or everything when preparing failed)."""
    try:
        prepared = preparing.result()
    except Exception:  # e.g. a provider removed from settings: send one by one below
        log.exception("could not prepare the prebookings opening at %s", instant)
        prepared = None
    fired = 0
    if prepared is not None:
        fired += fire_group(prepared, writer, receivers)
    else:
        sleep_until(instant.timestamp())  # then one by one below, never early
    prepared_ids = {shot.id for shot in prepared.shots} if prepared else set()
    for shot in _in_creation_order(held):
        if shot.id not in prepared_ids:
            receivers.submit(_fire_late_comer, shot.id)
            fired += 1
    return fired


def _refire_orphan(prebooking_id: int) -> None:
    try:
        fire_now(prebooking_id, claim=False)
    finally:
        connection.close()


def fire_now(prebooking_id: int, claim: bool = True) -> bool:
    """Send one prebooking now from this thread (recovery, late arming)."""
    from prebooking.models import Prebooking

    prebooking = Prebooking.objects.get(pk=prebooking_id)
    if claim and prebooking_id not in services.claim_for_firing([prebooking_id], timezone.now()):
        return False
    shot = Shot(
        prebooking.id,
        prebooking.provider,
        prebooking.payload,
        prebooking.opens_at,
        prebooking.created_at,
    )
    attempts = prebooking.attempts + (1 if claim else 0)
    sent = time.time()
    result = get_provider(shot.provider).book(shot.payload, shot.key)
    result, attempts = settle(shot, result, attempts, services.record_attempt)
    _finish(shot, result, sent, attempts)
    return True
