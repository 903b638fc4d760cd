"""Each service's OpenAPI document, generated from its app factory without starting a server, a broker or a store.

``create_app()`` builds no engine and no client (the lifespan does), so ``app.openapi()`` is all it takes.
Run as a script it writes ``<service>.openapi.json`` into a folder (``.ci/validate`` hands them to
openapi-spec-validator)::

    .venv/bin/python tests/api/openapi_documents.py var/validate/openapi
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from feedbackloop.settings import CommonSettings, KafkaSettings

SERVICES = ("ingest", "classification", "aggregation", "notification")


def build_app(service: str, folder: Path, kafka: KafkaSettings | None = None,
              common: CommonSettings | None = None, url: str | None = None) -> FastAPI:
    """``service``'s app on a store (default: a SQLite file in ``folder``) and a key file in ``folder``
    (nothing is opened before its lifespan)."""
    common = common or CommonSettings(keys_file=folder / "keys.json", log_format="console", log_level="WARNING")
    return APPS[service](url or f"sqlite+aiosqlite:///{folder / service}.db", kafka or KafkaSettings(), common)


def _ingest(url: str, kafka: KafkaSettings, common: CommonSettings) -> FastAPI:
    from ingest.config import IngestSettings
    from ingest.main import create_app

    return create_app(IngestSettings(database_url=url, kafka=kafka, common=common))


def _classification(url: str, kafka: KafkaSettings, common: CommonSettings) -> FastAPI:
    from classification.config import ClassificationSettings
    from classification.main import create_app

    return create_app(ClassificationSettings(database_url=url, kafka=kafka, common=common, embeddings=False))


def _aggregation(url: str, kafka: KafkaSettings, common: CommonSettings) -> FastAPI:
    from aggregation.config import AggregationSettings
    from aggregation.main import create_app

    return create_app(AggregationSettings(database_url=url, kafka=kafka, common=common))


def _notification(url: str, kafka: KafkaSettings, common: CommonSettings) -> FastAPI:
    from notification.config import NotificationSettings
    from notification.main import create_app

    return create_app(NotificationSettings(database_url=url, kafka=kafka, common=common))


APPS: dict[str, Callable[[str, KafkaSettings, CommonSettings], FastAPI]] = {
    "ingest": _ingest, "classification": _classification, "aggregation": _aggregation, "notification": _notification,
}


def documents(folder: Path) -> dict[str, dict[str, Any]]:
    return {service: build_app(service, folder).openapi() for service in SERVICES}


def main(out: str) -> None:
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for service, document in documents(Path(scratch)).items():
            (target / f"{service}.openapi.json").write_text(json.dumps(document, indent=2) + "\n")
            print(target / f"{service}.openapi.json")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "var/validate/openapi")
