"""Classification: labels each feedback.raw.v1 item (sentiment, kind, themes, urgency, language) and publishes
feedback.classified.v1."""

__version__ = "0.1.0"
