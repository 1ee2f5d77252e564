"""A transactional producer killed at every step of the commit protocol, through the clients.

Goal: the decision of a transaction is final once its Prepare record is durable. A producer
killed after that point leaves a transaction that completes as committed when the directory is
reopened (every record visible to read_committed, its consumer offsets committed); one killed
before it leaves a transaction that ends aborted once its timeout passes. read_committed never
shows part of a transaction, nothing hangs (a new transaction of the same id commits and is
seen), and the history checker is clean.

Method: a child process runs txn.Producer with a transactional.id: transaction 0 writes to
five partitions of two topics plus transactional offsets and commits; transaction 1 does the
same and commits with LOGSTORE_FAILPOINTS=<point>=crash@<skip> armed, so the child dies by
SIGKILL exactly at that step of the second commit (the skip lets the first commit's hits pass).
The child prints every send, acknowledgement and commit call; the parent rebuilds the history
from those lines, reopens the directory, and checks what readers see.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from txn import AdminClient, NewTopic, Producer, TopicPartition, failpoints
from txn.broker import Broker
from txn.history import OK, History

from history_support import (BROKER, CHILD_REPORT, READ_COMMITTED, READ_UNCOMMITTED,
                             child_environment, conf, parse_events, read_to_end, values_of)

TOPICS = {"a": 3, "b": 2, "in": 1}
DATA_PARTITIONS = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
TXN_ID = "crashing-producer"
GROUP = "crash-group"
TIMEOUT_MS = 1500                     # the crashed producer's transaction.timeout.ms
RECORDS_PER_PARTITION = 2
OFFSETS = [10, 20]                    # the "in-0" offset each transaction commits
CHILD_TIMEOUT_S = 120
# Failpoint hits of transaction 0's commit: one per step, and one after each of its markers
# (every data partition and the group's __consumer_offsets partition).
MARKERS_PER_COMMIT = len(DATA_PARTITIONS) + 1
COMMIT_POINTS = {             # point -> (hits to let pass, outcome of transaction 1)
    "coordinator.before_prepare": (1, "aborted"),
    "coordinator.after_prepare": (1, "committed"),
    "coordinator.after_marker": (MARKERS_PER_COMMIT, "committed"),       # its first marker
    "coordinator.after_marker@3": (MARKERS_PER_COMMIT + 2, "committed"),  # its third
    "coordinator.before_complete": (1, "committed"),
    "coordinator.after_complete": (1, "committed"),
}

CHILD = CHILD_REPORT + textwrap.dedent("""
    import json, sys
    from txn import Consumer, Producer, TopicPartition
    data, plan = sys.argv[1], json.loads(sys.argv[2])
    base = {"log.dirs": data, **plan["broker"]}

    def on_delivery(error, message):
        if error is None:
            report("ACK", message.value().decode(), message.offset())

    group = Consumer({**base, "group.id": plan["group"], "enable.auto.commit": False})
    producer = Producer({**base, "transactional.id": plan["txn_id"], "on_delivery": on_delivery,
                         "transaction.timeout.ms": plan["timeout_ms"]})
    producer.init_transactions(30)
    for number, (records, offset) in enumerate(plan["txns"]):
        producer.begin_transaction()
        for value, topic, partition in records:
            report("SEND", number, value, topic, partition)
            producer.produce(topic, value.encode(), partition=partition)
        producer.send_offsets_to_transaction([TopicPartition("in", 0, offset)],
                                             group.consumer_group_metadata(), 30)
        report("COMMIT", number)
        producer.commit_transaction(30)
        report("COMMITTED", number)
    report("SURVIVED")
""")


def transaction_records(number: int) -> list[tuple[str, str, int]]:
    return [(f"t{number}-{topic}{partition}-{i}", topic, partition)
            for topic, partition in DATA_PARTITIONS for i in range(RECORDS_PER_PARTITION)]


def create_topics(path) -> None:
    with AdminClient(conf(path)) as admin:
        futures = admin.create_topics([NewTopic(t, n) for t, n in TOPICS.items()])
        for future in futures.values():
            future.result(30)


def run_child(path, point: str, skip: int) -> str:
    """The child's stdout; it must have died by SIGKILL in the second commit."""
    plan = {"broker": {f"broker.{k}": v for k, v in BROKER.items()}, "group": GROUP,
            "txn_id": TXN_ID, "timeout_ms": TIMEOUT_MS,
            "txns": [(transaction_records(n), OFFSETS[n]) for n in range(2)]}
    name = point.partition("@")[0]
    env = child_environment(**{failpoints.ENV_VAR: f"{name}=crash@{skip}"})
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(plan)],
                          env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    events = [e[:2] for e in parse_events(proc.stdout)]
    assert ["COMMIT", "1"] in events and ["COMMITTED", "1"] not in events, proc.stdout
    return proc.stdout


