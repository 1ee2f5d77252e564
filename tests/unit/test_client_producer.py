"""txn.Producer on a real Broker: delivery reports (from poll/flush only, with offsets,
after the fsync under acks=all), partitioners equal to librdkafka's, headers, timestamps,
batching limits, the queue limit, purge, idempotent sequences, many producing threads, and
librdkafka's errors for bad input."""

from __future__ import annotations

import threading
import zlib

import confluent_kafka
import pytest

from txn import (OFFSET_INVALID, TIMESTAMP_CREATE_TIME, Consumer, KafkaError, KafkaException,
                 Producer, TopicPartition)

from client_support import conf, closing_all, consume, create_topic


def _reader(directory, topic: str, partitions: int):
    consumer = Consumer(conf(directory, **{"group.id": "reader",
                         "enable.auto.commit": False, "isolation.level": "read_uncommitted"}))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer


def _batches(producer, topic: str, partition: int = 0):
    return list(producer._broker.partition(topic, partition).log.batches())


def test_delivery_reports_come_from_flush_with_offsets_in_order(tmp_path):
    reports = []
    main = threading.get_ident()

    def on_delivery(err, msg):
        reports.append((err, msg.topic(), msg.partition(), msg.offset(), msg.value(),
                        threading.get_ident()))
    producer = Producer(conf(tmp_path, **{"on_delivery": on_delivery}))
    with closing_all(producer):
        for i in range(50):
            producer.produce("t", f"v{i}".encode())
        assert len(producer) == 50
        assert producer.flush(10) == 0
        assert len(producer) == 0
    assert [r[3] for r in reports] == list(range(50))
    assert [r[4] for r in reports] == [f"v{i}".encode() for i in range(50)]
    assert all(r[0] is None and r[1:3] == ("t", 0) for r in reports)
    assert {r[5] for r in reports} == {main}


def test_callbacks_per_message_override_the_configured_one(tmp_path):
    seen = []
    producer = Producer({"log.dirs": str(tmp_path),
                         "on_delivery": lambda err, msg: seen.append(("conf", msg.value()))})
    with closing_all(producer):
        producer.produce("t", b"a")
        producer.produce("t", b"b", callback=lambda err, msg: seen.append(("cb", msg.value())))
        producer.produce("t", b"c",
                         on_delivery=lambda err, msg: seen.append(("od", msg.value())))
        producer.flush(10)
    assert seen == [("conf", b"a"), ("cb", b"b"), ("od", b"c")]


def test_reports_wait_for_poll_and_are_counted_until_served(tmp_path):
    seen = []
    producer = Producer(conf(tmp_path, **{"linger.ms": 0,
                         "on_delivery": lambda err, msg: seen.append(msg.offset())}))
    with closing_all(producer):
        producer.produce("t", b"x")
        served = 0
        for _ in range(100):
            served += producer.poll(0.1)
            if served:
                break
        assert served == 1 and seen == [0] and len(producer) == 0


def test_acks_all_reports_after_the_fsync(tmp_path):
    durable = []
    producer = Producer(conf(tmp_path))

    def on_delivery(err, msg):
        log = producer._broker.partition("t", 0).log
        durable.append(log.recovery_point > msg.offset())
    with closing_all(producer):
        for _ in range(20):
            producer.produce("t", b"x", on_delivery=on_delivery)
        producer.flush(10)
    assert durable == [True] * 20


@pytest.mark.parametrize("acks", [0, 1])
def test_flush_makes_everything_durable_whatever_acks(tmp_path, acks):
    producer = Producer(conf(tmp_path, **{"acks": acks}))
    reports = []
    with closing_all(producer):
        for _ in range(10):
            producer.produce("t", b"x", callback=lambda err, msg: reports.append(msg.offset()))
        assert producer.flush(10) == 0
        log = producer._broker.partition("t", 0).log
        assert log.log_end_offset == 10 and log.recovery_point == 10
    assert reports == ([OFFSET_INVALID] * 10 if acks == 0 else list(range(10)))


@pytest.mark.parametrize("partitioner, reference", [
    ("consistent_random", confluent_kafka.consistent), ("consistent", confluent_kafka.consistent),
    ("murmur2_random", confluent_kafka.murmur2), ("murmur2", confluent_kafka.murmur2),
    ("fnv1a_random", confluent_kafka.fnv1a), ("fnv1a", confluent_kafka.fnv1a)])
def test_keyed_records_land_where_librdkafka_puts_them(tmp_path, partitioner, reference):
    create_topic(tmp_path, "t", 7)
    placed = {}
    producer = Producer(conf(tmp_path, **{"partitioner": partitioner}))
    with closing_all(producer):
        for i in range(60):
            key = f"key-{i}".encode()
            producer.produce("t", b"v", key, callback=lambda e, m, k=key: placed.update(
                {k: m.partition()}))
        producer.flush(10)
    assert placed == {k: reference(k, 7) for k in placed} and len(placed) == 60


