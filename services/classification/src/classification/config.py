"""Classification settings (prefix ``CLASSIFICATION_``); see the README's configuration table."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from classification.domain.calibration import DEFAULT_REVIEW_THRESHOLDS
from classification.model.embedding import PARALLEL_RUNS
from feedbackloop.settings import ServiceSettings, default_database_url

DEFAULT_TAXONOMY_FILE = Path(__file__).parent / "taxonomy" / "default.yaml"


class ClassificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSIFICATION_", extra="ignore")

    database_url: str = default_database_url("classification")
    port: int = 8002
    taxonomy_file: Path = Field(default=DEFAULT_TAXONOMY_FILE,
                                description="The theme tree (YAML), read once at start; default: the shipped one")
    high_value_mrr: float = Field(default=1000.0, ge=0,
                                  description="A customer with at least this MRR raises an item's urgency one level")
    priority_plans: list[str] = Field(default=["enterprise"],
                                      description="Customer plans that raise an item's urgency one level (JSON list)")
    embeddings: bool = Field(default=True, description="Use the sentence-embedding models (false: the rules alone)")
    model_dir: Path = Field(default=Path("var/models"),
                            description="Where the ONNX export of the packaged embedding model is kept (made on first "
                                        "use from the package's own weights, by a subprocess)")
    quantized: bool = Field(default=True, description="Run the int8-quantized ONNX model (false: float32)")
    encoder_threads: int = Field(
        default=PARALLEL_RUNS, ge=1, le=64,
        description="Model runs at once, one thread each (texts are independent). Two on 2 cores: the consumer "
                    "encodes the next batch while it writes this one, and the runs use what the rest leaves")
    review_thresholds: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_REVIEW_THRESHOLDS),
        description="Per label (sentiment, kind, themes): under this calibrated confidence an item is marked "
                    "needs_review and listed by GET /v1/review (JSON object)")
    max_body_bytes: int = Field(default=4 << 20, ge=1024, description="Largest request body accepted")