def history_of(stdout: str) -> tuple[History, dict]:
    """The child's history: sends acknowledged at their offsets; transaction 0 committed,
    transaction 1's commit invoked (its outcome is set by the caller)."""
    history = History()
    txns, writes = {}, {}
    for kind, *fields in parse_events(stdout):
        if kind == "SEND":
            number, value, topic, partition = int(fields[0]), fields[1], fields[2], fields[3]
            txn = txns.setdefault(number, history.begin("producer"))
            writes[value] = history.send("producer", value.encode(), topic, int(partition),
                                         txn=txn)
        elif kind == "ACK":
            history.send_ok(writes[fields[0]], int(fields[1]))
        elif kind == "COMMIT":
            history.commit_invoke(txns[int(fields[0])])
        elif kind == "COMMITTED":
            history.commit_ok(txns[int(fields[0])])
    assert all(w.outcome == OK for w in history.writes), "a send was not acknowledged"
    return history, txns


def committed_offset(path) -> int:
    from txn import Consumer
    consumer = Consumer(conf(path, **{"group.id": GROUP, "enable.auto.commit": False}))
    try:
        return consumer.committed([TopicPartition("in", 0)], 30)[0].offset
    finally:
        consumer.close()


def expire_open_transaction(broker: Broker) -> None:
    """Let the crashed producer's transaction time out and run the coordinator's sweep."""
    time.sleep(TIMEOUT_MS / 1000 * 1.2)
    broker.transaction_coordinator.abort_timed_out_transactions()


def transaction_state(broker: Broker) -> str:
    [described] = broker.transaction_coordinator.describe_transactions([TXN_ID])
    return described.transaction_state


def commit_successor(path, history: History) -> bytes:
    """A new instance of the id commits one record: the id and its partitions are not stuck."""
    value = b"t2-successor"
    producer = Producer(conf(path, **{"transactional.id": TXN_ID}))
    try:
        producer.init_transactions(30)
        txn = history.begin("successor")
        producer.begin_transaction()
        write = history.send("successor", value, "a", 0, txn=txn)
        producer.produce("a", value, partition=0,
                         on_delivery=lambda err, msg: history.send_ok(write, msg.offset()))
        history.commit_invoke(txn)
        producer.commit_transaction(30)
        history.commit_ok(txn)
    finally:
        producer.close()
    return value


@pytest.mark.parametrize("point", sorted(COMMIT_POINTS))
def test_a_producer_killed_in_its_commit_leaves_a_whole_transaction(tmp_path, point):
    skip, outcome = COMMIT_POINTS[point]
    committed = outcome == "committed"
    path = tmp_path / "data"
    create_topics(path)
    history, txns = history_of(run_child(path, point, skip))
    first, second = ({value.encode() for value, _, _ in transaction_records(n)}
                     for n in range(2))
    broker = Broker.open(str(path), dict(BROKER), background=False)     # reopen: recovery
    try:
        if not committed:
            assert transaction_state(broker) == "Ongoing"       # pins the LSO until...
            early = read_to_end(path, READ_COMMITTED, DATA_PARTITIONS, history, "early")
            assert sorted(values_of(early)) == sorted(first)
            expire_open_transaction(broker)                     # ...its timeout aborts it
        (history.commit_ok if committed else history.abort)(txns[1])
        assert transaction_state(broker) == ("CompleteCommit" if committed else "CompleteAbort")
        visible = read_to_end(path, READ_COMMITTED, DATA_PARTITIONS, history, "committed")
        dirty = read_to_end(path, READ_UNCOMMITTED, DATA_PARTITIONS, history, "uncommitted")
        assert sorted(values_of(visible)) == sorted(first | (second if committed else set()))
        assert sorted(values_of(dirty)) == sorted(first | second)
        assert committed_offset(path) == OFFSETS[1 if committed else 0]
        successor = commit_successor(path, history)
        after = read_to_end(path, READ_COMMITTED, DATA_PARTITIONS, history, "after")
        assert values_of(after).count(successor) == 1
        result = history.check()
        assert result.valid, str(result)
    finally:
        broker.release()
