"""Workloads the crash tests share: transactions and idempotent produces through the embedded
clients, recorded in a txn.history.History, and the checks run after the crash.

`TxnWorkload(data, rng).run()` creates the engine and topic `t` (2 partitions), then runs
TXN_STEPS steps: an idempotent burst to `plain` (flushed) and a plain offset commit of group
`direct`, or a transaction on `t` with consumer offsets of group `g` (plain-0 at the step
number), committed or aborted at random. It
stops at the first storage error (a frozen or failing disk) and abandons the engine as kill -9
would (no flush, no snapshot, no clean-shutdown marker). `read_back` then reopens, finishes the
transaction the crash left open (a new instance of the transactional id fences it), reads
every partition in both isolation levels into the history and returns the group's committed
offset; `assert_durable_outcomes` checks the history and what must have survived.
"""

from __future__ import annotations

import os
import random

from logstore.errors import KafkaStorageError, LogstoreError
from txn import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from txn.broker import Broker
from txn.history import FAIL, OK, READ_COMMITTED, History

TXN_STEPS = 12
TXN_PER_TXN = 3
TXN_BYTES_MAX = 12000            # about what the whole workload writes (CRASH_AFTER budgets)
TIMEOUT_S = 10.0
FAST_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1}
DELIVERY_TIMEOUT_MS = 3000       # records stuck behind a dead disk fail fast
DIRECT_GROUP = "direct"          # offsets committed with Consumer.commit, outside transactions


class TxnWorkload:
    """Transactions (commit or abort, with consumer offsets) and idempotent produces through
    the embedded clients, recorded in a History as they happen, until done or the disk
    freezes. `offsets` maps each consumer offset committed in a transaction to it."""

    def __init__(self, data: str, rng: random.Random):
        self.data = data
        self.rng = rng
        self.history = History()
        self.offsets: dict[int, object] = {}
        self.direct_committed: int | None = None      # the last commit() that returned
        self.conf = {"log.dirs": data, **FAST_BROKER, "delivery.timeout.ms": DELIVERY_TIMEOUT_MS}

    def run(self) -> None:
        clients = []
        try:
            txn = Producer({**self.conf, "transactional.id": "power"})
            clients.append(txn)
            plain = Producer({**self.conf, "enable.idempotence": True})
            clients.append(plain)
            consumer = Consumer({**self.conf, "group.id": "g", "enable.auto.commit": False})
            clients.append(consumer)
            direct = Consumer({**self.conf, "group.id": DIRECT_GROUP,
                               "enable.auto.commit": False})
            clients.append(direct)
            _engine(self.data).store.create_topic("t", 2, if_not_exists=True)
            txn.init_transactions(TIMEOUT_S)
            for step in range(TXN_STEPS):
                if self.rng.random() < 0.3:
                    self.produce_plain(plain, direct, step)
                else:
                    self.transaction(txn, consumer, step)
        except (KafkaException, KafkaStorageError, LogstoreError):
            pass                                  # the disk froze: the power is going
        finally:
            engine = _engine(self.data)
            if engine is not None:
                engine.abandon()
            for client in clients:
                client.close()

    def send(self, producer, process: str, value: bytes, topic: str, partition: int, txn=None):
        write = self.history.send(process, value, topic, partition, txn=txn)

        def delivered(err, msg):
            if err is None:
                self.history.send_ok(write, msg.offset())
            else:
                self.history.send_failed(write)
        producer.produce(topic, value=value, partition=partition, on_delivery=delivered)

    def produce_plain(self, plain, direct, step: int) -> None:
        """An idempotent burst, flushed, then a plain (non-transactional) offset commit."""
        for i in range(TXN_PER_TXN):
            self.send(plain, "plain", f"plain-{step}-{i}".encode(), "plain", 0)
        plain.flush(TIMEOUT_S)
        direct.commit(offsets=[TopicPartition("plain", 0, step)], asynchronous=False)
        self.direct_committed = step

    def transaction(self, producer, consumer, step: int) -> None:
        txn = self.history.begin("txn")
        producer.begin_transaction()
        for i in range(TXN_PER_TXN):
            self.send(producer, "txn", f"txn-{step}-{i}".encode(), "t", i % 2, txn)
        self.offsets[step] = txn
        producer.send_offsets_to_transaction([TopicPartition("plain", 0, step)],
                                             consumer.consumer_group_metadata(), TIMEOUT_S)
        if self.rng.random() < 0.3:
            self.history.txn_unknown(txn)
            producer.abort_transaction(TIMEOUT_S)
            self.history.abort(txn)
        else:
            self.history.commit_invoke(txn)
            self.history.txn_unknown(txn)
            producer.commit_transaction(TIMEOUT_S)
            self.history.commit_ok(txn)


