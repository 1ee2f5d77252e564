"""Concurrency stress: many producer and consumer threads, transactions and group rebalances
on one embedded engine, checked as a history (Jepsen/Elle style, txn.history).

Goal: under concurrency the engine shows no anomaly a correct Kafka may not show: no aborted
read (G1a), no read of a transaction before its commit (dirty read), no duplicate, no lost
acknowledged write, no offset going back within a consumer session.
Method: a fixed amount of work, so the run is bounded without timing anything:
  - TXN_PRODUCERS transactional producers, TXN_PER_PRODUCER transactions each (1 to
    TXN_RECORDS_MAX records over the partitions; a quarter aborted);
  - IDEM_PRODUCERS idempotent producers, IDEM_RECORDS records each;
  - GROUP_SLOTS consumer threads in one read_committed group, each replacing its consumer
    (close, a new member joins) after GENERATION_BATCHES batches, GROUP_GENERATIONS times:
    every replacement is two rebalances;
  - one read_uncommitted consumer.
Every send, acknowledgement, commit, abort and poll goes into one History as it happens; each
consumer assignment starts a new session. Once the producers are done, a fresh consumer reads
every partition to its end, and the checker runs over everything. Every acknowledged write
outside a transaction and every write of a committed transaction must be in that final read.
"""

from __future__ import annotations

import random
import threading

from txn import Consumer, KafkaError, Producer, TopicPartition
from txn.history import OK, History

TOPIC = "stress"
PARTITIONS = 4
TXN_PRODUCERS = 4
TXN_PER_PRODUCER = 25
TXN_RECORDS_MAX = 4
TXN_ABORT_FRACTION = 0.25
IDEM_PRODUCERS = 2
IDEM_RECORDS = 200
IDEM_FLUSH_EVERY = 10
GROUP_SLOTS = 3
GROUP_GENERATIONS = 4
GENERATION_BATCHES = 4           # batches a member reads before it leaves (the last stays)
POLL_TIMEOUT_S = 0.05
CALL_TIMEOUT_S = 30.0
FAST_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1,
               "broker.group.min.session.timeout.ms": 1000}


