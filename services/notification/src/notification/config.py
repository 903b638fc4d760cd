"""Notification settings (prefix ``NOTIFICATION_``); see the README's configuration table.

    NOTIFICATION_DATABASE_URL            the store                        sqlite+aiosqlite:///var/notification.db
    NOTIFICATION_PORT                    HTTP port                        8004
    NOTIFICATION_RETRY_SCHEDULE          seconds before each attempt      0,5,300,1800,7200,18000,36000,36000
    NOTIFICATION_RETRY_JITTER            ± fraction of each delay         0.1
    NOTIFICATION_ALLOW_PRIVATE_TARGETS   loopback webhook targets too     true when embedded, false in production
    NOTIFICATION_DELIVERY_TIMEOUT        seconds one POST may take        10
    NOTIFICATION_DELIVERY_CONCURRENCY    POSTs in flight at once          16
    NOTIFICATION_DELIVERY_POLL_INTERVAL  seconds between queue looks      0.25
    NOTIFICATION_MAX_BODY_BYTES          largest request body             262144
    NOTIFICATION_DASHBOARD_URL           link in Slack and email messages http://127.0.0.1:8003/
    NOTIFICATION_SMTP_HOST / _PORT       the SMTP server for email        127.0.0.1 / 25
    NOTIFICATION_SMTP_FROM               the From: of every email         feedbackloop@localhost
    NOTIFICATION_SMTP_USERNAME / _PASSWORD  SMTP AUTH when both are set    unset
    NOTIFICATION_SMTP_STARTTLS           upgrade with STARTTLS            false
    NOTIFICATION_SMTP_TLS                implicit TLS (port 465 style)    false
    NOTIFICATION_SMTP_TIMEOUT            seconds one SMTP send may take   10
    NOTIFICATION_PAUSE_AFTER_FAILURES    failed deliveries in a row that pause a channel (0: never)   5
    NOTIFICATION_EPISODE_GAP_S           insights of one type+theme this close are one episode    3600
    NOTIFICATION_DIGEST_GRACE_S          a digest goes out this long after its window ends   1
    NOTIFICATION_RULES_FILE              YAML teams and rules upserted by name at start   unset
    NOTIFICATION_ZENDESK_URL             the Zendesk site, e.g. https://acme.zendesk.com  unset: zendesk channels off
    NOTIFICATION_ZENDESK_EMAIL / _TOKEN  the agent and API token replies are posted as   unset
    NOTIFICATION_INTERCOM_TOKEN          an Intercom access token                         unset: intercom channels off
    NOTIFICATION_INTERCOM_ADMIN_ID       the admin replies are posted as                  unset
    NOTIFICATION_INTERCOM_API_URL        Intercom's REST API                              https://api.intercom.io
    TRACKER_*                            tracker channels (feedbackloop.trackers.TrackerSettings)   unset: off

A rule naming a support tool or tracker that is not configured is refused when saved, naming the variables.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from feedbackloop.settings import ServiceSettings, default_database_url
from feedbackloop.trackers import TrackerSettings, configured_trackers
from notification.domain.backoff import DEFAULT_SCHEDULE, parse_schedule
from notification.domain.channel_rules import Integrations
from notification.domain.targets import TargetPolicy

#: The TRACKER_* variables each tracker needs (what :func:`feedbackloop.trackers.tracker_client` checks).
_TRACKER_VARIABLES = {"github": ("TRACKER_GITHUB_TOKEN",),
                      "jira": ("TRACKER_JIRA_URL", "TRACKER_JIRA_EMAIL", "TRACKER_JIRA_TOKEN"),
                      "linear": ("TRACKER_LINEAR_API_KEY",)}


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore")

    database_url: str = default_database_url("notification")
    port: int = 8004
    retry_schedule: str = Field(default=DEFAULT_SCHEDULE,
                                description="Seconds to wait before each attempt, comma-separated; its length is "
                                            "the number of attempts")
    retry_jitter: float = Field(default=0.1, ge=0, le=1, description="± fraction applied to each scheduled delay")
    allow_private_targets: bool | None = Field(
        default=None, description="Allow webhooks to loopback addresses and local names (and plain http to "
                                  "them) besides globally routable ones; link-local, private and metadata "
                                  "addresses are refused either way. Unset: on in the embedded profile, off in "
                                  "production")
    delivery_timeout: float = Field(default=10.0, gt=0, description="Seconds one webhook POST may take")
    delivery_concurrency: int = Field(default=16, ge=1, description="Webhook POSTs in flight at once")
    delivery_poll_interval: float = Field(default=0.25, gt=0, description="Seconds between looks for due deliveries")
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest request body accepted")
    dashboard_url: str = Field(default="http://127.0.0.1:8003/", description="The link in Slack and email messages")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "feedbackloop@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS (required)")
    smtp_tls: bool = Field(default=False, description="Connect with implicit TLS (SMTPS, usually port 465)")
    smtp_timeout: float = Field(default=10.0, gt=0)
    pause_after_failures: int = Field(default=5, ge=0,
                                      description="Failed deliveries in a row that pause a channel; 0 never pauses")
    episode_gap_s: float = Field(default=3600.0, ge=0, description="Insights of one type+theme this close together "
                                                                   "are one episode, sent once")
    digest_grace_s: float = Field(default=1.0, ge=0, description="A digest goes out this long after its window ends")
    rules_file: Path | None = Field(default=None, description="YAML teams and rules, upserted by name at start")
    zendesk_url: str | None = Field(default=None, description="The Zendesk site replies are posted to, e.g. "
                                                              "https://acme.zendesk.com")
    zendesk_email: str | None = Field(default=None, description="The Zendesk agent replies are posted as")
    zendesk_token: SecretStr | None = Field(default=None, description="That agent's Zendesk API token")
    intercom_token: SecretStr | None = Field(default=None, description="An Intercom access token")
    intercom_admin_id: str | None = Field(default=None, description="The Intercom admin replies are posted as")
    intercom_api_url: str = Field(default="https://api.intercom.io", description="Intercom's REST API")
    trackers: TrackerSettings = Field(default_factory=TrackerSettings,
                                      description="Tracker channels' credentials (TRACKER_*)")

    @field_validator("retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.retry_schedule)

    @property
    def integrations(self) -> Integrations:
        """Which vendors are configured: for each, the variables still unset (a rule naming one is refused)."""
        missing: dict[str, tuple[str, ...]] = {
            "zendesk": tuple(name for name, value in (("NOTIFICATION_ZENDESK_URL", self.zendesk_url),
                                                      ("NOTIFICATION_ZENDESK_EMAIL", self.zendesk_email),
                                                      ("NOTIFICATION_ZENDESK_TOKEN", self.zendesk_token)) if not value),
            "intercom": tuple(name for name, value in (("NOTIFICATION_INTERCOM_TOKEN", self.intercom_token),
                                                       ("NOTIFICATION_INTERCOM_ADMIN_ID", self.intercom_admin_id))
                              if not value),
        }
        ready = set(configured_trackers(self.trackers))
        for tracker, variables in _TRACKER_VARIABLES.items():
            if tracker not in ready:
                missing[tracker] = tuple(v for v in variables if not getattr(self.trackers, v[8:].lower())) \
                    or variables
        return Integrations(missing)

    @property
    def target_policy(self) -> TargetPolicy:
        production = self.common.profile == "production"
        allow = self.allow_private_targets if self.allow_private_targets is not None else not production
        return TargetPolicy(https_only=production, allow_private=allow)
