"""``feedbackloop import``: app-store review exports and generic CSV / JSON Lines into a running ingest.

Pure parts: ``decoding`` (bytes → text), ``rows`` (text → rows with their line), ``mapping`` (rows →
``FeedbackIn`` items with deterministic ids). I/O parts: ``checkpoint`` (resume state under
``var/imports/``), ``run`` (batches to ``POST /v1/feedback``), ``command`` (progress bar and summary).
Failures: ``errors``.
"""

from __future__ import annotations

from ingest.tools.importer.errors import FileRejected, ImportInterrupted, ImportRefused, ImportStopped

__all__ = ["FileRejected", "ImportInterrupted", "ImportRefused", "ImportStopped"]
