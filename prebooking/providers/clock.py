"""Where a host's clock is, seen from ours: the shift to add to a send time to get the host's
clock at the moment it handles the request, and the round trip, from its `Date` headers.

`Date` has whole seconds, so one answer says little; but each probe sent at our time s and
stamped D by the host bounds the shift x: D <= s + x < D + 1. Probes spread over a second find
the tick within 1/FIRST_ROUND_PROBES of a second; the next seconds' probes are aimed around
the tick and divide the interval by REFINE_PROBES + 1 each round, up to MAX_ROUNDS rounds. This
is what NTP-less clients can do; none of the public booking bots measures it (docs/prebooking.md,
"AimHarder").

Sending at (instant - x + margin) makes the request reach the host at its own `instant +
margin`, whatever the offset between clocks and the one-way delay. The lower bound of x is
used: the request then arrives no earlier than the margin, and later only by the bound's width.
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

CONNECTIONS = 12
FIRST_ROUND_PROBES = 20
REFINE_PROBES = 10
MAX_ROUNDS = 4
GOOD_ENOUGH = 0.001  # seconds of width at which refining stops

_cache: dict[str, Estimate] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Estimate:
    """A host's clock shift and round trip, in seconds, with the shift's bounds."""

    host: str
    low: float  # shift >= low
    high: float  # shift < high
    rtt: float
    probes: int
    measured: float  # our clock, epoch seconds
    consistent: bool = True  # False when probes contradicted each other (jitter)

    @property
    def shift(self) -> float:
        """The shift to plan with: the lower bound, so arrivals are never early."""
        return self.low if self.consistent else (self.low + self.high) / 2

    @property
    def offset(self) -> float:
        """The host's clock minus ours, assuming the delay is the same both ways."""
        return self.shift - self.rtt / 2

    @property
    def uncertainty(self) -> float:
        return abs(self.high - self.low) / 2

    def as_json(self) -> dict:
        return {
            "host": self.host,
            "offset_ms": round(self.offset * 1000, 2),
            "rtt_ms": round(self.rtt * 1000, 2),
            "shift_ms": round(self.shift * 1000, 2),
            "uncertainty_ms": round(self.uncertainty * 1000, 2),
            "probes": self.probes,
        }


def open_connection(url: str, timeout: float, proxy: str = "") -> http.client.HTTPConnection:
    """A connected http.client connection to `url`'s host (through `proxy` by CONNECT)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
    if proxy:
        proxy_parts = urlsplit(proxy)
        conn = connection_class(proxy_parts.hostname, proxy_parts.port or 8080, timeout=timeout)
        conn.set_tunnel(parts.hostname, port)
    else:
        conn = connection_class(parts.hostname, port, timeout=timeout)
    conn.connect()  # TCP (and TLS) handshakes now, not when the request must leave
    return conn


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _sleep_until(deadline: float) -> None:
    while (remaining := deadline - time.time()) > 0:
        time.sleep(remaining - 0.001 if remaining > 0.002 else 0)


class _Prober:
    def __init__(self, url: str, headers: dict[str, str], timeout: float, proxy: str) -> None:
        self.url, self.headers, self.timeout, self.proxy = url, headers, timeout, proxy
        self.path = urlsplit(url).path or "/"
        self.connections = [open_connection(url, timeout, proxy) for _ in range(CONNECTIONS)]

    def probe(self, index: int) -> tuple[float, float, float] | None:
        """(sent, received, Date) of one HEAD on connection `index`, reconnecting if needed."""
        for _ in range(2):
            conn = self.connections[index]
            try:
                sent = time.time()
                conn.request("HEAD", self.path, headers=self.headers)
                response = conn.getresponse()
                response.read()
                received = time.time()
                stamp = response.getheader("Date")
                if response.will_close:
                    conn.close()
                    self.connections[index] = open_connection(self.url, self.timeout, self.proxy)
                if not stamp:
                    return None
                return sent, received, parsedate_to_datetime(stamp).timestamp()
            except (OSError, http.client.HTTPException, ValueError, TypeError):
                conn.close()
                self.connections[index] = open_connection(self.url, self.timeout, self.proxy)
        return None

    def round(self, send_times: list[float]) -> list[tuple[float, float, float]]:
        """Probes leaving at `send_times` (our clock), spread over the connections."""
        results: list[tuple[float, float, float]] = []
        lock = threading.Lock()
        plans: list[list[float]] = [[] for _ in self.connections]
        for position, moment in enumerate(sorted(send_times)):
            plans[position % len(self.connections)].append(moment)

        def run(index: int, moments: list[float]) -> None:
            for moment in moments:
                _sleep_until(moment)
                if (sample := self.probe(index)) is not None:
                    with lock:
                        results.append(sample)

        threads = [
            threading.Thread(target=run, args=(index, moments), daemon=True)
            for index, moments in enumerate(plans)
            if moments
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.timeout + 2)
        return results

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


def measure(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5.0, proxy: str = ""
) -> Estimate:
    """Probe `url` (HEAD requests) for about three seconds and return the host's Estimate."""
    prober = _Prober(url, headers or {}, timeout, proxy)
    try:
        samples = [s for _ in range(4) if (s := prober.probe(0)) is not None]
        if not samples:
            raise OSError(f"{host_of(url)} sent no Date header")
        rtt = min(received - sent for sent, received, _ in samples)
        start = time.time() + 0.01
        step = 1.0 / FIRST_ROUND_PROBES
        samples += prober.round([start + step * i for i in range(FIRST_ROUND_PROBES)])
        low, high = _bounds(samples)
        rounds = 1
        while high - low > GOOD_ENOUGH and low < high and rounds < MAX_ROUNDS:
            # Aim at the host's next whole second far enough ahead that every probe is future.
            tick = math.floor(time.time() + 0.02 + high) + 1
            width = high - low
            parts = REFINE_PROBES + 1
            moments = [tick - (low + width * j / parts) for j in range(1, parts)]
            samples += prober.round(moments)
            low, high = _bounds(samples)
            rounds += 1
        return Estimate(
            host_of(url), low, high, rtt, len(samples), time.time(), consistent=low < high
        )
    finally:
        prober.close()


def _bounds(samples: list[tuple[float, float, float]]) -> tuple[float, float]:
    low = max(stamp - sent for sent, _, stamp in samples)
    high = min(stamp + 1 - sent for sent, _, stamp in samples)
    return low, high


def estimate(
    url: str,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    proxy: str = "",
    max_age: float = 30.0,
) -> Estimate:
    """The host's Estimate, measured now unless one younger than `max_age` seconds exists."""
    host = host_of(url)
    with _cache_lock:
        cached = _cache.get(host)
    if cached is not None and time.time() - cached.measured < max_age:
        return cached
    fresh = measure(url, headers, timeout, proxy)
    with _cache_lock:
        _cache[host] = fresh
    return fresh


def cached(url: str) -> Estimate | None:
    """The last Estimate of `url`'s host, however old, or None (never measures)."""
    with _cache_lock:
        return _cache.get(host_of(url))


def forget() -> None:
    """Drop every cached estimate (tests, a host that moved)."""
    with _cache_lock:
        _cache.clear()
