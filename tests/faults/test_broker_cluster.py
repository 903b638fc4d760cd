"""Broker faults on a three-node Apache Kafka cluster (replication 3, ``min.insync.replicas=2``).

What the README asks of production, proven with the whole loop streaming thousands of items: one broker
killed with kill -9, a rolling restart of all three, the leader of the busiest partition killed, and the
production shape (two copies of every service on PostgreSQL) losing one copy of each. The producers are
idempotent here (Apache Kafka grants producer ids), ``acks=all``; each row is checked like every other fault
scenario: every accepted item in aggregation exactly once, every enterprise item notified exactly once. The
cluster's jars come from Maven Central (``make kafka``; resolved on first use).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient

from feedbackloop.apache_kafka import KafkaCluster
from feedbackloop.contracts import FEEDBACK_RAW
from feedbackloop_testing import wait_for
from tests.faults.harness import SERVICES, Row, Stack, Stream, check, recovery_time, running

Record = Callable[[Row], None]

#: Items each scenario streams in all (the faults land in the first part of the stream); FAULTS_ITEMS and
#: FAULTS_RATE, when given, apply here too.
ITEMS = int(os.environ.get("FAULTS_CLUSTER_ITEMS") or os.environ.get("FAULTS_ITEMS") or "2000")
#: Items per second: a pace the loop sustains on 2 shared cores beside three brokers.
RATE = float(os.environ.get("FAULTS_CLUSTER_RATE") or os.environ.get("FAULTS_RATE") or "25")

pytestmark = [pytest.mark.faults, pytest.mark.timeout(max(900, 600 + int(3 * ITEMS / RATE)))]

#: How long a killed broker stays down: long enough for leadership to move and the stream to go on without it.
DOWN_SECONDS = 10.0


def cluster(stack: Stack) -> KafkaCluster:
    assert isinstance(stack.broker, KafkaCluster)
    return stack.broker


def stream_of(stack: Stack, scenario: str) -> Stream:
    stream = Stream(stack, scenario, limit=ITEMS, rate=RATE)
    stream.start()
    return stream


async def leader_of(stack: Stack, topic: str, partition: int) -> int:
    """The node id leading a partition, as a client sees it in fresh metadata."""
    client = AIOKafkaClient(bootstrap_servers=stack.broker.bootstrap)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        assert leader is not None and leader >= 0, f"no leader for {topic}[{partition}]"
        return int(leader)
    finally:
        await client.close()


async def finish(stream: Stream) -> None:
    """Stream on to ``ITEMS`` in all, then stop: thousands of items pass the cluster after its fault."""
    await stream.advance(max(0, ITEMS - 40 - len(stream.accepted)))
    await stream.finish()


async def test_three_brokers_one_killed_mid_stream(tmp_path: Path, record_row: Record) -> None:
    async with running(tmp_path / "kafka-kill9", brokers=3) as stack:
        started = time.monotonic()
        stream = stream_of(stack, "kafka3-broker-kill9")
        await stream.advance(200)
        before = set(stream.accepted)
        cluster(stack).kill_node(2)
        await stream.advance(100)  # the stream goes on with two of three replicas in sync
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(cluster(stack).start_node_and_wait, 2)
        recover = await recovery_time(stack, before, time.monotonic())
        await finish(stream)
        row = await check(stack, stream, started, recover, notes=f"node 3 killed (kill -9) for {DOWN_SECONDS:.0f}s")
        record_row(row)
        assert row.ok, row


async def test_three_brokers_rolling_restart(tmp_path: Path, record_row: Record) -> None:
    async with running(tmp_path / "kafka-rolling", brokers=3) as stack:
        started = time.monotonic()
        stream = stream_of(stack, "kafka3-rolling-restart")
        await stream.advance(200)
        before = set(stream.accepted)
        took: list[str] = []
        for index in range(3):
            began = time.monotonic()
            await asyncio.to_thread(cluster(stack).stop_node, index)  # SIGTERM: a controlled shutdown
            await asyncio.to_thread(cluster(stack).start_node_and_wait, index)
            await stream.advance(100)  # the node is back and the loop moved on before the next one goes
            took.append(f"node {index + 1} {time.monotonic() - began:.1f}s")
        recover = await recovery_time(stack, before, time.monotonic())
        await finish(stream)
        row = await check(stack, stream, started, recover, notes="rolling restart: " + ", ".join(took))
        record_row(row)
        assert row.ok, row


async def test_three_brokers_leader_of_busy_partition_killed(tmp_path: Path, record_row: Record) -> None:
    async with running(tmp_path / "kafka-leader", brokers=3) as stack:
        started = time.monotonic()
        stream = stream_of(stack, "kafka3-leader-killed")
        await stream.advance(200)
        leader = await leader_of(stack, FEEDBACK_RAW.name, 0)
        before = set(stream.accepted)
        cluster(stack).kill_node(leader - 1)
        killed_at = time.monotonic()
        # the controller fences the node when its heartbeats stop (broker.session.timeout.ms, 9 s by default)
        moved_to = await wait_for(lambda: leader_of(stack, FEEDBACK_RAW.name, 0), lambda node: node != leader,
                                  timeout=60, interval=0.5, what="leadership to move off the killed node")
        moved_after = time.monotonic() - killed_at
        await stream.advance(100)
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(cluster(stack).start_node_and_wait, leader - 1)
        recover = await recovery_time(stack, before, time.monotonic())
        await finish(stream)
        row = await check(stack, stream, started, recover,
                          notes=f"leader of {FEEDBACK_RAW.name}[0] (node {leader}) killed; moved to node {moved_to} "
                                f"after {moved_after:.1f}s")
        record_row(row)
        assert row.ok, row


async def test_production_shape_two_copies_of_each_on_postgres_and_three_brokers(tmp_path: Path,
                                                                                record_row: Record) -> None:
    """Two copies of every service on PostgreSQL and the three-broker cluster; one copy of each killed (kill -9)
    mid-stream and not restarted. Ingest's killed copy is the one the stream was posting to: the client moves
    to the other, as behind a load balancer."""
    copies = dict.fromkeys(SERVICES, 2)
    async with running(tmp_path / "production", copies=copies, brokers=3, postgres=True) as stack:
        started = time.monotonic()
        stream = stream_of(stack, "kafka3-production-shape")
        await stream.advance(200)
        before = set(stream.accepted)
        for name in SERVICES:  # checks read classification and aggregation through copy #0: those keep running
            stack.procs[name][0 if name == "ingest" else 1].kill9()
        lifted = time.monotonic()
        recover = await recovery_time(stack, before, lifted)
        await finish(stream)
        row = await check(stack, stream, started, recover,
                          notes="2 copies of each service, PostgreSQL, 3 brokers; one copy of each killed")
        record_row(row)
        assert row.ok, row
