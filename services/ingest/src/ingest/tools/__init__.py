"""Commands that are not the service: they run beside it and talk to it over its HTTP API, as any client does.

``importer``: ``feedbackloop import`` (app-store review exports, CSV / JSON Lines) into a running ingest.
"""
