"""Broker: shared per directory, internal topics, hashing of ids to internal partitions."""

from __future__ import annotations

from txn.broker import (CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, Broker,
                        java_string_hash, partition_for)


def test_java_string_hash_matches_java():
    assert java_string_hash("") == 0
    assert java_string_hash("order-service") == java_string_hash("order-service")
    assert java_string_hash("hello") == 99162322                  # "hello".hashCode()
    assert java_string_hash("polygenelubricants") == -2147483648  # Integer.MIN_VALUE
    assert partition_for("polygenelubricants", 50) == 0           # Utils.abs(MIN) == 0


def test_ids_hash_with_the_existing_topic_partition_count(tmp_path):
    path = str(tmp_path / "d")
    broker = Broker(path, {"transaction.state.log.num.partitions": 3,
                           "offsets.topic.num.partitions": 2}, background=False)
    before = broker.offsets_partition("group-x"), broker.transaction_state_partition("tx-y")
    broker.close()
    broker = Broker(path, {}, background=False)      # defaults say 50: the topics say 2 and 3
    try:
        assert broker.partitions_of(CONSUMER_OFFSETS_TOPIC) == 2
        assert broker.partitions_of(TRANSACTION_STATE_TOPIC) == 3
        assert (broker.offsets_partition("group-x"),
                broker.transaction_state_partition("tx-y")) == before
    finally:
        broker.close()


def test_clients_of_one_directory_share_one_broker(tmp_path):
    a = Broker.open(str(tmp_path / "d"), {"offsets.topic.num.partitions": 1,
                                          "transaction.state.log.num.partitions": 1})
    b = Broker.open(str(tmp_path / "d"))
    try:
        assert a is b
    finally:
        b.release()
        assert not a.closed
        a.release()
        assert a.closed
