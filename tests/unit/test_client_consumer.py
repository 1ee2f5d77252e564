"""txn.Consumer with assign() on a real Broker: fetching in order, positions, commits and
committed offsets across restarts, auto.offset.reset, partition EOF events, store_offsets,
seek / pause / resume, consume(), watermarks and offsets_for_times, long polling."""

from __future__ import annotations

import threading
import time

import pytest

from txn import (OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID, TIMESTAMP_CREATE_TIME,
                 Consumer, KafkaError, KafkaException, Producer, TopicPartition)

from client_support import closing_all, conf, consume, create_topic, drain


def _produce(directory, topic: str, count: int, partition: int = 0, start: int = 0,
             **extra) -> None:
    producer = Producer(conf(directory, **extra))
    with closing_all(producer):
        for i in range(start, start + count):
            producer.produce(topic, f"m{i}".encode(), f"k{i}".encode(), partition=partition,
                             timestamp=1000 + i)
        assert producer.flush(10) == 0


def _consumer(directory, group: str = "g", **extra) -> Consumer:
    settings = {"group.id": group, "enable.auto.commit": False, **extra}
    return Consumer(conf(directory, **settings))


def test_assigned_partition_is_read_in_order_with_every_accessor(tmp_path):
    _produce(tmp_path, "t", 20)
    consumer = _consumer(tmp_path)
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0, OFFSET_BEGINNING)])
        got = consume(consumer, 20)
    assert [m.offset() for m in got] == list(range(20))
    assert [m.value() for m in got] == [f"m{i}".encode() for i in range(20)]
    assert [m.key() for m in got] == [f"k{i}".encode() for i in range(20)]
    first = got[0]
    assert (first.topic(), first.partition(), first.error(), first.headers()) == \
        ("t", 0, None, None)
    assert first.timestamp() == (TIMESTAMP_CREATE_TIME, 1000)
    assert len(first) == 2 and first.latency() is None and first.leader_epoch() is None


def test_position_is_after_the_last_message_handed_out(tmp_path):
    _produce(tmp_path, "t", 10)
    consumer = _consumer(tmp_path)
    with closing_all(consumer):
        tp = TopicPartition("t", 0, 0)
        consumer.assign([tp])
        assert consumer.position([tp])[0].offset == 0
        consumer.unassign()
        consumer.assign([TopicPartition("t", 0)])
        assert consumer.position([tp])[0].offset == OFFSET_INVALID
        consumer.seek(TopicPartition("t", 0, 0))
        consume(consumer, 3)
        assert consumer.position([tp])[0].offset == 3


def test_commit_and_committed_survive_a_restart(tmp_path):
    _produce(tmp_path, "t", 10)
    consumer = _consumer(tmp_path, **{"auto.offset.reset": "earliest"})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0)])
        got = consume(consumer, 4)
        committed = consumer.commit(message=got[-1], asynchronous=False)
        assert [(tp.topic, tp.partition, tp.offset) for tp in committed] == [("t", 0, 4)]
    consumer = _consumer(tmp_path, **{"auto.offset.reset": "earliest"})
    with closing_all(consumer):
        assert consumer.committed([TopicPartition("t", 0)])[0].offset == 4
        consumer.assign([TopicPartition("t", 0)])
        assert [m.offset() for m in consume(consumer, 6)] == list(range(4, 10))


def test_commit_of_stored_offsets_and_no_offset(tmp_path):
    _produce(tmp_path, "t", 5)
    consumer = _consumer(tmp_path, **{"auto.offset.reset": "earliest"})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0)])
        with pytest.raises(KafkaException) as excinfo:
            consumer.commit(asynchronous=False)
        assert excinfo.value.args[0].code() == KafkaError._NO_OFFSET
        consume(consumer, 5)
        result = consumer.commit(asynchronous=False)
        assert [tp.offset for tp in result] == [5]
        assert consumer.committed([TopicPartition("t", 0)])[0].offset == 5


