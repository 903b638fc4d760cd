"""Feedback Loop shared code: the public event contracts and the plumbing every service runs on.

Subpackages:
    contracts  topic registry, CloudEvents envelope, payload models (the public contract)
    db         engines, the unit of work, the runtime tables (outbox, processed events), migrations
    runtime    Kafka clients, the consumer runtime, the outbox relay, the dead-letter queue
    http       the FastAPI app factory, RFC 9457 problems, API-key auth, health and metrics
    cli        the ``feedbackloop`` operator command
"""

__version__ = "0.1.0"
