"""Static checks of the Kubernetes manifests in deploy/k8s/.

No cluster runs here: every core resource is validated against the Kubernetes OpenAPI schemas shipped in the
``kubernetes-validate`` package (offline), and each check below is a function returning the problems it finds;
the ``*_catches_*`` tests feed a checker a broken copy to show that it does fail. Strimzi ``KafkaTopic``
resources (a CRD the schema package does not know) get structural checks against the topic registry.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from feedbackloop.contracts.topics import TOPICS
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop.trackers import TrackerSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
APP_PORTS = {"ingest": 8001, "classification": 8002, "aggregation": 8003, "notification": 8004}
CONSUMED = {"classification": ["feedback.raw.v1"], "aggregation": ["feedback.classified.v1"],
            "notification": ["feedback.classified.v1", "insights.v1"]}
KUBERNETES_VERSION = "1.30.0"
DAY_MS = 86_400_000


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


@pytest.fixture(scope="module")
def documents() -> dict[str, list[dict[str, Any]]]:
    return {path.name: load(path.name) for path in sorted(K8S.glob("*.yaml"))}


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def settings_classes() -> dict[str, type[Any]]:
    from aggregation.config import AggregationSettings
    from classification.config import ClassificationSettings
    from ingest.config import IngestSettings
    from notification.config import NotificationSettings

    return {"KAFKA_": KafkaSettings, "FEEDBACKLOOP_": CommonSettings, "INGEST_": IngestSettings,
            "CLASSIFICATION_": ClassificationSettings, "AGGREGATION_": AggregationSettings,
            "NOTIFICATION_": NotificationSettings, "TRACKER_": TrackerSettings}


def unknown_settings(names: list[str]) -> list[str]:
    """Environment variable names that no settings class reads (a typo reads as a silent default)."""
    problems = []
    for name in names:
        prefix = next((p for p in settings_classes() if name.startswith(p)), None)
        if prefix is None or name[len(prefix):].lower() not in settings_classes()[prefix].model_fields:
            problems.append(f"{name} is not a setting of any service")
    return problems


def schema_problems(doc: dict[str, Any]) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}"]
    return []


def deployment_problems(docs: list[dict[str, Any]], app: str) -> list[str]:
    problems: list[str] = []
    deployment = find(docs, "Deployment", app)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    port = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if port.get("http") != APP_PORTS[app]:
        problems.append(f"{app}: container port 'http' is {port.get('http')}, the service listens on {APP_PORTS[app]}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        if (get.get("path"), get.get("port")) != (path, "http"):
            problems.append(f"{app}: {probe} must GET {path} on port http, not {get}")
    resources = container.get("resources", {})
    for kind in ("cpu", "memory"):
        if kind not in resources.get("requests", {}):
            problems.append(f"{app}: no {kind} request (the HPA and the scheduler need it)")
    if "memory" not in resources.get("limits", {}):
        problems.append(f"{app}: no memory limit")
    env = {e["name"]: e for e in container.get("env", [])}
    prefix = app.upper()
    url = env.get(f"{prefix}_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef")
    if not url:
        problems.append(f"{app}: {prefix}_DATABASE_URL must come from a Secret")
    if env.get(f"{prefix}_PORT", {}).get("value") != str(APP_PORTS[app]):
        problems.append(f"{app}: {prefix}_PORT must be {APP_PORTS[app]}")
    if env.get(f"{prefix}_HOST", {}).get("value") != "0.0.0.0":
        problems.append(f"{app}: {prefix}_HOST must be 0.0.0.0 to be reachable from the kubelet")
    if env.get(f"{prefix}_AUTO_MIGRATE", {}).get("value") != "false":
        problems.append(f"{app}: {prefix}_AUTO_MIGRATE must be false (migrate with the Job, not on every start)")
    problems += unknown_settings(list(env))
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    if not security.get("runAsNonRoot") or security.get("runAsUser") != 10001:
        problems.append(f"{app}: must run as the image's non-root user 10001")
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    keys_file = Path(find(docs, "ConfigMap", "feedbackloop-config")["data"]["FEEDBACKLOOP_KEYS_FILE"])
    keys_volume = next((n for n, path in mounts.items() if Path(path) == keys_file.parent), None)
    keys_secret = volumes.get(keys_volume or "", {}).get("secret", {}).get("secretName")
    if keys_volume is None or keys_secret != "feedbackloop-api-keys":
        problems.append(f"{app}: the API-key Secret must be mounted at {keys_file.parent}")
    if pod.get("terminationGracePeriodSeconds", 30) < 30:
        problems.append(f"{app}: give SIGTERM time to finish the batch in hand (grace >= 30 s)")
    return problems


def availability_problems(docs: list[dict[str, Any]], app: str) -> list[str]:
    problems: list[str] = []
    labels = find(docs, "Deployment", app)["spec"]["template"]["metadata"]["labels"]
    pdb = find(docs, "PodDisruptionBudget", app)["spec"]
    if not set(pdb["selector"]["matchLabels"].items()) <= set(labels.items()):
        problems.append(f"{app}: the PodDisruptionBudget selects no pod of the Deployment")
    hpa = find(docs, "HorizontalPodAutoscaler", app)["spec"]
    if hpa["scaleTargetRef"] != {"apiVersion": "apps/v1", "kind": "Deployment", "name": app}:
        problems.append(f"{app}: the HPA does not scale the Deployment")
    if not any(m.get("resource", {}).get("name") == "cpu" for m in hpa.get("metrics", [])):
        problems.append(f"{app}: the HPA has no CPU metric")
    if hpa.get("minReplicas", 1) < 2 or pdb.get("minAvailable", 0) >= hpa.get("minReplicas", 1):
        problems.append(f"{app}: minReplicas must be >= 2 and above the PDB's minAvailable, or a drain blocks")
    partitions = {t["spec"]["topicName"]: t["spec"]["partitions"] for t in load("topics.yaml")}
    for topic in CONSUMED.get(app, []):
        if hpa["maxReplicas"] > partitions[topic]:
            problems.append(f"{app}: maxReplicas {hpa['maxReplicas']} > {partitions[topic]} partitions of {topic}")
    return problems


def topic_problems(topics: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    wanted = {t.name for t in TOPICS} | {f"{t.name}.dlq" for t in TOPICS}
    have = [t["spec"]["topicName"] for t in topics]
    if sorted(have) != sorted(wanted):
        problems.append(f"KafkaTopics {sorted(have)} != the registry's topics and DLQs {sorted(wanted)}")
    retention_days = CommonSettings().outbox_retention_days
    for t in topics:
        name, spec = t["spec"]["topicName"], t["spec"]
        config = spec.get("config", {})
        if t["apiVersion"] != "kafka.strimzi.io/v1beta2" or "strimzi.io/cluster" not in t["metadata"]["labels"]:
            problems.append(f"{name}: not a Strimzi v1beta2 KafkaTopic of a named cluster")
        if spec.get("replicas", 0) < 3 or not 1 < config.get("min.insync.replicas", 0) < spec["replicas"]:
            problems.append(f"{name}: replicas >= 3 and 1 < min.insync.replicas < replicas (survive one broker)")
        if spec.get("partitions", 0) < (1 if name.endswith(".dlq") else 6):
            problems.append(f"{name}: too few partitions ({spec.get('partitions')})")
        if config.get("compression.type") not in ("zstd", "lz4", "snappy", "gzip", "producer"):
            problems.append(f"{name}: no compression.type")
        if config.get("retention.ms", 0) < retention_days * DAY_MS:
            problems.append(f"{name}: retention.ms below the {retention_days}-day outbox retention")
    raw = next((t for t in topics if t["spec"]["topicName"] == "feedback.raw.v1"), None)
    if raw is not None and raw["spec"]["config"]["retention.ms"] < 90 * DAY_MS:
        problems.append("feedback.raw.v1: keep raw feedback >= 90 days, long enough to replay a re-classification")
    return problems


def test_core_resources_pass_the_kubernetes_schemas(documents: dict[str, list[dict[str, Any]]]) -> None:
    problems = [p for name, docs in documents.items() if name != "kustomization.yaml"
                for d in docs if not d["apiVersion"].startswith("kafka.strimzi.io") for p in schema_problems(d)]
    assert problems == []


def test_the_schema_check_catches_a_misspelled_field(documents: dict[str, list[dict[str, Any]]]) -> None:
    broken = copy.deepcopy(find(documents["ingest.yaml"], "Deployment", "ingest"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    assert schema_problems(broken)


@pytest.mark.parametrize("app", sorted(APP_PORTS))
def test_each_service_has_probes_resources_secrets_and_a_non_root_user(
    documents: dict[str, list[dict[str, Any]]], app: str
) -> None:
    assert deployment_problems(documents[f"{app}.yaml"] + documents["config.yaml"], app) == []


@pytest.mark.parametrize("app", sorted(APP_PORTS))
def test_each_service_has_a_disruption_budget_and_an_autoscaler(
    documents: dict[str, list[dict[str, Any]]], app: str
) -> None:
    assert availability_problems(documents[f"{app}.yaml"], app) == []


def test_the_deployment_check_catches_a_wrong_probe_and_a_typo_in_a_setting(
    documents: dict[str, list[dict[str, Any]]]
) -> None:
    docs = copy.deepcopy(documents["classification.yaml"]) + documents["config.yaml"]
    container = find(docs, "Deployment", "classification")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["path"] = "/healthz"
    container["env"].append({"name": "CLASSIFICATION_BATCH_SIZ", "value": "10"})
    problems = deployment_problems(docs, "classification")
    assert any("readinessProbe" in p for p in problems) and any("BATCH_SIZ" in p for p in problems), problems


def test_the_config_map_and_example_secrets_name_only_real_settings(
    documents: dict[str, list[dict[str, Any]]]
) -> None:
    config = find(documents["config.yaml"], "ConfigMap", "feedbackloop-config")["data"]
    assert unknown_settings(list(config)) == []
    assert config["FEEDBACKLOOP_PROFILE"] == "production"
    secrets = documents["secrets.example.yaml"]
    webhooks = find(secrets, "Secret", "feedbackloop-ingest-webhooks")["stringData"]
    assert unknown_settings(list(webhooks)) == []
    from ingest.config import IngestSettings

    sources = {f"INGEST_{f.upper()}" for f in IngestSettings.model_fields if f.endswith("_secret")}
    assert set(webhooks) == sources, "one webhook secret per source ingest accepts"
    pseudonym = find(secrets, "Secret", "feedbackloop-ingest-pseudonym")["stringData"]
    assert list(pseudonym) == ["INGEST_PSEUDONYM_KEY"], "ingest's production profile refuses to start without it"
    for name in ("feedbackloop-notification-smtp", "feedbackloop-notification-support", "feedbackloop-trackers"):
        assert unknown_settings(list(find(secrets, "Secret", name)["stringData"])) == [], name
    keys = json.loads(find(secrets, "Secret", "feedbackloop-api-keys")["stringData"]["keys.json"])
    assert isinstance(keys, dict)
    for app in APP_PORTS:
        url = find(secrets, "Secret", f"feedbackloop-{app}-db")["stringData"]["url"]
        assert url.startswith("postgresql+asyncpg://"), f"{app}: the store URL needs the asyncpg driver"


def test_topics_match_the_registry_with_replication_retention_and_compression(
    documents: dict[str, list[dict[str, Any]]]
) -> None:
    assert topic_problems(documents["topics.yaml"]) == []


def test_the_topic_check_catches_a_missing_dlq_and_a_short_raw_retention(
    documents: dict[str, list[dict[str, Any]]]
) -> None:
    topics = copy.deepcopy([t for t in documents["topics.yaml"] if t["spec"]["topicName"] != "insights.v1.dlq"])
    next(t for t in topics if t["spec"]["topicName"] == "feedback.raw.v1")["spec"]["config"]["retention.ms"] = DAY_MS
    problems = topic_problems(topics)
    assert any("insights.v1.dlq" in p for p in problems) and any("90 days" in p for p in problems), problems


def test_migrate_jobs_run_the_migrate_command_on_each_store(documents: dict[str, list[dict[str, Any]]]) -> None:
    for app in APP_PORTS:
        job = find(documents["migrate-jobs.yaml"], "Job", f"{app}-migrate")["spec"]["template"]["spec"]
        [container] = job["containers"]
        assert container["command"] == ["feedbackloop", "migrate", app]
        assert container["env"][0]["name"] == f"{app.upper()}_DATABASE_URL"
        image = find(documents[f"{app}.yaml"], "Deployment", app)["spec"]["template"]["spec"]["containers"][0]["image"]
        assert container["image"] == image, f"{app}: migrate with the image that will run"


def test_kustomization_lists_every_manifest_but_the_example_secrets_and_the_jobs(
    documents: dict[str, list[dict[str, Any]]]
) -> None:
    [kustomization] = documents["kustomization.yaml"]
    expected = sorted(set(documents) - {"kustomization.yaml", "secrets.example.yaml", "migrate-jobs.yaml"})
    assert sorted(kustomization["resources"]) == expected
