"""Classification test fixtures: the embedding model, loaded once per test session."""

from __future__ import annotations

import pytest

from classification.model.embedding import Encoder


@pytest.fixture(scope="session")
def encoder(request: pytest.FixtureRequest) -> Encoder:
    """The ONNX embedding model (exported into the checkout's ``var/models`` on first use), shared by all tests."""
    return Encoder(request.config.rootpath / "var" / "models")
