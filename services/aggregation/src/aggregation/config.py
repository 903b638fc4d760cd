"""Aggregation settings (prefix ``AGGREGATION_``); see the README's configuration table."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from feedbackloop.settings import ServiceSettings, default_database_url


class AggregationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AGGREGATION_", extra="ignore")

    database_url: str = default_database_url("aggregation")
    port: int = 8003
