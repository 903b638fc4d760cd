"""Apache Kafka from Maven Central jars: a node that starts, keeps its data, and grants producer ids."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from feedbackloop.apache_kafka import KafkaCluster, fetch_kafka
from feedbackloop.broker import EmbeddedBroker
from feedbackloop.runtime.kafka import ensure_topics, grants_producer_ids, make_producer, partitions_by_topic
from feedbackloop.runtime.relay import lost_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import free_port, wait_for


def test_the_producer_is_idempotent_where_the_broker_grants_producer_ids(tmp_path: Path) -> None:
    fetch_kafka()
    kafka = KafkaCluster(tmp_path / "kafka")
    embedded = EmbeddedBroker(port=free_port())
    kafka.start()
    embedded.start()
    try:
        assert asyncio.run(grants_producer_ids(KafkaSettings(bootstrap_servers=kafka.bootstrap)))
        assert not asyncio.run(grants_producer_ids(KafkaSettings(bootstrap_servers=embedded.bootstrap)))
        # a setting overrides the question either way
        assert not asyncio.run(grants_producer_ids(KafkaSettings(bootstrap_servers=kafka.bootstrap, idempotence="off")))
    finally:
        kafka.stop()
        embedded.stop()


async def _produce_and_consume(bootstrap: str, sent: int, commit: int) -> list[bytes]:
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_partitions=1)
    await ensure_topics(settings, ["kept"])
    producer = make_producer(settings, "keeper", idempotent=True)
    await producer.start()
    try:
        for n in range(sent):
            await producer.send_and_wait("kept", f"m{n}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("kept", bootstrap_servers=bootstrap, group_id="keeper", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < commit:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(r.value for r in records if r.value is not None)
        await consumer.commit({TopicPartition("kept", 0): commit})
        return got
    finally:
        await consumer.stop()


async def _committed_and_end(bootstrap: str) -> tuple[int | None, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="keeper", enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition("kept", 0)
        return await consumer.committed(partition), (await consumer.end_offsets([partition]))[partition]
    finally:
        await consumer.stop()


def test_a_cluster_in_a_kept_folder_restarts_with_its_topics_and_offsets(tmp_path: Path) -> None:
    fetch_kafka()
    first = KafkaCluster(tmp_path / "kafka")
    first.start()
    try:
        asyncio.run(_produce_and_consume(first.bootstrap, sent=5, commit=3))
    finally:
        first.stop()
    again = KafkaCluster(tmp_path / "kafka")
    assert again.bootstrap == first.bootstrap, "a kept folder keeps its ports, so clients find it again"
    again.start()
    try:
        # the group coordinator loads its partition of __consumer_offsets a moment after the node serves
        asyncio.run(wait_for(lambda: _committed_and_end(again.bootstrap), lambda got: got == (3, 5), timeout=30,
                             what="the committed offset and the 5 records after the restart"))
    finally:
        again.stop()


async def _loss_check(bootstrap: str) -> tuple[dict[str, list[int]], list[str]]:
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_partitions=3)
    await ensure_topics(settings, ["held"])
    producer = make_producer(settings, "loss-check")
    await producer.start()
    try:
        acked = [await producer.send_and_wait("held", json.dumps({"id": f"e{n}"}).encode(), partition=n % 3)
                 for n in range(6)]
    finally:
        await producer.stop()
    remembered = {("held", a.partition): (a.offset, f"e{n}") for n, a in enumerate(acked)}
    return await partitions_by_topic(settings), await lost_topics(settings, ["held", "never-created"], remembered)


def test_the_broker_loss_check_sees_what_apache_kafka_holds(tmp_path: Path) -> None:
    # An unsubscribed consumer knows no partitions on Apache Kafka (it bootstraps asking for no topics), so a
    # check built on it called every topic empty, hence lost, and would re-publish a service's whole outbox.
    fetch_kafka()
    kafka = KafkaCluster(tmp_path / "kafka")
    kafka.start()
    try:
        partitions, lost = asyncio.run(_loss_check(kafka.bootstrap))
    finally:
        kafka.stop()
    assert partitions["held"] == [0, 1, 2]
    assert lost == ["never-created"]


def test_feedbackloop_kafka_prints_where_the_jars_are(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "feedbackloop.cli.main", "kafka"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert any(Path(done.stdout.strip()).glob("kafka_2.13-*.jar"))


def test_an_unresolvable_version_is_one_line_on_stderr(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "feedbackloop.cli.main", "kafka", "--version", "0.0.404"],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "FEEDBACKLOOP_KAFKA_CACHE": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "0.0.404" in done.stderr, done.stderr



def test_cluster_ids_never_read_as_an_option() -> None:
    from feedbackloop.apache_kafka import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]  # about 31 of 2,000 raw ids would start with "-"
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
