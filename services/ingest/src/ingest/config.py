"""Ingest settings (prefix ``INGEST_``); see the README's configuration table."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from feedbackloop.settings import ServiceSettings, default_database_url


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    database_url: str = default_database_url("ingest")
    port: int = 8001
    max_batch_items: int = Field(default=1000, ge=1, description="Items one POST /v1/feedback may carry")
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Largest request body accepted")
