"""Ingest: takes feedback from support tools and the API, redacts it, stores it, publishes feedback.raw.v1."""

__version__ = "0.1.0"
