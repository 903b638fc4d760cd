"""What tests/deploy needs to hold deploy/prometheus and deploy/grafana to the metrics the code registers.

The metrics are found, not listed: every module under ``shared/src`` and ``services/*/src`` that imports a metric
type from prometheus_client is imported, and its metrics are read back from prometheus_client's ``REGISTRY`` (names)
and from the metric objects themselves (label names). A metric renamed in the code and not in an alert or a panel,
or the other way round, is then a failing test instead of an alert that silently never fires.

Each check returns the problems it finds, so a test asserts an empty list and a ``*_catches_*`` test can feed it a
broken copy.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "feedbackloop.json"
APP_PORTS = {"ingest": 8001, "classification": 8002, "aggregation": 8003, "notification": 8004}
#: Series Prometheus makes itself for every target, and the labels it attaches to every scraped series.
SYNTHETIC_SERIES = {"up": frozenset({"job", "instance"})}
TARGET_LABELS = frozenset({"job", "instance"})

_DEFINES_METRICS = re.compile(r"^from prometheus_client import [^\n]*\b(Counter|Gauge|Histogram|Summary)\b", re.M)
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum"),
             "summary": ("", "_count", "_sum")}


@dataclass(frozen=True)
class Metric:
    name: str                   # the family name as registered (a counter's without ``_total``)
    type: str
    labels: tuple[str, ...]
    module: str

    @property
    def series(self) -> set[str]:
        """The names a PromQL query can select (a histogram's ``_bucket`` … , a counter's ``_total``)."""
        return {self.name + suffix for suffix in _SUFFIXES[self.type]}


def metric_modules() -> list[str]:
    """Dotted names of the project's modules that define Prometheus metrics (migrations excluded)."""
    roots = [ROOT / "shared" / "src", *sorted((ROOT / "services").glob("*/src"))]
    found = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "migrations" in path.parts or not _DEFINES_METRICS.search(path.read_text(encoding="utf-8")):
                continue
            found.append(".".join(path.relative_to(root).with_suffix("").parts))
    return found


def registered_metrics() -> dict[str, Metric]:
    """Every metric the project's modules register, by family name, read back from ``REGISTRY``."""
    owners: dict[str, tuple[str, tuple[str, ...]]] = {}
    for module_name in metric_modules():
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                # prometheus_client has no public accessor for a parent metric's label names.
                owners[value._name] = (module_name, tuple(value._labelnames))
    metrics = {}
    for family in REGISTRY.collect():
        if family.name in owners:
            module_name, labels = owners[family.name]
            metrics[family.name] = Metric(family.name, family.type, labels, module_name)
    missing = set(owners) - set(metrics)
    assert not missing, f"defined but not in prometheus_client's REGISTRY: {sorted(missing)}"
    return metrics


def series_labels(metrics: dict[str, Metric]) -> dict[str, frozenset[str]]:
    """Selectable series name → the labels it carries once scraped (``le`` on buckets, job and instance on all)."""
    table = dict(SYNTHETIC_SERIES)
    for metric in metrics.values():
        for name in metric.series:
            extra = {"le"} if name.endswith("_bucket") else set()
            table[name] = frozenset(metric.labels) | TARGET_LABELS | extra
    return table


