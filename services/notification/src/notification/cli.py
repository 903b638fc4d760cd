"""notification's place in the ``feedbackloop`` CLI, found through the ``feedbackloop.services`` entry point."""

from __future__ import annotations

from feedbackloop.plugins import ServicePlugin
from notification.config import NotificationSettings
from notification.store import MIGRATIONS

__all__ = ["plugin"]


plugin = ServicePlugin(
    name="notification",
    settings=NotificationSettings,
    app_factory="notification.main:create_app",
    migrations=MIGRATIONS,
)
