"""Prometheus metrics shared by the services, labelled by service.

Defined once per process at import (each service is its own process); tests that run several
services in one process tell them apart by the ``service`` label.

Naming, for these and for a service's own metrics: ``feedbackloop_`` then, for a service's own,
``<service>_``; base units as suffixes (``_seconds``, a latency being ``_duration_seconds``); counters end in
``_total``; ``service`` is the first label. Prometheus adds ``job`` (``feedbackloop-<service>``, see
``deploy/prometheus/prometheus.yml``) and ``instance`` when it scrapes.

The two HTTP metrics are recorded by the request layer of :func:`feedbackloop.http.build_app`
(``feedbackloop.http._guards``), which finds the route template with prometheus-fastapi-instrumentator's route
resolution, so that their names and the ``service`` label stay what the alerts and the dashboard query; the
library's own default metrics (``http_…``, no ``service`` label) are never registered. ``route`` is the route
template, ``unmatched`` when none matches.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BROKER_LOSS_RECOVERIES",
    "CONSUMER_LAG",
    "EVENTS_CONSUMED",
    "EVENTS_DEAD_LETTERED",
    "EVENTS_PUBLISHED",
    "EVENT_PROCESSING",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "OUTBOX_BACKLOG",
]

HTTP_REQUESTS = Counter(
    "feedbackloop_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "feedbackloop_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_CONSUMED = Counter(
    "feedbackloop_events_consumed_total", "Events consumed, by outcome", ["service", "topic", "outcome"]
)
EVENTS_PUBLISHED = Counter(
    "feedbackloop_events_published_total", "Events published by the outbox relay", ["service", "topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "feedbackloop_events_dead_lettered_total", "Events sent to a dead-letter topic", ["service", "topic"]
)
EVENT_PROCESSING = Histogram(
    "feedbackloop_batch_processing_duration_seconds",
    "Time to handle one consumed batch, transaction included",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("feedbackloop_outbox_backlog", "Outbox rows not yet published", ["service"])
CONSUMER_LAG = Gauge(
    "feedbackloop_consumer_lag", "Records behind the end of the partition", ["service", "topic", "partition"]
)
BROKER_LOSS_RECOVERIES = Counter(
    "feedbackloop_broker_loss_recoveries_total",
    "Times the relay found the broker had lost published events and re-published the retained outbox",
    ["service"],
)
