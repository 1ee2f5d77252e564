"""Transactions through txn.Producer and txn.Consumer on a real Broker: commit and abort
across topics and partitions, what read_committed and read_uncommitted consumers see, zombie
fencing, a timed-out transaction, librdkafka's state errors, abortable errors, and
consume-process-produce with send_offsets_to_transaction across a restart of the engine."""

from __future__ import annotations

import time

import pytest

from txn import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from client_support import closing_all, conf, consume, create_topic, drain


def _txn_producer(directory, transactional_id: str = "tx", **extra) -> Producer:
    producer = Producer(conf(directory, **{"transactional.id": transactional_id, **extra}))
    producer.init_transactions(10)
    return producer


def _reader(directory, isolation: str, partitions, group: str = "reader") -> Consumer:
    consumer = Consumer(conf(directory, **{
        "group.id": group, "isolation.level": isolation, "enable.auto.commit": False,
        "auto.offset.reset": "earliest"}))
    consumer.assign([TopicPartition(t, p) for t, p in partitions])
    return consumer


def _values(consumer) -> list[bytes]:
    return sorted(m.value() for m in drain(consumer, idle_s=0.3))


def _error(excinfo) -> KafkaError:
    return excinfo.value.args[0]


ALL = [("a", 0), ("a", 1), ("b", 0)]


def _topics(directory):
    create_topic(directory, "a", 2)
    create_topic(directory, "b", 1)


def test_commit_and_abort_across_topics_and_partitions(tmp_path):
    _topics(tmp_path)
    producer = _txn_producer(tmp_path)
    committed = _reader(tmp_path, "read_committed", ALL)
    uncommitted = _reader(tmp_path, "read_uncommitted", ALL, group="dirty")
    with closing_all(producer, committed, uncommitted):
        producer.begin_transaction()
        for topic, partition in ALL:
            producer.produce(topic, f"ok-{topic}{partition}".encode(), partition=partition)
        producer.commit_transaction(10)
        producer.begin_transaction()
        for topic, partition in ALL:
            producer.produce(topic, f"no-{topic}{partition}".encode(), partition=partition)
        producer.flush(10)
        producer.abort_transaction(10)
        assert _values(committed) == sorted(f"ok-{t}{p}".encode() for t, p in ALL)
        dirty = _values(uncommitted)
    assert dirty == sorted([f"ok-{t}{p}".encode() for t, p in ALL]
                           + [f"no-{t}{p}".encode() for t, p in ALL])


def test_open_transactions_are_invisible_to_read_committed_until_committed(tmp_path):
    _topics(tmp_path)
    producer = _txn_producer(tmp_path)
    committed = _reader(tmp_path, "read_committed", ALL)
    uncommitted = _reader(tmp_path, "read_uncommitted", ALL, group="dirty")
    with closing_all(producer, committed, uncommitted):
        producer.begin_transaction()
        producer.produce("a", b"open", partition=1)
        assert producer.flush(10) == 0
        assert _values(committed) == []
        assert _values(uncommitted) == [b"open"]
        assert committed.get_watermark_offsets(TopicPartition("a", 1)) == (0, 0)
        producer.commit_transaction(10)
        assert _values(committed) == [b"open"]


def test_a_second_instance_fences_the_first_and_aborts_its_transaction(tmp_path):
    _topics(tmp_path)
    errors = []
    zombie = _txn_producer(tmp_path, "same", error_cb=errors.append)
    committed = _reader(tmp_path, "read_committed", ALL)
    with closing_all(zombie, committed):
        zombie.begin_transaction()
        zombie.produce("b", b"zombie")
        zombie.flush(10)
        successor = _txn_producer(tmp_path, "same")
        with closing_all(successor):
            with pytest.raises(KafkaException) as excinfo:
                zombie.commit_transaction(10)
            error = _error(excinfo)
            assert error.code() == KafkaError._FENCED and error.fatal()
            with pytest.raises(KafkaException) as excinfo:
                zombie.produce("b", b"more")
            assert _error(excinfo).fatal()
            with pytest.raises(KafkaException) as excinfo:
                zombie.begin_transaction()
            assert _error(excinfo).fatal()
            zombie.poll(0)
            assert [e.code() for e in errors] == [KafkaError._FENCED] and errors[0].fatal()
            successor.begin_transaction()
            successor.produce("b", b"successor")
            successor.commit_transaction(10)
        assert _values(committed) == [b"successor"]