def test_keyless_records_stick_to_one_partition_at_a_time(tmp_path):
    create_topic(tmp_path, "t", 8)
    producer = Producer(conf(tmp_path, **{"sticky.partitioning.linger.ms": 60000}))
    partitions = set()
    with closing_all(producer):
        for _ in range(30):
            producer.produce("t", b"v", callback=lambda e, m: partitions.add(m.partition()))
        producer.flush(10)
    assert len(partitions) == 1


def test_consistent_partitioner_hashes_null_keys_too(tmp_path):
    create_topic(tmp_path, "t", 5)
    partitions = set()
    producer = Producer(conf(tmp_path, **{"partitioner": "consistent"}))
    with closing_all(producer):
        for _ in range(10):
            producer.produce("t", b"v", callback=lambda e, m: partitions.add(m.partition()))
        producer.flush(10)
    assert partitions == {zlib.crc32(b"") % 5}


def test_an_explicit_partition_is_used_and_an_unknown_one_refused(tmp_path):
    create_topic(tmp_path, "t", 3)
    producer = Producer(conf(tmp_path))
    with closing_all(producer):
        producer.produce("t", b"v", partition=2)
        producer.flush(10)
        assert producer._broker.partition("t", 2).log_end_offset == 1
        with pytest.raises(KafkaException) as excinfo:
            producer.produce("t", b"v", partition=3)
        assert excinfo.value.args[0].code() == KafkaError._UNKNOWN_PARTITION


def test_headers_timestamps_and_str_payloads_round_trip(tmp_path):
    producer = Producer(conf(tmp_path))
    consumer = _reader(tmp_path, "t", 1)
    with closing_all(producer, consumer):
        producer.produce("t", "héllo", "clé", headers=[("a", b"1"), ("b", None), ("c", "s")],
                         timestamp=1234567)
        producer.produce("t", b"plain", headers={"x": b"y"})
        producer.flush(10)
        first, second = consume(consumer, 2)
    assert (first.value(), first.key()) == ("héllo".encode(), "clé".encode())
    assert first.headers() == [("a", b"1"), ("b", None), ("c", b"s")]
    assert first.timestamp() == (TIMESTAMP_CREATE_TIME, 1234567)
    assert second.headers() == [("x", b"y")] and second.value() == b"plain"


def test_bad_arguments_raise_as_confluent_kafka_does(tmp_path):
    producer = Producer(conf(tmp_path, **{"message.max.bytes": 1000}))
    with closing_all(producer):
        with pytest.raises(TypeError):
            producer.produce("t", 123)
        with pytest.raises(TypeError):
            producer.produce("t", bytearray(b"x"))
        with pytest.raises(TypeError):
            producer.produce(None, b"x")
        with pytest.raises(TypeError):
            producer.produce("t", b"x", timestamp="now")
        with pytest.raises(TypeError):
            producer.produce("t", b"x", headers=5)
        with pytest.raises(TypeError):
            producer.produce("t", b"x", headers=[("a",)])
        with pytest.raises(KafkaException) as excinfo:
            producer.produce("t", b"x" * 2000)
        assert excinfo.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_the_queue_limit_raises_buffer_error_until_reports_are_served(tmp_path):
    producer = Producer(conf(tmp_path, **{"queue.buffering.max.messages": 100,
                         "batch.num.messages": 10}))
    with closing_all(producer):
        with pytest.raises(BufferError):
            for _ in range(1000):
                producer.produce("t", b"x")
        assert 100 <= len(producer) <= 110
        assert producer.flush(10) == 0
        producer.produce("t", b"x")
        assert producer.flush(10) == 0


def test_purge_reports_queued_records_as_purged(tmp_path):
    errors = []
    producer = Producer(conf(tmp_path, **{"linger.ms": 60000,
                         "on_delivery": lambda err, msg: errors.append(err)}))
    with closing_all(producer):
        for _ in range(5):
            producer.produce("t", b"x")
        producer.purge()
        assert producer.poll(0) == 5
        assert len(producer) == 0
        assert [e.code() for e in errors] == [KafkaError._PURGE_QUEUE] * 5
        assert producer._broker.partition("t", 0).log_end_offset == 0


def test_batches_respect_batch_num_messages_and_max_message_bytes(tmp_path):
    create_topic(tmp_path, "small", 1, {"max.message.bytes": 5000})
    producer = Producer(conf(tmp_path, **{"batch.num.messages": 7,
                         "linger.ms": 50}))
    with closing_all(producer):
        for i in range(100):
            producer.produce("t", b"x")
            producer.produce("small", b"y" * 100)
        assert producer.flush(10) == 0
        counts = [b.records_count for b in _batches(producer, "t")]
        sizes = [b.size for b in _batches(producer, "small")]
    assert sum(counts) == 100 and max(counts) <= 100
    assert sum(b for b in counts) == 100
    assert max(sizes) <= 5000 and len(sizes) > 2


