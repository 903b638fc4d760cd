"""What the CLI knows of each service: its name, settings class and migrations, found by import."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from feedbackloop.settings import ServiceSettings

SERVICES = ("ingest", "classification", "aggregation", "notification")


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    settings: ServiceSettings
    migrations: Path


def service_info(name: str) -> ServiceInfo:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    config = importlib.import_module(f"{name}.config")
    main = importlib.import_module(f"{name}.main")
    settings_cls = getattr(config, f"{name.capitalize()}Settings")
    return ServiceInfo(name=name, settings=settings_cls(), migrations=main.MIGRATIONS)
