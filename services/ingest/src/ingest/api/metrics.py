"""Ingest's HTTP-side Prometheus metrics, labelled by service and source (defined once per process, at import).

The group-commit histogram is the store's: :data:`ingest.store.group_commit.GROUP_COMMIT_SIZE`."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["ITEMS_STORED", "TRACKER_CHANGES", "WEBHOOK_DELIVERIES"]

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
TRACKER_CHANGES = Counter(
    "feedbackloop_ingest_tracker_changes_total",
    "Tracker issue changes accepted from webhooks (published on tracker.v1; a redelivery counts again), by source "
    "and status",
    ["service", "source", "status"],
)
