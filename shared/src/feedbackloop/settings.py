"""Settings every service shares. Each service adds one small class of its own with its prefix.

Environment variables (all optional; the defaults run ``make run`` on one machine):

    KAFKA_BOOTSTRAP_SERVERS         broker addresses                       127.0.0.1:9092
    KAFKA_TOPIC_PARTITIONS          partitions of each topic it creates    6
    KAFKA_REPLICATION_FACTOR        replicas of each topic it creates      1
    FEEDBACKLOOP_PROFILE            embedded | production                  embedded
    FEEDBACKLOOP_KEYS_FILE          hashed API keys with their scopes      var/keys.json
    FEEDBACKLOOP_LOG_FORMAT         json | console                         json
    FEEDBACKLOOP_LOG_LEVEL          DEBUG | INFO | WARNING | ERROR         INFO
    FEEDBACKLOOP_OUTBOX_RETENTION_DAYS  how long published events are kept for replay   30
    FEEDBACKLOOP_BROKER_CHECK_SECONDS   how often the broker is checked for lost data    15 (0 = off)
    FEEDBACKLOOP_MAX_CONCURRENT_REQUESTS  requests a service handles at once; more get 503 + Retry-After   32
                                          (<SERVICE>_MAX_CONCURRENT_REQUESTS overrides it for one service)
    FEEDBACKLOOP_HEADER_TIMEOUT_SECONDS   a request's line and headers must arrive within this             10
    FEEDBACKLOOP_BODY_TIMEOUT_SECONDS     a request's body must arrive within this (else 408)              30
    FEEDBACKLOOP_MAX_HEADER_BYTES         request line and headers together at most (else 400)             32768
    FEEDBACKLOOP_KEEP_ALIVE_SECONDS       an idle keep-alive connection is closed after this               5
    FEEDBACKLOOP_FORWARDED_ALLOW_IPS      proxies whose X-Forwarded-For/-Proto are believed                127.0.0.1

Tracing reads the standard OpenTelemetry variables (see :mod:`feedbackloop.tracing`); export is off
unless one of them asks for it:

    OTEL_EXPORTER_OTLP_ENDPOINT     send spans by OTLP over HTTP/protobuf to this collector   (unset: off)
    OTEL_TRACES_EXPORTER            otlp | console | none, comma-separated                      (unset)
    OTEL_SDK_DISABLED               true: no spans at all (trace context passed through)       false
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CommonSettings", "KafkaSettings", "ServiceSettings", "default_database_url"]


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    request_timeout_ms: int = 15_000
    idempotence: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Idempotent producer: auto asks the broker whether it grants producer ids (Apache Kafka does,"
        " the embedded broker does not)",
    )


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDBACKLOOP_", extra="ignore")

    profile: Literal["embedded", "production"] = "embedded"
    keys_file: Path = Path("var/keys.json")
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    outbox_retention_days: float = Field(default=30, gt=0)
    broker_check_seconds: float = Field(
        default=15,
        ge=0,
        description="How often a service checks that the broker still holds what it published; 0 turns the check off"
        " (Apache Kafka keeps what it acknowledged, so production turns it off)",
    )
    max_concurrent_requests: int = Field(
        default=32, ge=1, description="Requests one service handles at once (about twice its store's connection"
        " pool); beyond it a request is answered 503 with Retry-After at once (/healthz, /readyz and /metrics are"
        " never refused)",
    )
    header_timeout_seconds: float = Field(default=10, gt=0, description="A request line and headers arriving slower"
                                          " than this close the connection (408)")
    body_timeout_seconds: float = Field(default=30, gt=0, description="A request body arriving slower than this is"
                                        " answered 408")
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, description="Request line and headers together at most")
    keep_alive_seconds: int = Field(default=5, ge=1, description="An idle keep-alive connection is closed after this")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="Comma-separated proxy addresses whose X-Forwarded-For / X-Forwarded-Proto"
        " are believed (the request's scheme, so Secure cookies behind a TLS proxy); '*' believes any",
    )


def default_database_url(service: str) -> str:
    return f"sqlite+aiosqlite:///var/{service}.db"


class ServiceSettings(BaseSettings):
    """Base of each service's settings; a subclass sets ``env_prefix`` (``INGEST_`` …) and the defaults."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    auto_migrate: bool = Field(
        default=True, description="Upgrade the store's schema at start; off in production, where `make migrate` does it"
    )
    max_concurrent_requests: int | None = Field(
        default=None, ge=1, description="This service's own cap on requests in flight (e.g."
        " AGGREGATION_MAX_CONCURRENT_REQUESTS); unset: FEEDBACKLOOP_MAX_CONCURRENT_REQUESTS",
    )
    consumer_batch_size: int = Field(default=200, ge=1)
    consumer_max_attempts: int = Field(
        default=3, ge=1, description="Tries of a failing event before it is dead-lettered"
    )
    consumer_max_dead_letters_in_row: int = Field(
        default=50, ge=1, description="A consumer stalls instead of dead-lettering more than this many events in a row"
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    common: CommonSettings = Field(default_factory=CommonSettings)
