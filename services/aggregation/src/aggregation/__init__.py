"""Aggregation: stores classified feedback, serves the dashboard read API and publishes insights.v1."""

__version__ = "0.1.0"
