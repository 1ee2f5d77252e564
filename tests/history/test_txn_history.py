"""Concurrent producers and consumers on one engine, checked as a history (Jepsen's Kafka
queue workload, in one process).

Goal: under concurrency no consumer sees what Kafka forbids: read_committed never returns a
record of an aborted transaction (G1a) or of one whose commit was not yet invoked (a read past
the LSO), no committed write below what was read is missing (lost write), no value sits at two
offsets (duplicate), every read is at the offset its send was acknowledged at, and a consumer
session never goes back. Group members join and leave meanwhile, so partitions move between
them (each assignment starts a new session: the group resumes from committed offsets).

Method: threads share one data directory: transactional producers commit or abort at random
(some aborts after their records were written, some before), idempotent non-transactional
producers write plain records, two tailing readers (read_committed and read_uncommitted) read
from offset 0 as the data comes, and group members (read_committed, auto-commit) come and go.
Every send, delivery report, commit, abort and poll is recorded in a txn.history.History; two
final readers read everything. `check()` must be valid. A second test runs a small workload
with the same recording and relabels the read_uncommitted reads read_committed: the checker
must report G1a, which shows that these tests can fail.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time

from txn import AdminClient, Consumer, NewTopic, Producer, TopicPartition
from txn.history import READ_COMMITTED, History

from history_support import READ_UNCOMMITTED, conf, read_to_end

TOPIC = "events"
PARTITIONS = 3
ALL = [(TOPIC, p) for p in range(PARTITIONS)]
TXN_PRODUCERS = 3
TXNS_PER_PRODUCER = 40
RECORDS_PER_TXN_MAX = 5
ABORT_SHARE = 0.35
FLUSH_BEFORE_ABORT_SHARE = 0.6        # the aborted records reach the log first
IDEMPOTENT_PRODUCERS = 2
IDEMPOTENT_RECORDS = 150
IDEMPOTENT_FLUSH_EVERY = 7
GROUP = "history-group"
GROUP_MEMBERS = 3                     # member threads, each joining and leaving in cycles
MEMBER_CYCLES_MIN = 3                 # memberships per member thread, at least
MEMBER_POLLS_MAX = 40                 # consume() calls per membership
POLL_TIMEOUT_S = 0.02
JOIN_PAUSE_MAX_S = 0.05
THREAD_TIMEOUT_S = 120.0
SEED = 1717


class Workload:
    """The shared pieces: the directory, the history, the stop flag and thread errors."""

    def __init__(self, path):
        self.path = path
        self.history = History()
        self.done = threading.Event()        # every producer finished
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.assignments: list[tuple[str, int]] = []     # (member, partitions) per on_assign

    def start(self, target, *args) -> None:
        def run():
            try:
                target(self, *args)
            except BaseException as exc:     # noqa: BLE001 - reported by the test
                self.errors.append(exc)
        thread = threading.Thread(target=run, name=f"{target.__name__}{args}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self, threads) -> None:
        for thread in threads:
            thread.join(THREAD_TIMEOUT_S)
            assert not thread.is_alive(), f"{thread.name} did not finish"


def create_topic(path) -> None:
    with AdminClient(conf(path)) as admin:
        admin.create_topics([NewTopic(TOPIC, PARTITIONS)])[TOPIC].result(30)


def delivery(history: History, write):
    """The on_delivery callback of one recorded send."""
    def report(error, message):
        if error is None:
            history.send_ok(write, message.offset(), message.partition())
        else:
            history.send_failed(write)
    return report


def record_poll(history: History, process: str, isolation: str, session, messages) -> None:
    records = [(m.topic(), m.partition(), m.offset(), m.value())
               for m in messages if m.error() is None]
    if records:
        history.poll(process, isolation, records, session=session)


def transactional_producer(work: Workload, index: int, txns: int = TXNS_PER_PRODUCER) -> None:
    """Transactions of 1..RECORDS_PER_TXN_MAX records to random partitions, committed or
    aborted at random; some aborts come after a flush (the records are in the log)."""
    rng = random.Random(SEED + index)
    name, history = f"txn-{index}", work.history
    producer = Producer(conf(work.path, **{"transactional.id": name}))
    try:
        producer.init_transactions(30)
        for number in range(txns):
            txn = history.begin(name)
            producer.begin_transaction()
            for i in range(rng.randint(1, RECORDS_PER_TXN_MAX)):
                value, partition = f"{name}-{number}-{i}".encode(), rng.randrange(PARTITIONS)
                write = history.send(name, value, TOPIC, partition, txn=txn)
                producer.produce(TOPIC, value, partition=partition,
                                 on_delivery=delivery(history, write))
            if rng.random() < ABORT_SHARE:
                if rng.random() < FLUSH_BEFORE_ABORT_SHARE:
                    assert producer.flush(30) == 0
                producer.abort_transaction(30)
                history.abort(txn)
            else:
                history.commit_invoke(txn)
                producer.commit_transaction(30)
                history.commit_ok(txn)
    finally:
        producer.close()


def idempotent_producer(work: Workload, index: int) -> None:
    """Plain records from an idempotent producer, flushed every few records."""
    name, history = f"idempotent-{index}", work.history
    producer = Producer(conf(work.path, **{"enable.idempotence": True}))
    try:
        for i in range(IDEMPOTENT_RECORDS):
            value, partition = f"{name}-{i}".encode(), i % PARTITIONS
            write = history.send(name, value, TOPIC, partition)
            producer.produce(TOPIC, value, partition=partition,
                             on_delivery=delivery(history, write))
            if i % IDEMPOTENT_FLUSH_EVERY == 0:
                assert producer.flush(30) == 0
        assert producer.flush(30) == 0
    finally:
        producer.close()


def tailer(work: Workload, isolation: str) -> None:
    """Reads every partition from offset 0 while the producers run."""
    name = f"tail-{isolation}"
    consumer = Consumer(conf(work.path, **{"group.id": name, "isolation.level": isolation,
                                           "enable.auto.commit": False}))
    try:
        consumer.assign([TopicPartition(t, p, 0) for t, p in ALL])
        while not work.done.is_set():
            messages = consumer.consume(100, POLL_TIMEOUT_S)
            record_poll(work.history, name, isolation, name, messages)
    finally:
        consumer.close()


def group_member(work: Workload, index: int) -> None:
    """Joins the group, polls a while, leaves (a rebalance each time), until the producers
    are done (and at least MEMBER_CYCLES_MIN times). Each assignment is a new session: it
    starts at the committed offsets."""
    rng = random.Random(SEED * 7 + index)
    name = f"member-{index}"
    cycle = 0
    while cycle < MEMBER_CYCLES_MIN or not work.done.is_set():
        cycle += 1
        session = [(name, cycle, 0)]

        def on_assign(consumer, partitions, session=session):
            session[0] = (name, cycle, session[0][2] + 1)
            work.assignments.append((name, len(partitions)))

        consumer = Consumer(conf(work.path, **{
            "group.id": GROUP, "isolation.level": READ_COMMITTED,
            "auto.offset.reset": "earliest", "heartbeat.interval.ms": 20,
            "auto.commit.interval.ms": 50}))
        try:
            consumer.subscribe([TOPIC], on_assign=on_assign)
            polls = rng.randint(1, MEMBER_POLLS_MAX)
            deadline = time.monotonic() + THREAD_TIMEOUT_S
            while polls > 0 or session[0][2] == 0:       # at least until assigned once
                assert time.monotonic() < deadline, f"{name} was never assigned"
                messages = consumer.consume(20, POLL_TIMEOUT_S)
                record_poll(work.history, name, READ_COMMITTED, session[0], messages)
                polls -= 1
        finally:
            consumer.close()
        time.sleep(rng.uniform(0, JOIN_PAUSE_MAX_S))


def run_workload(path) -> Workload:
    """Every thread to its end, then a full read at both isolation levels."""
    create_topic(path)
    work = Workload(path)
    for index in range(TXN_PRODUCERS):
        work.start(transactional_producer, index)
    for index in range(IDEMPOTENT_PRODUCERS):
        work.start(idempotent_producer, index)
    producers = list(work.threads)
    for isolation in (READ_COMMITTED, READ_UNCOMMITTED):
        work.start(tailer, isolation)
    for index in range(GROUP_MEMBERS):
        work.start(group_member, index)
    work.join(producers)
    work.done.set()
    work.join(work.threads)
    assert not work.errors, work.errors
    for isolation in (READ_COMMITTED, READ_UNCOMMITTED):
        read_to_end(path, isolation, ALL, work.history, f"final-{isolation}")
    return work


def test_concurrent_transactions_and_consumers_give_a_valid_history(tmp_path):
    work = run_workload(tmp_path / "data")
    history = work.history
    result = history.check()
    assert result.valid, str(result)
    outcomes = [txn.outcome for txn in history.txns]
    assert outcomes.count("ok") > 0 and outcomes.count("fail") > 0
    assert len(work.assignments) >= GROUP_MEMBERS * MEMBER_CYCLES_MIN   # rebalances
    assert any(poll.process.startswith("member-") for poll in history.polls)
    committed = {w.value for w in history.writes if w.outcome == "ok"
                 and (w.txn is None or w.txn.outcome == "ok")}
    final = {record[3] for poll in history.polls if poll.process == "final-read_committed"
             for record in poll.records}
    assert final == committed


def test_read_uncommitted_reads_relabelled_read_committed_are_reported_as_g1a(tmp_path):
    path = tmp_path / "data"
    create_topic(path)
    work = Workload(path)
    transactional_producer(work, 0, txns=8)
    read_to_end(path, READ_UNCOMMITTED, ALL, work.history, "dirty-reader")
    history = work.history
    assert history.check().valid
    aborted_read = {record[3] for poll in history.polls for record in poll.records} & {
        w.value for w in history.writes if w.txn.outcome == "fail"}
    assert aborted_read, "the small workload read no aborted record"
    broken = History()
    broken.writes, broken.txns = history.writes, history.txns
    broken.polls = [dataclasses.replace(poll, isolation=READ_COMMITTED)
                    for poll in history.polls]
    result = broken.check()
    assert not result.valid and "G1a" in result.anomalies
    assert len(result.anomalies["G1a"]) == len(aborted_read)
