"""Settings from the environment: the retry schedule and the private-target policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from feedbackloop.settings import CommonSettings
from notification.config import NotificationSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFICATION_RETRY_SCHEDULE", "NOTIFICATION_ALLOW_PRIVATE_TARGETS", "NOTIFICATION_PORT",
                 "NOTIFICATION_DATABASE_URL", "FEEDBACKLOOP_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    settings = NotificationSettings()
    assert settings.port == 8004
    assert settings.database_url == "sqlite+aiosqlite:///var/notification.db"
    assert settings.schedule == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert settings.target_policy.allow_private and not settings.target_policy.https_only
    production = NotificationSettings(common=CommonSettings(profile="production"))
    assert not production.target_policy.allow_private and production.target_policy.https_only


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATION_RETRY_SCHEDULE", "0,1.5,30")
    monkeypatch.setenv("NOTIFICATION_ALLOW_PRIVATE_TARGETS", "true")
    settings = NotificationSettings(common=CommonSettings(profile="production"))
    assert settings.schedule == (0, 1.5, 30)
    assert settings.target_policy.allow_private and settings.target_policy.https_only
    monkeypatch.setenv("NOTIFICATION_ALLOW_PRIVATE_TARGETS", "false")
    assert not NotificationSettings().target_policy.allow_private


def test_a_bad_schedule_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATION_RETRY_SCHEDULE", "0,soon")
    with pytest.raises(ValidationError, match="retry schedule entry 'soon'"):
        NotificationSettings()