def _engine(data: str):
    """The Broker the clients of `data` share in this process (None once released)."""
    return Broker._registry.get(os.path.realpath(data))


def read_back(workload: TxnWorkload) -> int | None:
    """After the cut: finish whatever transaction the crash left open (a new instance of the
    transactional id fences it), read every partition in both isolation levels into the
    history, and return the group's committed offset. Also checks the plain commits."""
    conf = {k: v for k, v in workload.conf.items() if k != "delivery.timeout.ms"}
    with Producer({**conf, "transactional.id": "power"}) as fencer:
        fencer.init_transactions(TIMEOUT_S)
    parts = [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("plain", 0)]
    for isolation in ("read_committed", "read_uncommitted"):
        reader = Consumer({**conf, "group.id": "g", "isolation.level": isolation,
                           "enable.partition.eof": True, "enable.auto.commit": False})
        known = [tp for tp in parts if _exists(reader, tp.topic)]
        reader.assign([TopicPartition(tp.topic, tp.partition, 0) for tp in known])
        workload.history.poll(f"reader-{isolation}", isolation, _drain(reader, len(known)))
        committed = reader.committed([TopicPartition("plain", 0)], TIMEOUT_S)[0].offset
        reader.close()
    _check_direct_commit(workload, conf)
    return committed if committed >= 0 else None


def _check_direct_commit(workload: TxnWorkload, conf: dict) -> None:
    """An offset commit that returned is durable (the group coordinator fsyncs it)."""
    if workload.direct_committed is None:
        return
    with_group = Consumer({**conf, "group.id": DIRECT_GROUP, "enable.auto.commit": False})
    found = with_group.committed([TopicPartition("plain", 0)], TIMEOUT_S)[0].offset
    with_group.close()
    assert found >= workload.direct_committed, \
        f"committed offset {workload.direct_committed} of group {DIRECT_GROUP} lost: {found}"


def _exists(consumer, topic: str) -> bool:
    return topic in consumer.list_topics(topic).topics and not \
        consumer.list_topics(topic).topics[topic].error


def _drain(reader, partitions: int) -> list:
    records, at_end = [], set()
    while len(at_end) < partitions:
        message = reader.poll(TIMEOUT_S)
        assert message is not None, "a partition never reached its end"
        if message.error() is not None:
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            at_end.add((message.topic(), message.partition()))
            continue
        records.append((message.topic(), message.partition(), message.offset(),
                        message.value()))
    return records


def assert_durable_outcomes(workload: TxnWorkload, committed_offset: int | None) -> None:
    history = workload.history
    result = history.check()
    assert result.valid, str(result)
    read = {value for poll in history.polls if poll.isolation == READ_COMMITTED
            for (_t, _p, _o, value) in poll.records}
    durable = [w for w in history.writes
               if w.outcome == OK and (w.txn is None or w.txn.outcome == OK)]
    lost = [w.value for w in durable if w.value not in read]
    assert not lost, f"acknowledged writes lost in the power cut: {lost}"
    returned = [step for step, txn in workload.offsets.items() if txn.outcome == OK]
    if returned:
        assert committed_offset is not None and committed_offset >= max(returned)
    if committed_offset is not None and committed_offset in workload.offsets:
        assert workload.offsets[committed_offset].outcome != FAIL, \
            f"offset {committed_offset} of an aborted transaction is committed"
