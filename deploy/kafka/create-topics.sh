#!/bin/sh
# Create the Feedback Loop topics on Apache Kafka; safe to run again (--if-not-exists).
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS   broker to talk to                          (required)
#   FEEDBACKLOOP_TOPICS       space-separated topic names, DLQs included (required)
#   TOPIC_PARTITIONS          partitions of each topic                   6
#   TOPIC_REPLICATION_FACTOR  replicas of each topic                     1
#   KAFKA_BIN                 directory holding kafka-topics.sh          /opt/kafka/bin
#
# POSIX sh on purpose: the apache/kafka image has no bash.
set -eu

: "${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS, e.g. kafka:9092}"
: "${FEEDBACKLOOP_TOPICS:?set FEEDBACKLOOP_TOPICS to the space-separated topic names}"
partitions="${TOPIC_PARTITIONS:-6}"
replicas="${TOPIC_REPLICATION_FACTOR:-1}"
topics_cmd="${KAFKA_BIN:-/opt/kafka/bin}/kafka-topics.sh"

for topic in $FEEDBACKLOOP_TOPICS; do
  echo "creating topic $topic (partitions=$partitions, replication-factor=$replicas)"
  "$topics_cmd" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor "$replicas"
done
"$topics_cmd" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --describe
