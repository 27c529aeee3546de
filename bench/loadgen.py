"""A small HTTP load generator for signed Stripe events: open loop (fixed rate) and closed loop.

Open loop sends request i at ``start + i / rate`` whatever the server does, and measures each
latency from that scheduled instant, so a slow server cannot hide its queueing (no
coordinated omission). Closed loop keeps N requests in flight to find the saturation rate.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import queue
import statistics
import threading
import time
from urllib.parse import urlparse

import stripe

PATH = "/billing/webhooks/stripe/"


def customer_event(number: int, prefix: str, pad: int = 2500) -> str:
    """A ~3 KB customer.created event with a unique id."""
    customer = f"cus_{prefix}{number:07d}"
    event = {
        "id": f"evt_{prefix}{number:07d}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": 1_795_000_000 + number,
        "livemode": False,
        "type": "customer.created",
        "data": {
            "object": {
                "id": customer,
                "object": "customer",
                "email": f"{customer}@example.com",
                "name": f"Customer {number}",
                "metadata": {"note": "x" * pad},
            }
        },
    }
    return json.dumps(event)


def signature(body: str, secret: str) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret)


def post(host: str, port: int, body: str, header: str | None, path: str = PATH) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if header:
            headers["Stripe-Signature"] = header
        connection.request("POST", path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        connection.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarise(latencies_ms: list[float], statuses: list[int], seconds: float) -> dict:
    return {
        "requests": len(statuses),
        "ok": sum(1 for status in statuses if status == 200),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(statuses) / seconds, 1) if seconds else 0,
        "p50_ms": round(percentile(latencies_ms, 0.50), 2),
        "p95_ms": round(percentile(latencies_ms, 0.95), 2),
        "p99_ms": round(percentile(latencies_ms, 0.99), 2),
        "max_ms": round(max(latencies_ms), 2) if latencies_ms else None,
        "mean_ms": round(statistics.fmean(latencies_ms), 2) if latencies_ms else None,
    }


def open_loop(
    url: str, bodies: list[str], rate: float, secret: str, threads: int = 48, path: str = PATH
) -> dict:
    """Send `bodies` at `rate` per second; latency from each request's scheduled instant."""
    target = urlparse(url)
    work: queue.Queue = queue.Queue()
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def sender() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            scheduled, body = item
            status = post(target.hostname, target.port, body, signature(body, secret), path)
            done = time.perf_counter()
            with lock:
                latencies.append((done - scheduled) * 1000)
                statuses.append(status)

    pool = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    start = time.perf_counter() + 0.1
    for index, body in enumerate(bodies):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((scheduled, body))
    for _ in pool:
        work.put(None)
    for thread in pool:
        thread.join()
    return summarise(latencies, statuses, time.perf_counter() - start)


def _closed_worker(args: tuple) -> tuple[list[float], list[int]]:
    url, bodies, secret, threads, path, header_override = args
    target = urlparse(url)
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    items = iter(bodies)

    def loop() -> None:
        while True:
            with lock:
                body = next(items, None)
            if body is None:
                return
            header = header_override if header_override is not None else signature(body, secret)
            began = time.perf_counter()
            status = post(target.hostname, target.port, body, header or None, path)
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                statuses.append(status)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, statuses


def closed_loop(
    url: str,
    bodies: list[str],
    secret: str,
    processes: int = 2,
    threads: int = 8,
    path: str = PATH,
    header_override: str | None = None,
) -> dict:
    """Post every body with processes x threads requests in flight; the saturation rate."""
    shares = [bodies[index::processes] for index in range(processes)]
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        jobs = [(url, share, secret, threads, path, header_override) for share in shares]
        parts = pool.map(_closed_worker, jobs)
    seconds = time.perf_counter() - start
    latencies = [value for part in parts for value in part[0]]
    statuses = [value for part in parts for value in part[1]]
    return summarise(latencies, statuses, seconds)


WRK_SCRIPT = """
local file = os.getenv("WRK_REQUESTS_PREFIX")
local requests = {}
local index = 0
local thread_counter = 0

function setup(thread)
  thread:set("id", thread_counter)
  thread_counter = thread_counter + 1
end

function init(args)
  local path = file .. tostring(id) .. ".txt"
  local lines = io.lines(path)
  for header in lines do
    local body = lines()
    requests[#requests + 1] = wrk.format("POST", wrk.path, {
      ["Content-Type"] = "application/json",
      ["Stripe-Signature"] = header,
    }, body)
  end
end

function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end
"""


def wrk_available() -> bool:
    import shutil

    return shutil.which("wrk") is not None


def wrk_saturation(
    url: str,
    bodies: list[str],
    secret: str,
    seconds: int = 10,
    connections: int = 16,
    threads: int = 2,
    path: str = PATH,
    workdir: str = "/tmp",
    signed: bool = True,
) -> dict:
    """Saturation with wrk (C, so the client takes little of the machine): pre-signed requests,
    each thread its own share, for `seconds`. Signatures stay valid for Stripe's 300 s."""
    import os
    import re
    import subprocess

    prefix = os.path.join(workdir, "wrk-requests-")
    for thread in range(threads):
        with open(f"{prefix}{thread}.txt", "w") as out:
            for body in bodies[thread::threads]:
                header = signature(body, secret) if signed else ""
                out.write(header + "\n" + body + "\n")
    script = os.path.join(workdir, "wrk-signed.lua")
    with open(script, "w") as out:
        out.write(WRK_SCRIPT)
    completed = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script,
            url.rstrip("/") + path,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WRK_REQUESTS_PREFIX": prefix},
    )
    text = completed.stdout

    def ms(label: str) -> float | None:
        found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not found:
            return None
        value, unit = float(found.group(1)), found.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    total = int(re.search(r"(\d+) requests in", text).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {
        "requests": total,
        "ok": total - (int(non_2xx.group(1)) if non_2xx else 0),
        "seconds": seconds,
        "throughput_rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "socket_errors": errors.group(1) if errors else "",
        "unique_requests_available": len(bodies),
        "client": "wrk",
    }