def test_a_timed_out_transaction_is_aborted_and_its_producer_fenced(tmp_path):
    _topics(tmp_path)
    producer = _txn_producer(tmp_path, "slow", **{"transaction.timeout.ms": 1000})
    committed = _reader(tmp_path, "read_committed", ALL)
    uncommitted = _reader(tmp_path, "read_uncommitted", ALL, group="dirty")
    with closing_all(producer, committed, uncommitted):
        producer.begin_transaction()
        producer.produce("a", b"late", partition=0)
        producer.flush(10)
        time.sleep(1.1)
        producer._broker.transaction_coordinator.abort_timed_out_transactions()
        with pytest.raises(KafkaException) as excinfo:
            producer.commit_transaction(10)
        assert _error(excinfo).code() == KafkaError._FENCED and _error(excinfo).fatal()
        assert _values(committed) == []
        assert _values(uncommitted) == [b"late"]


def test_transactional_state_errors(tmp_path):
    plain = Producer(conf(tmp_path))
    producer = Producer(conf(tmp_path, **{"transactional.id": "states"}))
    with closing_all(plain, producer):
        with pytest.raises(KafkaException) as excinfo:
            plain.init_transactions(1)
        assert _error(excinfo).code() == KafkaError._NOT_CONFIGURED
        with pytest.raises(KafkaException) as excinfo:
            producer.begin_transaction()
        assert _error(excinfo).code() == KafkaError._STATE
        assert "Init" in _error(excinfo).str()
        producer.init_transactions(10)
        for call in (producer.commit_transaction, producer.abort_transaction):
            with pytest.raises(KafkaException) as excinfo:
                call(1)
            assert _error(excinfo).code() == KafkaError._STATE
        with pytest.raises(KafkaException) as excinfo:
            producer.produce("t", b"outside")
        assert _error(excinfo).code() == KafkaError._STATE
        producer.begin_transaction()
        with pytest.raises(KafkaException) as excinfo:
            producer.begin_transaction()
        assert _error(excinfo).code() == KafkaError._STATE
        with pytest.raises(KafkaException) as excinfo:
            producer.init_transactions(1)
        assert _error(excinfo).code() == KafkaError._STATE
        producer.abort_transaction(10)


def test_an_abortable_error_requires_abort_then_the_producer_goes_on(tmp_path):
    create_topic(tmp_path, "t", 1)
    producer = _txn_producer(tmp_path)
    committed = _reader(tmp_path, "read_committed", [("t", 0)])
    with closing_all(producer, committed):
        consumer = Consumer(conf(tmp_path, **{"group.id": "g", "heartbeat.interval.ms": 10}))
        with closing_all(consumer):
            consumer.subscribe(["t"])
            while not consumer.assignment():
                consumer.poll(0.05)
            stale = consumer.consumer_group_metadata()
            stale.generation_id += 5
            producer.begin_transaction()
            producer.produce("t", b"doomed")
            with pytest.raises(KafkaException) as excinfo:
                producer.send_offsets_to_transaction([TopicPartition("t", 0, 1)], stale)
            error = _error(excinfo)
            assert error.txn_requires_abort() and not error.fatal()
            assert error.code() == KafkaError.ILLEGAL_GENERATION
            with pytest.raises(KafkaException) as excinfo:
                producer.commit_transaction(10)
            assert _error(excinfo).txn_requires_abort()
            producer.abort_transaction(10)
        producer.begin_transaction()
        producer.produce("t", b"fine")
        producer.commit_transaction(10)
        assert _values(committed) == [b"fine"]


def test_abort_purges_queued_records(tmp_path):
    create_topic(tmp_path, "t", 1)
    reports = []
    producer = _txn_producer(tmp_path, **{"linger.ms": 60000,
                                          "on_delivery": lambda e, m: reports.append(e)})
    with closing_all(producer):
        producer.begin_transaction()
        for _ in range(3):
            producer.produce("t", b"queued")
        producer.abort_transaction(10)
        assert [e.code() for e in reports] == [KafkaError._PURGE_QUEUE] * 3
        assert producer._broker.partition("t", 0).log_end_offset == 0


