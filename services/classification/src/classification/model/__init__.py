"""Fitted heads shipped with the package (``heads.npz``, made by ``python -m classification.training.fit``)."""

from pathlib import Path

HEADS_FILE = Path(__file__).parent / "heads.npz"
