"""The Grafana dashboard and the Prometheus alert rules in deploy/ are well formed and name real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import feedbackloop.metrics  # noqa: F401 - registers the shared metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: Metrics defined outside shared/ (notification's delivery worker, ingest's counters).
SERVICE_METRICS = {"notification_delivery_attempts_total", "feedbackloop_ingest_items_total", "up"}
_NAME = re.compile(r"\b(feedbackloop_[a-z_]+|notification_[a-z_]+|up)\b")


def known_metrics() -> set[str]:
    names = set(SERVICE_METRICS)
    for metric in REGISTRY.collect():
        names |= {sample.name for sample in metric.samples}
        names |= {metric.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    return names


def referenced(expr: str) -> set[str]:
    return {n for n in _NAME.findall(expr) if not n.endswith("_")} - {"feedbackloop"}


def test_alert_rules_cover_lag_dlq_outbox_and_deliveries_with_known_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    assert {"FeedbackLoopConsumerLagGrowing", "FeedbackLoopDeadLetters", "FeedbackLoopOutboxBacklog",
            "FeedbackLoopDeliveryFailures"} <= set(alerts)
    known = known_metrics()
    for name, rule in alerts.items():
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        unknown = referenced(rule["expr"]) - known
        assert not unknown, f"{name} uses metrics no service defines: {unknown}"


def test_dashboard_panels_query_known_metrics_and_do_not_overlap() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "feedbackloop.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    known = known_metrics()
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            unknown = referenced(target["expr"]) - known
            assert not unknown, f"panel {panel['title']!r} uses metrics no service defines: {unknown}"
