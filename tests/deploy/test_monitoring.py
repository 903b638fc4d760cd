"""The Grafana dashboard and the Prometheus alert rules in deploy/ are well formed and name real metrics.

"Real" means registered by the code: tests/deploy/prometheus_checks.py imports every module that defines a metric
and reads the names and labels back from prometheus_client, so nothing here lists metric names by hand.
"""

from __future__ import annotations

import json

import pytest

from tests.deploy.prometheus_checks import (
    ALERTS,
    DASHBOARD,
    Metric,
    alert_rules,
    expression_problems,
    load_yaml,
    registered_metrics,
    series_labels,
)

#: Metrics still without the ``service`` label: ingest's own, labelled by source. Adding it means changing their
#: call sites in services/ingest/src/ingest/api/webhooks.py and group_commit.py (issue 17).
WITHOUT_SERVICE_LABEL: set[str] = set()


@pytest.fixture(scope="module")
def metrics() -> dict[str, Metric]:
    return registered_metrics()


def naming_problems(metrics: dict[str, Metric]) -> list[str]:
    """The convention of feedbackloop.metrics: ``feedbackloop_`` prefix, ``service`` first, ``_duration_seconds``."""
    problems = []
    for name, metric in sorted(metrics.items()):
        if not name.startswith("feedbackloop_"):
            problems.append(f"{name} ({metric.module}) lacks the feedbackloop_ prefix")
        if name not in WITHOUT_SERVICE_LABEL and metric.labels[:1] != ("service",):
            problems.append(f"{name} ({metric.module}) does not have `service` as its first label: {metric.labels}")
        if metric.type == "histogram" and name.endswith("_seconds") and not name.endswith("_duration_seconds"):
            problems.append(f"{name} ({metric.module}) is a duration: name it …_duration_seconds")
    problems += [f"{name} is listed in WITHOUT_SERVICE_LABEL but has the label now, or is gone: drop it"
                 for name in sorted(WITHOUT_SERVICE_LABEL)
                 if name not in metrics or "service" in metrics[name].labels]
    return problems


def test_every_metric_follows_the_naming_convention(metrics: dict[str, Metric]) -> None:
    assert naming_problems(metrics) == []


def test_naming_check_catches_the_old_notification_and_latency_names(metrics: dict[str, Metric]) -> None:
    old = {"notification_delivery_attempts": Metric("notification_delivery_attempts", "counter", ("outcome",), "x"),
           "feedbackloop_http_request_seconds": Metric("feedbackloop_http_request_seconds", "histogram",
                                                       ("service", "method", "route"), "x")}
    assert len(naming_problems({**metrics, **old})) == 3


def test_alert_rules_cover_lag_dlq_outbox_and_deliveries_with_known_metrics(metrics: dict[str, Metric]) -> None:
    alerts = alert_rules(load_yaml(ALERTS))
    assert {"FeedbackLoopConsumerLagGrowing", "FeedbackLoopDeadLetters", "FeedbackLoopOutboxBacklog",
            "FeedbackLoopDeliveryFailures"} <= set(alerts)
    labels_of = series_labels(metrics)
    problems = []
    for name, rule in alerts.items():
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        problems += expression_problems(name, rule["expr"], labels_of)
    assert problems == []


def test_dashboard_panels_query_known_metrics_and_do_not_overlap(metrics: dict[str, Metric]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    labels_of = series_labels(metrics)
    problems = []
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            problems += expression_problems(f"panel {panel['title']!r}", target["expr"], labels_of)
    assert problems == []


def test_expression_check_catches_an_unknown_metric_and_a_label_it_lacks(metrics: dict[str, Metric]) -> None:
    labels_of = series_labels(metrics)
    assert expression_problems("x", "sum(rate(notification_delivery_attempts_total[5m]))", labels_of)
    assert expression_problems("x", "sum by (topic) (feedbackloop_outbox_backlog)", labels_of)
    assert expression_problems("x", 'feedbackloop_outbox_backlog{topic="a"} > 1e-9', labels_of)
    assert expression_problems("x", "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))", labels_of)
    assert expression_problems(
        "x", "histogram_quantile(0.99, sum by (service, le) (rate(feedbackloop_http_request_duration_seconds_bucket"
        "[5m])))", labels_of) == []