# --- PromQL, as much of it as the checks need --------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan"}
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def selected_series(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub("", _MATCHERS.sub("", _RANGE.sub("", text)))
    return {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}


def used_labels(expr: str) -> set[str]:
    """Label names an expression groups, joins or matches on."""
    labels = set()
    for group in _GROUPING.findall(expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    for matchers in _MATCHERS.findall(expr):
        labels |= {name for name, _, _ in _MATCHER.findall(matchers)}
    return labels


def job_matchers(expr: str) -> list[tuple[str, str]]:
    """(operator, value) of every ``job`` matcher in an expression."""
    return [(op, value) for matchers in _MATCHERS.findall(expr)
            for name, op, value in _MATCHER.findall(matchers) if name == "job"]


def expression_problems(where: str, expr: str, labels_of: dict[str, frozenset[str]]) -> list[str]:
    """Metrics no module registers, and labels none of the selected metrics carries."""
    series = selected_series(expr)
    problems = [f"{where}: no service registers {name!r}" for name in sorted(series - set(labels_of))]
    carried = set().union(*(labels_of.get(name, frozenset()) for name in series)) if series else set()
    problems += [f"{where}: label {label!r} is on none of {sorted(series)}"
                 for label in sorted(used_labels(expr) - carried) if series & set(labels_of)]
    return problems


# --- the files ---------------------------------------------------------------------------------------------

def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def alert_rules(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule}


def scrape_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config.get("scrape_configs") or []}


def scrape_problems(config: dict[str, Any]) -> list[str]:
    """One job ``feedbackloop-<service>`` per service, on the compose host name and port, plain HTTP /metrics."""
    jobs, problems = scrape_jobs(config), []
    expected = {f"feedbackloop-{svc}": f"{svc}:{port}" for svc, port in APP_PORTS.items()}
    if set(jobs) != set(expected):
        problems.append(f"scrape jobs {sorted(jobs)}, expected {sorted(expected)}")
    for name, job in jobs.items():
        targets = [t for static in job.get("static_configs") or [] for t in static.get("targets") or []]
        if name in expected and targets != [expected[name]]:
            problems.append(f"{name} scrapes {targets}, expected [{expected[name]!r}]")
        if job.get("metrics_path", "/metrics") != "/metrics":
            problems.append(f"{name} scrapes {job['metrics_path']!r}, not /metrics")
        if job.get("scheme", "http") != "http":
            problems.append(f"{name}: the services serve plain HTTP")
        for static in job.get("static_configs") or []:
            clash = set(static.get("labels") or {}) & {"service"}
            if clash:
                problems.append(f"{name}: target label {sorted(clash)} would rename the metrics' own "
                                "to exported_service")
    return problems


def rule_file_problems(config: dict[str, Any], config_path: Path = PROMETHEUS_CONFIG) -> list[str]:
    """``rule_files`` (relative to the config file) loads alerts.yml and nothing that is not there."""
    entries = config.get("rule_files") or []
    resolved = [(config_path.parent / entry).resolve() for entry in entries]
    problems = [f"rule_files entry {entry!r} is not a file" for entry, path in zip(entries, resolved, strict=True)
                if not path.is_file()]
    if ALERTS.resolve() not in resolved:
        problems.append(f"rule_files {entries} does not load {ALERTS.name}")
    return problems


def job_selector_problems(rules: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every ``job`` matcher in an alert matches every scrape job (PromQL regexes are anchored)."""
    jobs, problems = sorted(scrape_jobs(config)), []
    for name, rule in alert_rules(rules).items():
        for op, value in job_matchers(rule["expr"]):
            if op == "=~":
                missed = [job for job in jobs if not re.fullmatch(value, job)]
            elif op == "=":
                missed = [] if value in jobs else [value]
            else:
                continue
            if missed:
                problems.append(f"{name}: job{op}{value!r} misses {missed}")
    return problems


def compose_problems(compose: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """A pinned prom/prometheus service that reads prometheus.yml, alerts.yml beside it, after the four apps."""
    service = compose["services"].get("prometheus")
    if service is None:
        return ["docker-compose.yml has no prometheus service"]
    problems = []
    if not re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", str(service.get("image", ""))):
        problems.append(f"prometheus image {service.get('image')!r} is not a pinned prom/prometheus:vX.Y.Z")
    flags = dict(arg.split("=", 1) for arg in service.get("command") or [] if "=" in arg)
    config_file = flags.get("--config.file", "/etc/prometheus/prometheus.yml")
    mounts: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict) and volume.get("type") == "bind":
            mounts[str(volume["target"])] = str(volume["source"])
        elif isinstance(volume, str) and volume.startswith("./"):
            source, target = volume.split(":")[:2]
            mounts[target] = source
    wanted = {config_file: PROMETHEUS_CONFIG}
    for entry in config.get("rule_files") or []:
        wanted[str(Path(config_file).parent / entry)] = PROMETHEUS_CONFIG.parent / entry
    for target, path in wanted.items():
        mounted = mounts.get(target)
        if not mounted:
            problems.append(f"prometheus mounts nothing at {target}")
        elif (ROOT / mounted).resolve() != path.resolve():
            problems.append(f"prometheus mounts {mounted} at {target}, expected {path.relative_to(ROOT)}")
    deps = service.get("depends_on") or {}
    missing = sorted(set(APP_PORTS) - set(deps))
    if missing:
        problems.append(f"prometheus does not depend on {missing}")
    return problems
