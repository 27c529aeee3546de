"""Gym booking providers: one interface, an HTTP implementation, and its answer classification.

The HTTP contract (the bundled demo gym implements it):
    POST <base>/bookings  {"class_id": ..., "member": ..., "notes": ...}
         headers: Authorization: Bearer <token>, Idempotency-Key: <key>
    201 {"status": "booked"}            booked
    409 {"error": "class_full"}         final business answer (also "already_booked")
    425 {"error": "not_open"}           booking not open yet (clocks differ): retried briefly
    other 4xx                           final
    5xx, timeouts, refused connections  retried inside the retry window
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from django.conf import settings

BOOKED = "booked"
REJECTED = "rejected"
NOT_OPEN = "not_open"
RETRY = "retry"
WAITLISTED = "waitlisted"  # final: not booked, but in the gym's waiting list (AimHarder)


@dataclass(frozen=True)
class BookingResult:
    """What one booking attempt came back with."""

    outcome: str  # BOOKED, REJECTED, NOT_OPEN, RETRY or WAITLISTED
    status_code: int | None
    answer: dict = field(default_factory=dict)
    reason: str = ""
    # What the answer means in the provider's terms ("already_booked", "full", ...), and the
    # arrival targeting's figures for this attempt (offset, estimated arrival); both optional.
    kind: str = ""
    timing: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        data = {"status_code": self.status_code, "answer": self.answer, "reason": self.reason}
        if self.kind:
            data["kind"] = self.kind
        if self.timing:
            data["timing"] = self.timing
        return data


def classify(status_code: int, body: bytes) -> BookingResult:
    """Turn an HTTP answer from a provider into a BookingResult."""
    try:
        answer = json.loads(body or b"{}")
        if not isinstance(answer, dict):
            answer = {"body": answer}
    except ValueError:
        answer = {"body": body[:500].decode("utf-8", "replace")}
    error = str(answer.get("error", ""))
    if 200 <= status_code < 300:
        return BookingResult(BOOKED, status_code, answer)
    if status_code == 425 or error == "not_open":
        return BookingResult(NOT_OPEN, status_code, answer, "booking not open yet")
    if status_code >= 500 or status_code == 429:
        return BookingResult(RETRY, status_code, answer, f"provider answered {status_code}")
    return BookingResult(REJECTED, status_code, answer, error or f"provider answered {status_code}")


class PreparedRelease(Protocol):
    """Requests made ready before the instant: send() each in order, then receive() each."""

    def send(self, index: int) -> float: ...
    def receive(self, index: int) -> BookingResult: ...
    def close(self) -> None: ...


class Provider(Protocol):
    """A gym's booking API."""

    name: str

    def book(self, payload: dict, key: str) -> BookingResult: ...
    def prepare(self, requests: list[tuple[dict, str]]) -> PreparedRelease: ...


class HttpProvider:
    """A gym's HTTP booking API: a persistent httpx client for single requests and retries, and
    pre-opened connections for the instant itself.

    Why two paths: released from threads, httpx needed 112 ms to get 100 ordered requests out
    (one GIL hand-off per request); one thread writing pre-built requests on connections opened
    beforehand gets them out in ~3 ms, in order.
    """

    def __init__(self, name: str, url: str, token: str = "", timeout: float = 10.0) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def headers(self, key: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    base_url=self.url,
                    timeout=httpx.Timeout(self.timeout, connect=3.0),
                    limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
                )
            return self._client

    def book(self, payload: dict, key: str) -> BookingResult:
        """Send one booking request now."""
        try:
            response = self.client.post("/bookings", json=payload, headers=self.headers(key))
        except httpx.HTTPError as exc:
            return BookingResult(RETRY, None, {}, f"{type(exc).__name__}: {exc}"[:500])
        return classify(response.status_code, response.content)

    def prepare(self, requests: list[tuple[dict, str]]) -> HttpRelease:
        """Open one connection per request now, so that sending at the instant is a write."""
        return HttpRelease(self, requests)


class HttpRelease:
    """Pre-opened connections, one per request, and each request already encoded as bytes.

    At the instant a send is one sendall() of ready bytes (~10 us) rather than http.client
    formatting headers (~35 us): the shorter the burst, the less the scheduler can cut into it.
    """

    def __init__(self, provider: HttpProvider, requests: list[tuple[dict, str]]) -> None:
        parts = urlsplit(provider.url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        path = (parts.path or "") + "/bookings"
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.requests = [
            encode_request(path, host, json.dumps(payload).encode(), provider.headers(key))
            for payload, key in requests
        ]
        self.errors: dict[int, str] = {}
        self.connections = []
        for index in range(len(requests)):
            conn = connection_class(parts.hostname, parts.port, timeout=provider.timeout)
            try:
                conn.connect()  # TCP (and TLS) handshakes happen now, not at the instant
            except OSError as exc:
                self.errors[index] = f"connect: {exc}"
            self.connections.append(conn)

    def send(self, index: int) -> float:
        """Write request `index`; return the wall-clock time it left."""
        if index not in self.errors:
            try:
                self.connections[index].sock.sendall(self.requests[index])
            except OSError as exc:
                self.errors[index] = f"send: {exc}"
        return time.time()

    def receive(self, index: int) -> BookingResult:
        """Wait for the answer to request `index`."""
        if index in self.errors:
            return BookingResult(RETRY, None, {}, self.errors[index])
        return read_answer(self.connections[index], classify)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


def read_answer(conn: http.client.HTTPConnection, classifier) -> BookingResult:
    """The answer on a pre-opened connection, read and classified; the connection is closed."""
    try:
        response = http.client.HTTPResponse(conn.sock, method="POST")
        response.begin()
        return classifier(response.status, response.read())
    except (OSError, http.client.HTTPException) as exc:
        return BookingResult(RETRY, None, {}, f"receive: {type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()


def encode_request(path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 POST as it goes on the wire."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_providers: dict[str, HttpProvider] = {}
_providers_lock = threading.Lock()


def _aimharder() -> Provider:
    from prebooking.aimharder_provider import AimHarderProvider

    return AimHarderProvider()


# Providers with a client of their own rather than the generic HTTP contract, by name. They are
# not offered by the generic form (provider_choices): each has its own pages.
SPECIAL_PROVIDERS = {"aimharder": _aimharder}
_special: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """The configured provider called `name` (one persistent instance per process)."""
    if name in SPECIAL_PROVIDERS:
        with _providers_lock:
            if name not in _special:
                _special[name] = SPECIAL_PROVIDERS[name]()
            return _special[name]
    config = settings.PREBOOKING_PROVIDERS[name]
    with _providers_lock:
        provider = _providers.get(name)
        if provider is None or provider.url != config["url"].rstrip("/"):
            provider = HttpProvider(
                name, config["url"], config.get("token", ""), settings.PREBOOKING_HTTP_TIMEOUT
            )
            _providers[name] = provider
        return provider


def close_providers() -> None:
    """Close every provider's persistent connections (tests, settings changes)."""
    with _providers_lock:
        for provider in _providers.values():
            if provider._client is not None:
                provider._client.close()
        _providers.clear()
        for provider in _special.values():
            provider.close()
        _special.clear()


def prepare_seconds(name: str) -> float:
    """How long before the instant the provider `name` wants its requests prepared."""
    if name in SPECIAL_PROVIDERS:
        return float(getattr(settings, f"{name.upper()}_PREPARE_SECONDS"))
    return float(settings.PREBOOKING_PREPARE_SECONDS)


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) of every configured provider, for forms."""
    return [(name, config["label"]) for name, config in settings.PREBOOKING_PROVIDERS.items()]
