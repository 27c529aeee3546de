"""Webhook benchmark: ack latency at 200 events/s and saturation throughput with zero loss,
against a synchronous receiver measured in the same run, plus the unsigned-flood figure.

    make bench            (all benchmarks)  or
    python scripts/withdb.py --name bench -- python -m bench.webhook
"""

from __future__ import annotations

import time
import uuid

from bench.loadgen import closed_loop, customer_event, open_loop
from bench.stack import BENCH_SECRET, Stack, machine, setup_django, write_result

RATE = 200
OPEN_LOOP_SECONDS = 10
SATURATION_EVENTS = 5000
DRAIN_TIMEOUT = 240


def events(count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:8]
    return [customer_event(number, prefix) for number in range(count)]


def wait_processed(stripe_ids: list[str], timeout: float) -> dict:
    """Wait until every acknowledged event is processed; report how long the drain took."""
    from billing.models import StripeEvent

    began = time.monotonic()
    while True:
        processed = StripeEvent.objects.filter(
            stripe_id__in=stripe_ids, status=StripeEvent.Status.PROCESSED
        ).count()
        if processed == len(stripe_ids) or time.monotonic() - began > timeout:
            break
        time.sleep(0.5)
    return {
        "acknowledged": len(stripe_ids),
        "processed": processed,
        "drain_s": round(time.monotonic() - began, 1),
    }


def ids_of(bodies: list[str]) -> list[str]:
    import json

    return [json.loads(body)["id"] for body in bodies]


def main() -> dict:
    setup_django()
    stack = Stack(env={"DJANGO_SETTINGS_MODULE": "bench.sync_settings"}, web_workers=3)
    result: dict = {"machine": machine(), "rate": RATE}
    with stack:
        url = stack.url
        sync_path = "/billing/webhooks/stripe-sync/"
        open_loop(url, events(300), RATE, BENCH_SECRET)  # warm up both paths
        open_loop(url, events(300), RATE, BENCH_SECRET, path=sync_path)

        queued = events(RATE * OPEN_LOOP_SECONDS)
        result["ack_at_200"] = open_loop(url, queued, RATE, BENCH_SECRET)
        result["sync_at_200"] = open_loop(
            url, events(RATE * OPEN_LOOP_SECONDS), RATE, BENCH_SECRET, path=sync_path
        )

        saturating = events(SATURATION_EVENTS)
        result["ack_saturation"] = closed_loop(url, saturating, BENCH_SECRET)
        result["sync_saturation"] = closed_loop(
            url, events(SATURATION_EVENTS), BENCH_SECRET, path=sync_path
        )

        # Signed deliveries at 200/s while an unsigned flood hammers the endpoint.
        flood = events(25000)
        import threading

        flood_result: dict = {}
        flooder = threading.Thread(
            target=lambda: flood_result.update(
                closed_loop(url, flood, BENCH_SECRET, processes=2, threads=16, header_override="")
            )
        )
        flooder.start()
        time.sleep(1)
        under_flood = events(RATE * 5)
        result["ack_at_200_under_unsigned_flood"] = open_loop(url, under_flood, RATE, BENCH_SECRET)
        flooder.join()
        result["unsigned_flood"] = flood_result

        result["zero_loss"] = wait_processed(
            ids_of(queued) + ids_of(saturating) + ids_of(under_flood), DRAIN_TIMEOUT
        )

    ack, sync = result["ack_at_200"], result["sync_at_200"]
    sat, sync_sat = result["ack_saturation"], result["sync_saturation"]
    flooded = result["ack_at_200_under_unsigned_flood"]
    result["summary"] = {
        "ack_p99_ms_at_200": ack["p99_ms"],
        "ack_p99_target_ms": 15,
        "sync_p99_ms_at_200": sync["p99_ms"],
        "p99_ratio_sync_over_ack": round(sync["p99_ms"] / ack["p99_ms"], 2),
        "saturation_eps": sat["throughput_rps"],
        "saturation_target_eps": 1000,
        "sync_saturation_eps": sync_sat["throughput_rps"],
        "saturation_ratio_ack_over_sync": round(
            sat["throughput_rps"] / sync_sat["throughput_rps"], 2
        ),
        "unsigned_flood_rps": flood_result.get("throughput_rps"),
        "signed_p99_ms_under_flood": flooded["p99_ms"],
        "flood_slowdown_p99": round(flooded["p99_ms"] / ack["p99_ms"], 2),
        "all_acknowledged_processed": result["zero_loss"]["processed"]
        == result["zero_loss"]["acknowledged"],
    }
    path = write_result("webhook", result)
    print(f"webhook benchmark written to {path}")
    for key, value in result["summary"].items():
        print(f"  {key}: {value}")
    return result


if __name__ == "__main__":
    main()
