"""deploy/prometheus/prometheus.yml scrapes the four services, loads alerts.yml, and compose runs it.

The structural checks always run (they catch drift between the scrape config, the alert rules, the compose file
and the metrics the code registers). promtool, when on PATH (Debian/Ubuntu: ``apt-get install
--no-install-recommends prometheus``), also checks both files the way Prometheus itself will read them.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.prometheus_checks import (
    ALERTS,
    PROMETHEUS_CONFIG,
    ROOT,
    compose_problems,
    job_selector_problems,
    load_yaml,
    rule_file_problems,
    scrape_problems,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not on PATH (Debian package `prometheus`)")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load_yaml(PROMETHEUS_CONFIG)


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    return load_yaml(ALERTS)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker-compose.yml")


def test_scrape_config_has_one_job_per_service_on_its_compose_port(config: dict[str, Any]) -> None:
    assert scrape_problems(config) == []


def test_scrape_config_loads_the_alert_rules(config: dict[str, Any]) -> None:
    assert rule_file_problems(config) == []


def test_alerts_job_selectors_match_every_scrape_job(rules: dict[str, Any], config: dict[str, Any]) -> None:
    assert job_selector_problems(rules, config) == []


def test_compose_runs_prometheus_with_the_config_and_the_rules(compose: dict[str, Any], config: dict[str, Any]) -> None:
    assert compose_problems(compose, config) == []


def test_compose_file_says_it_needs_compose_v2() -> None:
    head = (ROOT / "docker-compose.yml").read_text().split("\nservices:", 1)[0]
    assert "Compose v2" in head and "create_host_path" in head


# --- the checks can fail ----------------------------------------------------------------------------------

def test_scrape_check_catches_a_renamed_job_a_wrong_port_and_a_service_label(config: dict[str, Any]) -> None:
    broken = copy.deepcopy(config)
    jobs = broken["scrape_configs"]
    jobs[0]["job_name"] = "ingest"
    jobs[1]["static_configs"][0]["targets"] = ["classification:9002"]
    jobs[2]["static_configs"][0]["labels"] = {"service": "aggregation"}
    problems = scrape_problems(broken)
    assert len(problems) == 3, problems


def test_rule_file_check_catches_a_missing_rules_file(config: dict[str, Any]) -> None:
    assert rule_file_problems({**config, "rule_files": ["rules/alerts.yml"]})
    assert rule_file_problems({**config, "rule_files": []})


def test_job_selector_check_catches_a_regex_that_misses_a_job(rules: dict[str, Any], config: dict[str, Any]) -> None:
    broken = copy.deepcopy(rules)
    rule = next(r for g in broken["groups"] for r in g["rules"] if r["alert"] == "FeedbackLoopServiceDown")
    rule["expr"] = 'up{job=~"feedbackloop-(ingest|classification)"} == 0'
    assert job_selector_problems(broken, config) == [
        "FeedbackLoopServiceDown: job=~'feedbackloop-(ingest|classification)' misses "
        "['feedbackloop-aggregation', 'feedbackloop-notification']"]


def test_compose_check_catches_an_unmounted_rules_file_and_a_missing_dependency(
    compose: dict[str, Any], config: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    service = broken["services"]["prometheus"]
    service["volumes"] = [v for v in service["volumes"] if "alerts" not in str(v)]
    del service["depends_on"]["notification"]
    service["image"] = "prom/prometheus:latest"
    assert len(compose_problems(broken, config)) == 3


# --- promtool, when installed -----------------------------------------------------------------------------

def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules_it_loads() -> None:
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout, result.stdout


@needs_promtool
def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "alerts.yml"
    broken.write_text(ALERTS.read_text().replace("> 500", "> > 500", 1))
    assert promtool("check", "rules", str(broken)).returncode != 0
