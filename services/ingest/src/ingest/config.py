"""Ingest settings (prefix ``INGEST_``; see the README's configuration table), and where the pseudonym key comes from.

The pseudonym key (:func:`load_pseudonymizer`; the pseudonyms themselves are :mod:`ingest.domain.pseudonym`):
``INGEST_PSEUDONYM_KEY`` when set (a secret like the webhook ones: never logged). Otherwise, in the embedded
profile, a key generated once into ``INGEST_PSEUDONYM_KEY_FILE`` (default: ``ingest-pseudonym.key`` beside the
SQLite store, i.e. ``var/``), created with mode 0600 and read back on every later start, so ``make run`` needs no
set-up and pseudonyms stay stable across restarts. The production profile refuses to start without the variable:
a key generated on one replica's disk would give each replica different pseudonyms.

Failures: :class:`PseudonymKeyMissing` (production without a key), ``ValueError`` (a key under 16 bytes), OSError
(the key file cannot be read or created).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url

from feedbackloop.settings import ServiceSettings, default_database_url
from ingest.domain.connectors import ConnectorOptions
from ingest.domain.pseudonym import MIN_KEY_BYTES, Pseudonymizer
from ingest.domain.redact import phone_regions

__all__ = ["IngestSettings", "PseudonymKeyMissing", "load_pseudonymizer"]


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    database_url: str = default_database_url("ingest")
    port: int = 8001
    max_batch_items: int = Field(default=1000, ge=1, description="Items one POST /v1/feedback may carry")
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Largest request body accepted")
    # Concurrent posts are what group commit stores together (one transaction for up to 256): a cap of 256 lets
    # a busy client pool fill a group, and a post costs the event loop well under a millisecond.
    max_concurrent_requests: int | None = Field(default=256, ge=1, description="Requests handled at once")

    # One signing secret per webhook source: INGEST_<SOURCE>_SECRET. A source without one rejects its webhooks.
    zendesk_secret: SecretStr | None = None
    intercom_secret: SecretStr | None = None
    freshdesk_secret: SecretStr | None = None
    helpscout_secret: SecretStr | None = None
    github_secret: SecretStr | None = None
    typeform_secret: SecretStr | None = None
    delighted_secret: SecretStr | None = None
    canny_secret: SecretStr | None = None
    slack_secret: SecretStr | None = None
    standard_secret: SecretStr | None = None
    # The trackers' issue changes (tracker.v1): Jira's X-Hub-Signature and Linear's Linear-Signature secrets.
    jira_secret: SecretStr | None = None
    linear_secret: SecretStr | None = None

    github_repositories: str = Field(default="", description="Comma-separated owner/repo allow-list; empty: all")
    slack_channels: str = Field(default="", description="Comma-separated Slack channel ids to take; empty: all")
    webhook_tolerance_seconds: int = Field(default=300, ge=1, description="Replay window of signed timestamps")
    duplicate_window_hours: float = Field(default=24, ge=0, description="Same author + text within it: near-duplicate")
    source_rate_per_minute: int = Field(default=3000, ge=1, description="Webhook deliveries per source per minute")
    key_rate_per_minute: int = Field(
        default=3000, ge=1, description="POST /v1/feedback requests per API key per minute"
    )
    group_commit_max_items: int = Field(
        default=256, ge=1, description="Most items concurrent requests share one transaction with (group commit)"
    )
    group_commit_linger_ms: float = Field(
        default=2.0, ge=0, le=1000, description="How long a request waits for others to share its transaction"
    )

    # Redaction of what leaves ingest (README: "Redaction and pseudonyms").
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC pseudonyms of author, customer and item ids and of email_hash; unset: generated "
        "once into pseudonym_key_file in the embedded profile, refused in production",
    )
    pseudonym_key_file: Path | None = Field(
        default=None, description="Where the embedded profile keeps its generated key; unset: beside the SQLite store"
    )
    phone_regions: str = Field(
        default="US,GB,DE,FR",
        description="Comma-separated regions whose national-format phone numbers are redacted; the first is the "
        "default region. International (+CC) numbers are redacted whatever the list",
    )

    # Retention of the raw request copy (feedback_items.raw); the redacted item stays.
    raw_retention_days: float = Field(
        default=0, ge=0, description="Blank the raw request copy of items received longer ago than this; 0: keep"
    )
    raw_retention_interval_seconds: float = Field(
        default=3600, gt=0, description="How often the retention worker looks for raw copies to blank"
    )
    raw_retention_batch: int = Field(
        default=500, ge=1, description="Items blanked per transaction: each batch is short, so the store is never "
        "held for long"
    )

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, value: str) -> str:
        phone_regions(value)
        return value

    @property
    def phone_region_list(self) -> tuple[str, ...]:
        return phone_regions(self.phone_regions)

    def pseudonym_key_path(self) -> Path:
        """``pseudonym_key_file``, else ``ingest-pseudonym.key`` in the SQLite store's folder, else in ``var/``."""
        if self.pseudonym_key_file is not None:
            return self.pseudonym_key_file
        folder = Path("var")
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            folder = Path(url.database).parent
        return folder / "ingest-pseudonym.key"

    @property
    def raw_retention(self) -> timedelta | None:
        return timedelta(days=self.raw_retention_days) if self.raw_retention_days > 0 else None

    def secret_for(self, source: str) -> str | None:
        """The configured secret of ``source``, or None (also for an empty string)."""
        value = getattr(self, f"{source}_secret", None)
        secret = value.get_secret_value() if isinstance(value, SecretStr) else None
        return secret or None

    @property
    def duplicate_window(self) -> timedelta:
        return timedelta(hours=self.duplicate_window_hours)

    def connector_options(self) -> ConnectorOptions:
        return ConnectorOptions(
            tolerance=timedelta(seconds=self.webhook_tolerance_seconds),
            github_repositories=frozenset(r.strip() for r in self.github_repositories.split(",") if r.strip()),
            slack_channels=frozenset(c.strip() for c in self.slack_channels.split(",") if c.strip()),
        )


class PseudonymKeyMissing(RuntimeError):
    """The production profile has no ``INGEST_PSEUDONYM_KEY``."""


def load_pseudonymizer(settings: IngestSettings) -> Pseudonymizer:
    """The configured key's pseudonymizer; in the embedded profile, the key file's (created on first use)."""
    configured = settings.pseudonym_key.get_secret_value() if settings.pseudonym_key is not None else ""
    if configured:
        return Pseudonymizer(configured.encode())
    if settings.common.profile == "production":
        raise PseudonymKeyMissing(
            "INGEST_PSEUDONYM_KEY is not set: the production profile needs the key that pseudonymises author, "
            f"customer and item ids (at least {MIN_KEY_BYTES} bytes, the same on every replica)"
        )
    return Pseudonymizer(_key_file(settings.pseudonym_key_path()))


def _key_file(path: Path) -> bytes:
    """The key in ``path``, created once with mode 0600 (two copies starting together end with the same key)."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # written whole under a private name, then linked into place: a copy starting meanwhile never reads half a key
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another copy created it first: use that one
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    key = path.read_text().strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path} holds no usable pseudonym key (at least {MIN_KEY_BYTES} bytes); remove it to "
                         "have one generated, or set INGEST_PSEUDONYM_KEY")
    return key