def test_every_transaction_bumps_the_epoch_and_restarts_sequences(tmp_path):
    create_topic(tmp_path, "t", 1)
    producer = _txn_producer(tmp_path)
    with closing_all(producer):
        epochs = []
        for round_ in range(3):
            producer.begin_transaction()
            for _ in range(4):
                producer.produce("t", b"v")
            producer.commit_transaction(10)
            epochs.append(producer._epoch)
        data = [b for b in producer._broker.partition("t", 0).log.batches()
                if not b.is_control]
    assert epochs == sorted(set(epochs)) and len(epochs) == 3
    assert [b.base_sequence for b in data] == [0, 0, 0]
    assert [b.producer_epoch for b in data] == [epochs[0] - 1] + epochs[:2]
    assert all(b.is_transactional for b in data)


def test_offsets_sent_in_an_aborted_transaction_are_not_committed(tmp_path):
    create_topic(tmp_path, "t", 1)
    producer = _txn_producer(tmp_path)
    consumer = Consumer(conf(tmp_path, **{"group.id": "g", "enable.auto.commit": False}))
    with closing_all(producer, consumer):
        metadata = consumer.consumer_group_metadata()
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition("t", 0, 5)], metadata)
        producer.abort_transaction(10)
        assert consumer.committed([TopicPartition("t", 0)])[0].offset < 0
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition("t", 0, 7)], metadata)
        producer.commit_transaction(10)
        assert consumer.committed([TopicPartition("t", 0)])[0].offset == 7


def test_a_read_committed_member_waits_for_pending_offsets(tmp_path):
    create_topic(tmp_path, "t", 1)
    seed = Producer(conf(tmp_path))
    with closing_all(seed):
        for i in range(6):
            seed.produce("t", f"v{i}".encode())
        seed.flush(10)
    producer = _txn_producer(tmp_path)
    consumer = Consumer(conf(tmp_path, **{"group.id": "g", "enable.auto.commit": False,
                                          "auto.offset.reset": "earliest"}))
    with closing_all(producer, consumer):
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition("t", 0, 4)],
                                             consumer.consumer_group_metadata())
        consumer.assign([TopicPartition("t", 0)])
        assert consumer.poll(0.3) is None                 # UNSTABLE_OFFSET_COMMIT: waits
        producer.commit_transaction(10)
        assert [m.value() for m in consume(consumer, 2)] == [b"v4", b"v5"]


def _process(directory, count: int, *, crash_after: int | None = None):
    """Consume-process-produce in transactions of 3 records. With crash_after, the producer
    is left (a zombie) in the middle of a transaction after that many records and returned,
    its consumer closed without committing."""
    consumer = Consumer(conf(directory, **{
        "group.id": "eos", "isolation.level": "read_committed", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "heartbeat.interval.ms": 10}))
    producer = _txn_producer(directory, "eos-app")
    processed = 0
    with closing_all(consumer):
        consumer.subscribe(["in"])
        while processed < count:
            batch = consume(consumer, min(3, count - processed), deadline_s=5)
            if not batch:
                break
            producer.begin_transaction()
            for message in batch:
                producer.produce("out", message.value().upper(), message.key())
            processed += len(batch)
            if crash_after is not None and processed >= crash_after:
                producer.flush(10)
                return producer                           # no commit: a zombie
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata())
            producer.commit_transaction(10)
    producer.close()
    return None


def test_consume_process_produce_survives_a_crash_and_a_restart(tmp_path):
    from txn.broker import Broker
    create_topic(tmp_path, "in", 1)
    create_topic(tmp_path, "out", 1)
    source = Producer(conf(tmp_path))
    with closing_all(source):
        for i in range(20):
            source.produce("in", f"record-{i}".encode(), str(i).encode())
        source.flush(10)
    zombie = _process(tmp_path, 20, crash_after=8)       # 6 committed, 3 left dangling
    _process(tmp_path, 5)                                # fences the zombie, aborts its txn
    with pytest.raises(KafkaException) as excinfo:
        zombie.commit_transaction(10)
    assert _error(excinfo).code() == KafkaError._FENCED
    broker = zombie._broker
    zombie.close()
    assert broker.closed and broker not in Broker._registry.values()    # a real restart
    _process(tmp_path, 20)
    output = _reader(tmp_path, "read_committed", [("out", 0)], group="check")
    check = Consumer(conf(tmp_path, **{"group.id": "eos"}))
    with closing_all(output, check):
        values = [m.value() for m in drain(output, idle_s=0.5)]
        committed = check.committed([TopicPartition("in", 0)])[0].offset
    assert sorted(values) == sorted(f"RECORD-{i}".encode() for i in range(20))
    assert len(values) == len(set(values)) == 20
    assert committed == 20
