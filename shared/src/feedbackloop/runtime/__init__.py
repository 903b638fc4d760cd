"""Running a service: Kafka clients, the consumer runtime, the outbox relay and the DLQ."""

from feedbackloop.runtime.consumer import Consumer, ConsumerStalled
from feedbackloop.runtime.errors import PoisonMessage, TransientError, is_transient
from feedbackloop.runtime.kafka import all_topic_names, ensure_topics, make_consumer, make_producer
from feedbackloop.runtime.relay import OutboxRelay, replay_outbox
from feedbackloop.runtime.service import ServiceRuntime, Worker, WorkerFactory, start_runtime
from feedbackloop.runtime.subscription import BatchFinisher, BatchPreparer, EventHandler, Subscription

__all__ = [
    "BatchFinisher",
    "BatchPreparer",
    "Consumer",
    "ConsumerStalled",
    "EventHandler",
    "OutboxRelay",
    "PoisonMessage",
    "ServiceRuntime",
    "Subscription",
    "TransientError",
    "Worker",
    "WorkerFactory",
    "all_topic_names",
    "ensure_topics",
    "is_transient",
    "make_consumer",
    "make_producer",
    "replay_outbox",
    "start_runtime",
]
