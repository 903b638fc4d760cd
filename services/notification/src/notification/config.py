"""Notification settings (prefix ``NOTIFICATION_``); see the README's configuration table.

    NOTIFICATION_DATABASE_URL            the store                        sqlite+aiosqlite:///var/notification.db
    NOTIFICATION_PORT                    HTTP port                        8004
    NOTIFICATION_RETRY_SCHEDULE          seconds before each attempt      0,5,300,1800,7200,18000,36000,36000
    NOTIFICATION_RETRY_JITTER            ± fraction of each delay         0.1
    NOTIFICATION_ALLOW_PRIVATE_TARGETS   loopback/private webhook URLs    true when embedded, false in production
    NOTIFICATION_DELIVERY_TIMEOUT        seconds one POST may take        10
    NOTIFICATION_DELIVERY_CONCURRENCY    POSTs in flight at once          16
    NOTIFICATION_DELIVERY_POLL_INTERVAL  seconds between queue looks      0.25
    NOTIFICATION_MAX_BODY_BYTES          largest request body             262144
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from feedbackloop.settings import ServiceSettings, default_database_url
from notification.domain.backoff import DEFAULT_SCHEDULE, parse_schedule
from notification.domain.targets import TargetPolicy


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore")

    database_url: str = default_database_url("notification")
    port: int = 8004
    retry_schedule: str = Field(default=DEFAULT_SCHEDULE,
                                description="Seconds to wait before each attempt, comma-separated; its length is "
                                            "the number of attempts")
    retry_jitter: float = Field(default=0.1, ge=0, le=1, description="± fraction applied to each scheduled delay")
    allow_private_targets: bool | None = Field(
        default=None, description="Allow webhooks to loopback/private addresses (and plain http to them); "
                                  "unset: allowed in the embedded profile, refused in production")
    delivery_timeout: float = Field(default=10.0, gt=0, description="Seconds one webhook POST may take")
    delivery_concurrency: int = Field(default=16, ge=1, description="Webhook POSTs in flight at once")
    delivery_poll_interval: float = Field(default=0.25, gt=0, description="Seconds between looks for due deliveries")
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest request body accepted")

    @field_validator("retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.retry_schedule)

    @property
    def target_policy(self) -> TargetPolicy:
        production = self.common.profile == "production"
        allow = self.allow_private_targets if self.allow_private_targets is not None else not production
        return TargetPolicy(https_only=production, allow_private=allow)
