"""The generic HTTP booking provider: its contract, its answer classification, pre-opened releases.

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
from urllib.parse import urlsplit

import httpx

from prebooking.providers.base import BOOKED, NOT_OPEN, REJECTED, RETRY, BookingResult


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


class HttpProvider:
    """A gym's HTTP booking API: a persistent httpx client for single requests and retries, and
    pre-opened connections for the instant itself.

    Why two paths: released from threads, httpx pays one GIL hand-off per request, and a burst
    of ordered requests spreads out; one thread writing pre-built requests on connections
    opened beforehand gets them out back to back, in order (docs/prebooking.md, "Why the send
    loop is not httpx"; bench/prebooking.py measures it).
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

    At the instant a send is one sendall() of ready bytes rather than http.client formatting
    headers: the shorter the burst, the less the scheduler can cut into it.
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
