"""notification's place in the ``feedbackloop`` CLI, found through the ``feedbackloop.services`` entry point."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from feedbackloop.plugins import ServicePlugin
from notification.config import NotificationSettings
from notification.store import MIGRATIONS

__all__ = ["plugin"]


def _create_app(settings: Any) -> FastAPI:
    from notification.main import create_app  # imported when served, not each time the CLI starts

    return create_app(settings)


plugin = ServicePlugin(
    name="notification",
    settings=NotificationSettings,
    create_app=_create_app,
    migrations=MIGRATIONS,
)