def test_idempotent_batches_carry_a_producer_id_and_consecutive_sequences(tmp_path):
    producer = Producer(conf(tmp_path, **{"enable.idempotence": True,
                         "linger.ms": 1}))
    with closing_all(producer):
        for round_ in range(5):
            for _ in range(10):
                producer.produce("t", b"x")
            producer.flush(10)
        batches = _batches(producer, "t")
    assert {b.producer_id for b in batches} == {producer._pid} and producer._pid >= 0
    expected = 0
    for batch in batches:
        assert batch.base_sequence == expected
        expected += batch.records_count
    assert expected == 50


def test_many_threads_share_one_producer(tmp_path):
    producer = Producer(conf(tmp_path, **{"linger.ms": 2}))
    per_thread = 2000

    def work(n):
        for i in range(per_thread):
            while True:
                try:
                    producer.produce("t", f"{n}:{i}".encode(), partition=0)
                    break
                except BufferError:
                    producer.poll(0.01)
    with closing_all(producer):
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert producer.flush(30) == 0
        consumer = _reader(tmp_path, "t", 1)
        with closing_all(consumer):
            got = [m.value().decode() for m in consume(consumer, 4 * per_thread)]
    assert len(got) == len(set(got)) == 4 * per_thread
    for n in range(4):
        mine = [int(v.split(":")[1]) for v in got if v.startswith(f"{n}:")]
        assert mine == list(range(per_thread))


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_are_read_back(tmp_path, codec):
    producer = Producer(conf(tmp_path, **{"compression.type": codec}))
    consumer = _reader(tmp_path, "t", 1)
    with closing_all(producer, consumer):
        for i in range(100):
            producer.produce("t", b"value %d" % i, key=b"k")
        producer.flush(10)
        assert all(b.compression != 0 for b in _batches(producer, "t"))
        got = consume(consumer, 100)
    assert [m.value() for m in got] == [b"value %d" % i for i in range(100)]


def test_unknown_topic_without_auto_creation(tmp_path):
    producer = Producer({"log.dirs": str(tmp_path),
                         "broker.auto.create.topics.enable": False})
    with closing_all(producer):
        with pytest.raises(KafkaException) as excinfo:
            producer.produce("missing", b"v")
        assert excinfo.value.args[0].code() == KafkaError._UNKNOWN_TOPIC


def test_a_raising_callback_propagates_and_the_rest_is_served_next(tmp_path):
    calls = []

    def on_delivery(err, msg):
        calls.append(msg.offset())
        if msg.offset() == 1:
            raise RuntimeError("boom")
    producer = Producer(conf(tmp_path, **{"on_delivery": on_delivery}))
    with closing_all(producer):
        for _ in range(4):
            producer.produce("t", b"v")
        with pytest.raises(RuntimeError):
            producer.flush(10)
        assert producer.flush(10) == 0
    assert calls == [0, 1, 2, 3]


def test_close_flushes_and_produce_after_close_fails(tmp_path):
    producer = Producer(conf(tmp_path, **{"linger.ms": 60000}))
    producer.produce("t", b"v")
    assert producer.close() is True
    consumer = _reader(tmp_path, "t", 1)
    with closing_all(consumer):
        assert [m.value() for m in consume(consumer, 1)] == [b"v"]
    with pytest.raises(KafkaException):
        producer.produce("t", b"v")


def test_produce_batch_and_list_topics(tmp_path):
    producer = Producer(conf(tmp_path))
    with closing_all(producer):
        messages = [{"value": b"a"}, {"value": b"b", "key": b"k"}, {"value": 5}]
        with pytest.raises(TypeError):
            producer.produce_batch("t", messages)
        assert producer.produce_batch("t", messages[:2]) == 2
        producer.flush(10)
        metadata = producer.list_topics()
        assert "t" in metadata.topics and metadata.topics["t"].partitions[0].leader == 0
        assert producer.list_topics("nope").topics["nope"].error.code() == \
            KafkaError.UNKNOWN_TOPIC_OR_PART


def test_a_producer_dropped_without_close_releases_the_engine(tmp_path):
    import gc
    from txn.broker import Broker
    producer = Producer(conf(tmp_path))
    producer.produce("t", b"v")
    producer.flush(10)
    broker, sender = producer._broker, producer._sender
    del producer
    gc.collect()
    sender.join(30)                       # the sender lets go within a round, then ends
    assert not sender.is_alive()
    assert broker.closed and broker not in Broker._registry.values()
