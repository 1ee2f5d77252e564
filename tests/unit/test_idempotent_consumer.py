"""The idempotent-consumer helper (txn/outbox.py `IdempotentConsumer`) on real SQLite files.

Goal: a message's business change and its processed id commit together, so a redelivered
message (offsets lost in a crash, a seek back, a duplicate with the same id) is skipped and a
failed change leaves no trace.
Method: payments are produced to a topic; a consumer credits accounts in SQLite through
IdempotentConsumer.process; redeliveries are caused by not committing offsets, by a failpoint
between the SQLite commit and the offset commit, and by producing duplicates.
"""

from __future__ import annotations

import pytest
from client_support import FAST_BROKER

from txn import Consumer, KafkaError, Message, Producer, failpoints
from txn.outbox import PROCESSED_TABLE, IdempotentConsumer, connect, header_id, offset_id

TOPIC = "payments"


def conf(tmp_path, **extra) -> dict:
    return {"log.dirs": str(tmp_path / "data"), **FAST_BROKER, **extra}


@pytest.fixture
def db(tmp_path):
    conn = connect(str(tmp_path / "ledger.db"))
    conn.execute("CREATE TABLE IF NOT EXISTS balance (account TEXT PRIMARY KEY, cents INTEGER)")
    conn.commit()
    yield conn
    failpoints.disarm()
    conn.close()


@pytest.fixture
def consumers(tmp_path):
    opened = []

    def make(group: str = "ledger"):
        consumer = Consumer(conf(tmp_path, **{"group.id": group,
                                              "auto.offset.reset": "earliest",
                                              "enable.auto.commit": False}))
        consumer.subscribe([TOPIC])
        opened.append(consumer)
        return consumer

    yield make
    for consumer in opened:
        consumer.close()


def produce(tmp_path, payments) -> None:
    """payments: [(account, cents, payment id)]"""
    producer = Producer(conf(tmp_path))
    for account, cents, payment_id in payments:
        producer.produce(TOPIC, b"%d" % cents, account.encode(),
                         headers=[("payment_id", payment_id.encode())])
    assert producer.flush(30) == 0
    producer.close()


def credit(conn, message) -> None:
    conn.execute("INSERT INTO balance VALUES (?, ?) ON CONFLICT (account) DO UPDATE "
                 "SET cents = cents + excluded.cents",
                 (message.key().decode(), int(message.value())))


def balances(conn) -> dict:
    return dict(conn.execute("SELECT account, cents FROM balance"))


def run(helper, count: int, fn=credit) -> list:
    """Poll until `count` messages were handled; their results (True ran, False skipped)."""
    results = []
    for _ in range(200):
        if len(results) == count:
            break
        result = helper.poll(fn, timeout=0.2)
        if result is not None:
            results.append(result)
    return results


PAYMENTS = [("alice", 100, "p1"), ("bob", 50, "p2"), ("alice", 25, "p3"), ("carol", 5, "p4")]


def test_each_message_is_processed_once_with_its_id_recorded(tmp_path, db, consumers):
    produce(tmp_path, PAYMENTS)
    helper = IdempotentConsumer(consumers(), db)
    assert run(helper, 4) == [True] * 4
    assert balances(db) == {"alice": 125, "bob": 50, "carol": 5}
    rows = db.execute(f"SELECT consumer, message_id FROM {PROCESSED_TABLE}").fetchall()
    assert sorted(rows) == [("ledger", f"{TOPIC}/0/{i}") for i in range(4)]
    assert (helper.processed, helper.skipped) == (4, 0)


def test_messages_redelivered_after_lost_offsets_are_skipped(tmp_path, db, consumers):
    produce(tmp_path, PAYMENTS)
    first = consumers()
    assert run(IdempotentConsumer(first, db, commit_offsets=False), 4) == [True] * 4
    first.close()                              # no offset was committed: all come again
    calls = []
    again = IdempotentConsumer(consumers(), db)
    assert run(again, 4, lambda conn, m: calls.append(m)) == [False] * 4
    assert calls == [] and again.skipped == 4
    assert balances(db) == {"alice": 125, "bob": 50, "carol": 5}


def test_a_crash_between_the_local_commit_and_the_offset_commit(tmp_path, db, consumers):
    produce(tmp_path, PAYMENTS)
    helper = IdempotentConsumer(consumers(), db)
    failpoints.arm("idempotent.after_local_commit", "raise", skip=2, count=1)
    with pytest.raises(failpoints.FailpointTriggered):
        run(helper, 4)
    assert balances(db) == {"alice": 125, "bob": 50}          # the third one committed
    helper.consumer.close()
    resumed = IdempotentConsumer(consumers(), db)
    assert run(resumed, 2) == [False, True]          # the third is redelivered and skipped
    assert balances(db) == {"alice": 125, "bob": 50, "carol": 5}


def test_a_failing_change_leaves_no_trace_and_is_retried(tmp_path, db, consumers):
    produce(tmp_path, PAYMENTS[:1])
    consumer = consumers()
    helper = IdempotentConsumer(consumer, db)

    def broken(conn, message):
        credit(conn, message)
        raise RuntimeError("ledger service down")

    message = None
    while message is None or message.error() is not None:
        message = consumer.poll(1.0)
    with pytest.raises(RuntimeError, match="ledger service down"):
        helper.process(message, broken)
    assert balances(db) == {} and not helper.is_processed(offset_id(message))
    assert helper.process(message, credit) is True
    assert balances(db) == {"alice": 100}


def test_duplicates_with_the_same_header_id_are_skipped(tmp_path, db, consumers):
    produce(tmp_path, PAYMENTS[:2] + [("alice", 100, "p1")])       # an at-least-once resend
    helper = IdempotentConsumer(consumers(), db, id_of=header_id("payment_id"))
    assert run(helper, 3) == [True, True, False]
    assert balances(db) == {"alice": 100, "bob": 50}
    assert helper.is_processed("payment_id:p1")


def test_processed_ids_are_kept_per_consumer(tmp_path, db, consumers):
    produce(tmp_path, PAYMENTS[:1])
    assert run(IdempotentConsumer(consumers("ledger"), db), 1) == [True]
    assert run(IdempotentConsumer(consumers("audit"), db), 1) == [True]
    assert balances(db) == {"alice": 200}


def test_misuse_is_refused(tmp_path, db, consumers):
    produce(tmp_path, PAYMENTS[:1])
    helper = IdempotentConsumer(consumers(), db)

    def commits_itself(conn, message):
        credit(conn, message)
        conn.commit()

    with pytest.raises(RuntimeError, match="committed the transaction itself"):
        run(helper, 1, commits_itself)
    db.execute("INSERT INTO balance VALUES ('x', 1)")           # an open transaction
    with pytest.raises(RuntimeError, match="outside a transaction"):
        helper.process(Message(TOPIC, 0, 0, b"alice", b"1"), credit)
    db.rollback()
    with pytest.raises(ValueError, match="not a message"):
        helper.process(Message(error=KafkaError(KafkaError._PARTITION_EOF)), credit)