def test_asynchronous_commits_report_through_on_commit_from_poll(tmp_path):
    _produce(tmp_path, "t", 3)
    results = []
    consumer = _consumer(tmp_path, **{"auto.offset.reset": "earliest",
                                      "on_commit": lambda err, parts: results.append(
                                          (err, [(p.partition, p.offset) for p in parts]))})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0)])
        consume(consumer, 3)
        assert consumer.commit() is None
        assert results == []
        consumer.poll(0.1)
    assert results == [(None, [(0, 3)])]


def test_auto_commit_commits_what_was_polled(tmp_path):
    _produce(tmp_path, "t", 8)
    consumer = Consumer(conf(tmp_path, **{"group.id": "auto", "auto.offset.reset": "earliest",
                                          "auto.commit.interval.ms": 1}))
    consumer.assign([TopicPartition("t", 0)])
    got = consume(consumer, 8)
    consumer.close()
    reader = _consumer(tmp_path, "auto")
    with closing_all(reader):
        assert len(got) == 8
        assert reader.committed([TopicPartition("t", 0)])[0].offset == 8


def test_store_offsets_decides_what_commit_writes(tmp_path):
    _produce(tmp_path, "t", 6)
    consumer = _consumer(tmp_path, **{"auto.offset.reset": "earliest",
                                      "enable.auto.offset.store": False})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0)])
        got = consume(consumer, 6)
        consumer.store_offsets(message=got[1])
        assert [tp.offset for tp in consumer.commit(asynchronous=False)] == [2]
        consumer.store_offsets(offsets=[TopicPartition("t", 0, 5)])
        assert [tp.offset for tp in consumer.commit(asynchronous=False)] == [5]
        with pytest.raises(KafkaException) as excinfo:
            consumer.store_offsets(offsets=[TopicPartition("t", 9, 1)])
        assert excinfo.value.args[0].code() == KafkaError._STATE
    auto = _consumer(tmp_path)
    with closing_all(auto):
        with pytest.raises(KafkaException) as excinfo:
            auto.store_offsets(offsets=[TopicPartition("t", 0, 1)])
        assert excinfo.value.args[0].code() == KafkaError._INVALID_ARG


@pytest.mark.parametrize("reset, expected", [("earliest", [0, 1, 2]), ("smallest", [0, 1, 2]),
                                             ("latest", [3])])
def test_auto_offset_reset_without_a_committed_offset(tmp_path, reset, expected):
    _produce(tmp_path, "t", 3)
    consumer = _consumer(tmp_path, **{"auto.offset.reset": reset})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0)])
        if reset == "latest":
            assert consume(consumer, 1, deadline_s=0.5) == []
        _produce(tmp_path, "t", 1, start=3)
        got = consume(consumer, len(expected))
    assert [m.offset() for m in got] == expected


def test_auto_offset_reset_error_is_an_event(tmp_path):
    _produce(tmp_path, "t", 3)
    consumer = _consumer(tmp_path, **{"auto.offset.reset": "error"})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0)])
        events = consume(consumer, 1, keep_errors=True)
        assert events[0].error().code() == KafkaError._AUTO_OFFSET_RESET
        consumer.seek(TopicPartition("t", 0, 1))
        assert [m.offset() for m in consume(consumer, 2)] == [1, 2]


def test_partition_eof_once_per_end_reached(tmp_path):
    _produce(tmp_path, "t", 2)
    consumer = _consumer(tmp_path, **{"enable.partition.eof": True})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0, 0)])
        got = consume(consumer, 3, keep_errors=True)
        assert [m.offset() for m in got[:2]] == [0, 1]
        assert got[2].error().code() == KafkaError._PARTITION_EOF and got[2].offset() == 2
        assert consumer.poll(0.2) is None
        _produce(tmp_path, "t", 1, start=2)
        got = consume(consumer, 2, keep_errors=True)
        assert got[0].offset() == 2 and got[1].error().code() == KafkaError._PARTITION_EOF