class Stress:
    def __init__(self, data: str):
        self.data = data
        self.history = History()
        self.failures: list[BaseException] = []
        self.producers_done = threading.Event()

    def conf(self, **extra) -> dict:
        return {"log.dirs": self.data, **FAST_BROKER, **extra}

    def run_thread(self, target, *args) -> threading.Thread:
        def guarded():
            try:
                target(*args)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.failures.append(exc)
        thread = threading.Thread(target=guarded, name=f"{target.__name__}{args}")
        thread.start()
        return thread

    def send(self, producer, process: str, value: bytes, partition: int, txn=None) -> None:
        write = self.history.send(process, value, TOPIC, partition, txn=txn)

        def delivered(err, msg):
            if err is None:
                self.history.send_ok(write, msg.offset(), msg.partition())
            else:
                self.history.send_unknown(write)
        producer.produce(TOPIC, value=value, partition=partition, on_delivery=delivered)

    def transactional(self, n: int) -> None:
        process, rng = f"txn{n}", random.Random(n)
        producer = Producer(self.conf(**{"transactional.id": process}))
        producer.init_transactions(CALL_TIMEOUT_S)
        for t in range(TXN_PER_PRODUCER):
            txn = self.history.begin(process)
            producer.begin_transaction()
            for i in range(rng.randint(1, TXN_RECORDS_MAX)):
                self.send(producer, process, f"{process}-{t}-{i}".encode(),
                          rng.randrange(PARTITIONS), txn)
            if rng.random() < TXN_ABORT_FRACTION:
                producer.abort_transaction(CALL_TIMEOUT_S)
                self.history.abort(txn)
            else:
                self.history.commit_invoke(txn)
                producer.commit_transaction(CALL_TIMEOUT_S)
                self.history.commit_ok(txn)
        producer.close()

    def idempotent(self, n: int) -> None:
        process, rng = f"idem{n}", random.Random(100 + n)
        producer = Producer(self.conf(**{"enable.idempotence": True}))
        for i in range(IDEM_RECORDS):
            self.send(producer, process, f"{process}-{i}".encode(), rng.randrange(PARTITIONS))
            if i % IDEM_FLUSH_EVERY == IDEM_FLUSH_EVERY - 1:
                producer.flush(CALL_TIMEOUT_S)
        producer.flush(CALL_TIMEOUT_S)
        producer.close()

    def group_member(self, slot: int) -> None:
        """GROUP_GENERATIONS consumers one after the other in the group: each join and each
        leave rebalances the others. Sessions restart with every assignment."""
        for generation in range(GROUP_GENERATIONS):
            process = f"member{slot}"
            consumer = Consumer(self.conf(**{
                "group.id": "stress-group", "isolation.level": "read_committed",
                "auto.offset.reset": "earliest", "auto.commit.interval.ms": 100}))
            sessions = [0]

            def assigned(c, partitions, sessions=sessions):
                sessions[0] += 1
            consumer.subscribe([TOPIC], on_assign=assigned)
            last = generation == GROUP_GENERATIONS - 1
            batches = 0
            while not self.producers_done.is_set() and (last or batches < GENERATION_BATCHES):
                batches += self.record(consumer, process,
                                       lambda: f"{process}-{generation}-{sessions[0]}",
                                       "read_committed")
            consumer.close()

    def uncommitted_reader(self) -> None:
        consumer = Consumer(self.conf(**{
            "group.id": "stress-dirty", "isolation.level": "read_uncommitted",
            "auto.offset.reset": "earliest"}))
        consumer.subscribe([TOPIC])
        while not self.producers_done.is_set():
            self.record(consumer, "dirty", lambda: "dirty", "read_uncommitted")
        consumer.close()

    def record(self, consumer, process: str, session, isolation: str) -> bool:
        """One consume() into the history. A batch returned across a rebalance (the session
        changed during the call) is left out: the embedded consumer's consume() may return
        records fetched before the positions went back to the committed offsets together
        with the same records fetched again after it (librdkafka drops the outdated ones)."""
        before = session()
        messages = [m for m in consumer.consume(20, POLL_TIMEOUT_S) if m.error() is None]
        if not messages or session() != before:
            return False
        self.history.poll(process, isolation,
                          [(m.topic(), m.partition(), m.offset(), m.value()) for m in messages],
                          session=before)
        return True

    def final_read(self) -> set[bytes]:
        """Every partition to its end, read_committed, into the history."""
        consumer = Consumer(self.conf(**{
            "group.id": "stress-final", "isolation.level": "read_committed",
            "enable.partition.eof": True, "enable.auto.commit": False}))
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        records, at_end = [], set()
        while len(at_end) < PARTITIONS:
            message = consumer.poll(CALL_TIMEOUT_S)
            assert message is not None, "a partition never reached its end"
            if message.error() is not None:
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                at_end.add(message.partition())
                continue
            records.append((message.topic(), message.partition(), message.offset(),
                            message.value()))
        consumer.close()
        self.history.poll("final", "read_committed", records, session="final")
        return {value for (_t, _p, _o, value) in records}


def test_concurrent_producers_consumers_transactions_and_rebalances_leave_a_clean_history(
        tmp_path):
    stress = Stress(str(tmp_path / "data"))
    with Producer(stress.conf()) as creator:           # holds the engine for everyone
        creator.list_topics()
        _create_topic(stress)
        readers = [stress.run_thread(stress.group_member, slot) for slot in range(GROUP_SLOTS)]
        readers.append(stress.run_thread(stress.uncommitted_reader))
        writers = [stress.run_thread(stress.transactional, n) for n in range(TXN_PRODUCERS)]
        writers += [stress.run_thread(stress.idempotent, n) for n in range(IDEM_PRODUCERS)]
        for thread in writers:
            thread.join()
        stress.producers_done.set()
        for thread in readers:
            thread.join()
        assert stress.failures == []
        final = stress.final_read()
    history = stress.history
    result = history.check()
    assert result.valid, str(result)
    lost = [w.value for w in history.writes
            if w.outcome == OK and (w.txn is None or w.txn.outcome == OK)
            and w.value not in final]
    assert lost == []
    committed = sum(t.outcome == OK for t in history.txns)
    assert committed > 0 and len(history.txns) == TXN_PRODUCERS * TXN_PER_PRODUCER
    assert result.counts["records_read"] > len(final) > 0


def _create_topic(stress: Stress) -> None:
    from txn import AdminClient, NewTopic
    with AdminClient(stress.conf()) as admin:
        admin.create_topics([NewTopic(TOPIC, PARTITIONS)])[TOPIC].result(CALL_TIMEOUT_S)
