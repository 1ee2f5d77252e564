"""kafka-python 3.x, aiokafka and kcat against the server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

TIMEOUT_S = 60


def kafka_python_read(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, isolation_level=isolation,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=2000)
    try:
        return [m.value for m in consumer]
    finally:
        consumer.close()


def test_kafka_python_transactions_and_read_committed(wire_server):
    bootstrap = wire_server.bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("kp", num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-tx")
    producer.init_transactions()
    committed, aborted = [], []
    for t in range(4):
        producer.begin_transaction()
        values = [b"kp-%d-%d" % (t, i) for i in range(25)]
        for i, value in enumerate(values):
            producer.send("kp", value, partition=i % 2)
        if t % 2:
            producer.flush()
            producer.abort_transaction()
            aborted += values
        else:
            producer.commit_transaction()
            committed += values
    producer.close()
    assert sorted(kafka_python_read(bootstrap, "kp", "read_committed")) == sorted(committed)
    assert sorted(kafka_python_read(bootstrap, "kp", "read_uncommitted")) == \
        sorted(committed + aborted)


def test_kafka_python_group_consumer_commits_offsets(wire_server):
    bootstrap = wire_server.bootstrap
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(30):
        producer.send("kp-group", b"g%d" % i)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer("kp-group", bootstrap_servers=bootstrap, group_id="kp-g",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=3000)
    seen = [m.value for m in consumer]
    consumer.commit()
    consumer.close()
    assert sorted(seen) == sorted(b"g%d" % i for i in range(30))
    again = KafkaConsumer("kp-group", bootstrap_servers=bootstrap, group_id="kp-g",
                          auto_offset_reset="earliest", consumer_timeout_ms=1500)
    assert list(again) == []                       # resumes after the committed offsets
    again.close()


async def aiokafka_read(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, isolation_level=isolation,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return out
            for messages in batch.values():
                out += [m.value for m in messages]
    finally:
        await consumer.stop()


async def aiokafka_transactions(bootstrap: str) -> tuple[list, list, list]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aio-tx")
    await producer.start()
    committed, aborted = [], []
    try:
        async with producer.transaction():
            for i in range(20):
                await producer.send("aio", b"aio-c-%d" % i, partition=i % 2)
            committed += [b"aio-c-%d" % i for i in range(20)]
        await producer.begin_transaction()
        for i in range(20):
            await producer.send_and_wait("aio", b"aio-a-%d" % i, partition=i % 2)
        await producer.abort_transaction()
        aborted += [b"aio-a-%d" % i for i in range(20)]
        # consume-process-produce: offsets of group "aio-g" committed with the transaction
        async with producer.transaction():
            await producer.send("aio-out", b"processed")
            await producer.send_offsets_to_transaction(
                {AioTopicPartition("aio", 0): 10}, "aio-g")
    finally:
        await producer.stop()
    read = await aiokafka_read(bootstrap, "aio", "read_committed")
    return committed, aborted, read


def test_aiokafka_transactions_and_offsets_in_a_transaction(wire_server):
    bootstrap = wire_server.bootstrap
    wire_server.broker.store.create_topic("aio", 2)
    wire_server.broker.store.create_topic("aio-out", 1)
    committed, aborted, read = asyncio.run(aiokafka_transactions(bootstrap))
    assert sorted(read) == sorted(committed)
    everything = asyncio.run(aiokafka_read(bootstrap, "aio", "read_uncommitted"))
    assert sorted(everything) == sorted(committed + aborted)
    offsets = wire_server.broker.group_coordinator.fetch_offsets("aio-g", [("aio", 0)], True)
    assert offsets[("aio", 0)].offset == 10


@pytest.fixture
def kcat():
    path = shutil.which("kcat")
    assert path, "kcat is not installed (make test installs it: apt-get install kcat)"
    return path


def run_kcat(kcat: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([kcat, *args], input=stdin, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kcat_lists_metadata_produces_and_consumes(wire_server, kcat):
    bootstrap = wire_server.bootstrap
    wire_server.broker.store.create_topic("kc", 3)
    listing = json.loads(run_kcat(kcat, "-b", bootstrap, "-L", "-J"))
    assert [(b["id"], b["name"]) for b in listing["brokers"]] == [(0, bootstrap)]
    topics = {t["topic"]: t for t in listing["topics"]}
    assert len(topics["kc"]["partitions"]) == 3
    assert {p["leader"] for p in topics["kc"]["partitions"]} == {0}
    lines = [f"key{i}:value {i}" for i in range(50)]
    run_kcat(kcat, "-b", bootstrap, "-P", "-t", "kc", "-K:", stdin="\n".join(lines) + "\n")
    out = run_kcat(kcat, "-b", bootstrap, "-C", "-t", "kc", "-o", "beginning", "-e",
                   "-f", "%k:%s\n")
    assert sorted(out.splitlines()) == sorted(lines)
    one = run_kcat(kcat, "-b", bootstrap, "-C", "-t", "kc", "-p", "0", "-o", "beginning",
                   "-e", "-J")
    records = [json.loads(line) for line in one.splitlines()]
    assert [r["offset"] for r in records] == list(range(len(records)))
    assert all(r["partition"] == 0 for r in records)