def test_seek_pause_and_resume(tmp_path):
    create_topic(tmp_path, "t", 2)
    _produce(tmp_path, "t", 5, partition=0)
    _produce(tmp_path, "t", 5, partition=1)
    consumer = _consumer(tmp_path)
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0, 0), TopicPartition("t", 1, 0)])
        consumer.pause([TopicPartition("t", 1)])
        assert {m.partition() for m in drain(consumer, idle_s=0.3)} == {0}
        consumer.resume([TopicPartition("t", 1)])
        assert {m.partition() for m in drain(consumer, idle_s=0.3)} == {1}
        consumer.seek(TopicPartition("t", 0, 3))
        assert [m.offset() for m in consume(consumer, 2)] == [3, 4]
        with pytest.raises(KafkaException) as excinfo:
            consumer.seek(TopicPartition("t", 7, 0))
        assert excinfo.value.args[0].code() == KafkaError._UNKNOWN_PARTITION


def test_consume_returns_up_to_n_messages(tmp_path):
    _produce(tmp_path, "t", 25)
    consumer = _consumer(tmp_path)
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0, 0)])
        first = consumer.consume(10, 5)
        rest = consumer.consume(100, 0.5)
        with pytest.raises(ValueError):
            consumer.consume(-1)
    assert [m.offset() for m in first] == list(range(10))
    assert [m.offset() for m in rest] == list(range(10, 25))


def test_watermarks_and_offsets_for_times(tmp_path):
    _produce(tmp_path, "t", 10)
    consumer = _consumer(tmp_path)
    with closing_all(consumer):
        assert consumer.get_watermark_offsets(TopicPartition("t", 0)) == (0, 10)
        found = consumer.offsets_for_times([TopicPartition("t", 0, 1004),
                                            TopicPartition("t", 0, 99999)])
        assert [tp.offset for tp in found] == [4, OFFSET_END]


def test_incremental_assignment(tmp_path):
    create_topic(tmp_path, "t", 3)
    consumer = _consumer(tmp_path)
    with closing_all(consumer):
        consumer.incremental_assign([TopicPartition("t", 0), TopicPartition("t", 1)])
        consumer.incremental_assign([TopicPartition("t", 2)])
        consumer.incremental_unassign([TopicPartition("t", 1)])
        assert sorted((tp.topic, tp.partition) for tp in consumer.assignment()) == \
            [("t", 0), ("t", 2)]
        with pytest.raises(KafkaException):
            consumer.incremental_assign([TopicPartition("t", 0)])


def test_a_waiting_poll_wakes_when_data_arrives(tmp_path):
    create_topic(tmp_path, "t", 1)
    consumer = _consumer(tmp_path)
    got = []
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0, 0)])
        waiter = threading.Thread(target=lambda: got.append(consumer.poll(30)))
        waiter.start()
        time.sleep(0.2)
        _produce(tmp_path, "t", 1)
        waiter.join(30)
    assert got and got[0].value() == b"m0"


def test_records_deleted_below_the_position_reset_to_earliest(tmp_path):
    _produce(tmp_path, "t", 10)
    consumer = _consumer(tmp_path, **{"auto.offset.reset": "earliest"})
    with closing_all(consumer):
        consumer.assign([TopicPartition("t", 0, 2)])
        consumer._broker.partition("t", 0).log.delete_records_before(6)
        assert [m.offset() for m in consume(consumer, 4)] == [6, 7, 8, 9]


def test_metadata_and_a_closed_consumer(tmp_path):
    create_topic(tmp_path, "t", 2)
    consumer = _consumer(tmp_path)
    assert sorted(consumer.list_topics().topics["t"].partitions) == [0, 1]
    metadata = consumer.consumer_group_metadata()
    assert (metadata.group_id, metadata.generation_id, metadata.member_id) == ("g", -1, "")
    assert consumer.memberid() is None
    consumer.close()
    consumer.close()
    with pytest.raises(RuntimeError, match="Consumer closed"):
        consumer.poll(0)
    with pytest.raises(RuntimeError):
        consumer.assign([TopicPartition("t", 0)])
