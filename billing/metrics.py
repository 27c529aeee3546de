"""Prometheus gauges of the Stripe event log, read from PostgreSQL at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class StripeEventCollector(Collector):
    """Events per type and status, and the age of the oldest unprocessed event."""

    def collect(self) -> Iterator[Metric]:
        from billing import selectors

        events = GaugeMetricFamily(
            "stripe_events", "Stored Stripe events per type and status", labels=["type", "status"]
        )
        # A GROUP BY over the table per scrape, bounded by retention (selectors.type_status_counts);
        # the oldest-unprocessed read is an index probe.
        for event_type, status, count in selectors.type_status_counts():
            events.add_metric([event_type, status], count)
        yield events
        age = selectors.oldest_unprocessed_age()
        yield GaugeMetricFamily(
            "stripe_oldest_unprocessed_seconds",
            "Seconds the oldest received but unprocessed Stripe event has waited (0: none)",
            value=age.total_seconds() if age else 0.0,
        )
