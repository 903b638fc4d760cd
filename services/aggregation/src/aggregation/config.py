"""Aggregation settings (prefix ``AGGREGATION_``); see the README's configuration table."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from aggregation.domain.anomalies import DetectorConfig
from aggregation.domain.drops import DropConfig
from aggregation.domain.spike import SpikeConfig
from feedbackloop.settings import ServiceSettings, default_database_url


class AggregationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AGGREGATION_", extra="ignore")

    database_url: str = default_database_url("aggregation")
    port: int = 8003

    # A page of the read API is up to 200 items, some tens of ms on the event loop: 16 at once keep /healthz and
    # everything else answering within a second while the rest of a storm is refused with 503 + Retry-After.
    max_concurrent_requests: int | None = Field(default=16, ge=1, description="Requests handled at once")
    impact_mrr_unit: float = Field(default=100.0, gt=0, description="Affected mrr that weighs as much as one item")
    detect_interval_seconds: float = Field(default=10.0, gt=0, description="How often the detectors run")
    spike_alpha: float = Field(default=1e-5, gt=0, lt=1, description="Tail probability below which a count spikes")
    spike_min_count: int = Field(default=5, ge=1)
    spike_min_ratio: float = Field(default=3.0, ge=1)
    spike_nb_size: float = Field(default=5.0, gt=0, description="Negative-binomial dispersion of the baseline")
    spike_history_days: int = Field(default=28, ge=1)
    spike_min_history_days: int = Field(default=3, ge=1)
    spike_cooldown_hours: int = Field(default=6, ge=0, description="Anomalous hours this close are one episode")
    sentiment_min_items: int = Field(default=10, ge=1)
    sentiment_min_increase: float = Field(default=0.15, gt=0, le=1)
    drop_z: float = Field(default=3.0, gt=0, description="|z| a sentiment or KPI drop must reach")
    kpi_min_responses: int = Field(default=30, ge=1)
    kpi_min_nps_points: float = Field(default=10.0, gt=0)
    kpi_min_csat_points: float = Field(default=5.0, gt=0)
    emerging_min_items: int = Field(default=5, ge=2, description="Items a cluster needs in the window to emerge")
    emerging_window_days: int = Field(default=7, ge=1)
    release_window_hours: float = Field(default=6.0, ge=0,
                                        description="A release this long before an episode is named in it")
    public_url: str = Field(default="http://127.0.0.1:8003", description="Where people reach this dashboard: the "
                            "link back in the issues aggregation files")
    link_retry_interval_seconds: float = Field(default=5.0, gt=0, description="How often the worker looks for "
                                               "tracker issues whose creation is due for another attempt")
    dashboard_open_on_loopback: bool = Field(default=True, description="Embedded profile: no key for 127.0.0.1")
    dashboard_session_hours: float = Field(default=12.0, gt=0, description="A dashboard sign-in lasts this long")
    dashboard_cookie_secure: bool = Field(
        default=False, description="Always mark the session cookie Secure (behind a TLS proxy that is not among "
        "FEEDBACKLOOP_FORWARDED_ALLOW_IPS); it is Secure anyway when the request came over https")

    def spike_config(self) -> SpikeConfig:
        return SpikeConfig(history_days=self.spike_history_days, min_history_days=self.spike_min_history_days,
                           alpha=self.spike_alpha, nb_size=self.spike_nb_size, min_count=self.spike_min_count,
                           min_ratio=self.spike_min_ratio)

    def drop_config(self) -> DropConfig:
        return DropConfig(min_items=self.sentiment_min_items, min_increase=self.sentiment_min_increase, z=self.drop_z,
                          min_responses=self.kpi_min_responses, min_nps_points=self.kpi_min_nps_points,
                          min_csat_points=self.kpi_min_csat_points)

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(spike=self.spike_config(), drops=self.drop_config(),
                              spike_cooldown_hours=self.spike_cooldown_hours)
