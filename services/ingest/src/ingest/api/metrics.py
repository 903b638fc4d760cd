"""Ingest's own Prometheus metrics, labelled by service and source (defined once per process, at import)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["GROUP_COMMIT_SIZE", "ITEMS_STORED", "WEBHOOK_DELIVERIES"]

WEBHOOK_DELIVERIES = Counter(
    "feedbackloop_ingest_webhook_deliveries_total",
    "Webhook deliveries by source and outcome (accepted, ignored, rejected) and rejection reason",
    ["service", "source", "outcome", "reason"],
)
ITEMS_STORED = Counter(
    "feedbackloop_ingest_items_total",
    "Feedback items accepted (new or already known), by source",
    ["service", "source"],
)
GROUP_COMMIT_SIZE = Histogram(
    "feedbackloop_ingest_group_commit_items",
    "Items stored per group-commit transaction (concurrent requests written together)",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)
