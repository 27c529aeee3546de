"""The bundled demo gym: a tiny booking API (see prebooking.providers for the contract).

Classes have a capacity and open at an instant; a request before it gets 425 not_open; then
first come, first served. Every request is logged in DemoGymRequest with the kernel's receive
timestamp of its first byte, so tests and benchmarks measure our lateness and order, not the
gym's thread scheduling.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import socket
import struct
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from prebooking.models import DemoGymBooking, DemoGymClass, DemoGymRequest

log = logging.getLogger(__name__)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value; Python does not export it
DEFAULT_CAPACITY = 20


def register_class(
    class_id: str, opens_at: datetime, starts_at: str | datetime | None = None, capacity: int = 0
) -> DemoGymClass:
    """Make sure the demo gym knows the class (the first prebooking for it sets its opening)."""
    if isinstance(starts_at, str):
        starts_at = parse_datetime(starts_at)
    gym_class, _ = DemoGymClass.objects.get_or_create(
        class_id=class_id,
        defaults={
            "opens_at": opens_at,
            "starts_at": starts_at,
            "capacity": capacity or DEFAULT_CAPACITY,
        },
    )
    return gym_class


def register_prebooked_class(sender, prebooking, **kwargs) -> None:
    """A prebooking for the demo gym was created: the gym opens its class at that instant."""
    if prebooking.provider == "demo":
        payload = prebooking.payload
        register_class(payload["class_id"], prebooking.opens_at, payload.get("class_starts_at"))


def book(class_id: str, member: str, key: str, arrived_at: datetime) -> tuple[int, dict]:
    """Decide one booking request and log it; returns (HTTP status, JSON answer)."""
    with transaction.atomic():
        gym_class = DemoGymClass.objects.select_for_update().filter(class_id=class_id).first()
        if gym_class is None:
            status, answer = 404, {"error": "unknown_class"}
        elif gym_class.fail_next > 0:
            gym_class.fail_next -= 1
            gym_class.save(update_fields=["fail_next"])
            status, answer = 503, {"error": "unavailable"}
        elif arrived_at < gym_class.opens_at:
            status, answer = 425, {"error": "not_open", "opens_at": gym_class.opens_at.isoformat()}
        else:
            status, answer = _give_place(gym_class, member, key)
        DemoGymRequest.objects.create(
            class_id=class_id,
            member=member,
            request_key=key,
            arrived_at=arrived_at,
            status_code=status,
            answer=answer.get("status") or answer.get("error", ""),
        )
    return status, answer


def _give_place(gym_class: DemoGymClass, member: str, key: str) -> tuple[int, dict]:
    existing = DemoGymBooking.objects.filter(gym_class=gym_class, member=member).first()
    if existing is not None:
        if existing.request_key == key:  # the same request again (a retry): same answer
            return 201, {"status": "booked", "booking": existing.pk, "replayed": True}
        return 409, {"error": "already_booked"}
    if DemoGymBooking.objects.filter(gym_class=gym_class).count() >= gym_class.capacity:
        return 409, {"error": "class_full"}
    try:
        with transaction.atomic():
            booking = DemoGymBooking.objects.create(
                gym_class=gym_class, member=member, request_key=key, booked_at=timezone.now()
            )
    except IntegrityError:
        return 409, {"error": "already_booked"}
    return 201, {"status": "booked", "booking": booking.pk}


class Turnstile:
    """Lets requests decide in the order they arrived, not the order their threads woke up.

    Each request waits until FAIRNESS seconds after its arrival (so that an earlier one whose
    thread is slow to wake can join the queue), then goes when it is the earliest waiting.
    FAIRNESS leaves room for a loaded machine's slow wake-ups; it delays the answers, not the
    arrival times that decide the order.
    """

    FAIRNESS = 0.05

    def __init__(self) -> None:
        self.waiting: list[tuple[float, int]] = []
        self.condition = threading.Condition()
        self.tickets = itertools.count()

    def run(self, arrived: float, decide):
        ticket = (arrived, next(self.tickets))
        with self.condition:
            heapq.heappush(self.waiting, ticket)
        delay = arrived + self.FAIRNESS - time.time()
        if delay > 0:
            time.sleep(delay)
        with self.condition:
            while self.waiting[0] != ticket:
                self.condition.wait(0.01)
        try:
            return decide()
        finally:
            with self.condition:
                # Not heappop: a late-waking earlier request may have become the head.
                self.waiting.remove(ticket)
                heapq.heapify(self.waiting)
                self.condition.notify_all()


def first_byte_time(sock: socket.socket) -> float | None:
    """When the kernel received the next request's first byte (epoch seconds), peeking at it;
    None when the client closed. Needs SO_TIMESTAMPNS set on the socket."""
    try:
        data, ancillary, _flags, _addr = sock.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
    except OSError:
        return None
    if not data:
        return None
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", value[:16])
            return seconds + nanoseconds / 1e9
    return time.time()


class GymHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; one thread per client connection."""

    protocol_version = "HTTP/1.1"
    server_version = "DemoGym/1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.arrived_at: datetime | None = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            connection.close()  # this thread's database connection ends with the client's

    def handle_one_request(self) -> None:
        received = first_byte_time(self.connection)
        if received is None:
            self.close_connection = True
            return
        self.arrived_at = datetime.fromtimestamp(received, tz=UTC)
        super().handle_one_request()

    def _answer(self, status: int, answer: dict) -> None:
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._answer(200, {"ok": True})
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/bookings":
            self._answer(404, {"error": "not_found"})
            return
        try:
            payload = json.loads(raw)
            class_id = str(payload["class_id"])
            member = str(payload.get("member", ""))
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "bad_request"})
            return
        key = self.headers.get("Idempotency-Key", "")[:80]
        try:
            status, answer = self.server.turnstile.run(
                self.arrived_at.timestamp(),
                lambda: book(class_id, member, key, self.arrived_at),
            )
        except Exception:
            log.exception("demo gym: booking failed")
            status, answer = 500, {"error": "internal"}
        self._answer(status, answer)

    def log_message(self, format: str, *args) -> None:
        log.debug("demo gym: " + format, *args)


class GymServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # a whole same-instant group connects at once

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.turnstile = Turnstile()
        self.handlers: set[threading.Thread] = set()

    def process_request_thread(self, request, client_address) -> None:
        self.handlers.add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.handlers.discard(threading.current_thread())

    def wait_for_handlers(self, timeout: float) -> None:
        """Wait until every client connection has ended (each closes its database connection)."""
        deadline = time.monotonic() + timeout
        for thread in list(self.handlers):
            thread.join(max(0.0, deadline - time.monotonic()))


def make_server(host: str = "127.0.0.1", port: int = 0) -> GymServer:
    """A demo gym server bound to (host, port); port 0 picks a free one."""
    return GymServer((host, port), GymHandler)


def serve_in_thread(server: GymServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="demo-gym", daemon=True)
    thread.start()
    return thread
