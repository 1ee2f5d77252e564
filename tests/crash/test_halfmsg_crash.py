"""kill -9 at every step of a half message's life, then reopen, check back and count.

Goal: a crash between the half write and the local transaction, during the local transaction,
between the COMMIT decision and visibility, or in the middle of a check never loses or
duplicates the message, and never shows one whose local transaction did not commit.
Method: a child process (halfmsg_child.py) sends one payment message whose local transaction
records the payment in SQLite; it dies by SIGKILL at a named failpoint (LOGSTORE_FAILPOINTS)
or inside its local transaction. The test then reopens the store in this process with a
listener that answers from the SQLite table, runs check rounds on a fake clock, and counts the
payment records a read_committed consumer sees: exactly one if the payment row exists, none if
it does not.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from logstore.scheduler import wall_ms
from txn import Consumer, TopicPartition
from txn.halfmsg import (OP_HALF_TOPIC, TRANSACTION_CHECK_INTERVAL_MS,
                         TRANSACTION_TIMEOUT_MS, TransactionProducer)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import halfmsg_child as child  # noqa: E402

ORDER_ID = "42"
CHILD_TIMEOUT_S = 120


class CheckingListener(child.PaymentListener):
    def __init__(self, conn):
        super().__init__(conn, "parent")
        self.checks = []

    def check_local_transaction(self, message):
        self.checks.append(message)
        return super().check_local_transaction(message)


def run_child(tmp_path, scenario: str, failpoints: str = "") -> None:
    env = dict(os.environ, LOGSTORE_FAILPOINTS=failpoints)
    done = subprocess.run([sys.executable, os.path.join(HERE, "halfmsg_child.py"),
                           str(tmp_path / "data"), str(tmp_path / "app.db"), scenario,
                           ORDER_ID], env=env, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S)
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-3000:])


def read_all(tmp_path, topic: str, isolation: str = "read_committed") -> list:
    consumer = Consumer({"log.dirs": str(tmp_path / "data"), **child.FAST_BROKER,
                         "group.id": "auditor", "isolation.level": isolation,
                         "enable.partition.eof": True})
    try:
        if topic not in consumer.list_topics().topics:
            return []
        consumer.assign([TopicPartition(topic, 0, 0)])
        out = []
        while True:
            message = consumer.poll(5.0)
            assert message is not None
            if message.error() is not None:
                return out
            out.append(message)
    finally:
        consumer.close()


def count_payments(tmp_path, isolation: str = "read_committed") -> int:
    payments = read_all(tmp_path, child.TOPIC, isolation)
    assert all(m.key() == ORDER_ID.encode() for m in payments)
    return len(payments)


def payment_recorded(tmp_path) -> bool:
    conn = sqlite3.connect(tmp_path / "app.db")
    try:
        return conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 1
    finally:
        conn.close()


def reopen_and_check(tmp_path):
    """Reopen, run a check round past every due time; (listener, pending before the round)."""
    conn = child.open_db(str(tmp_path / "app.db"))
    listener = CheckingListener(conn)
    producer = TransactionProducer({"log.dirs": str(tmp_path / "data"), **child.FAST_BROKER},
                                   child.GROUP, listener, start_check_service=False)
    try:
        pending = producer.check_service.pending()
        now = wall_ms() + TRANSACTION_TIMEOUT_MS + TRANSACTION_CHECK_INTERVAL_MS
        producer.check_service.run_once(now)
        assert producer.check_service.pending() == []
        return listener, pending
    finally:
        producer.close()
        conn.close()


# (scenario, failpoints, is the payment row committed, does the check-back have to ask)
STEPS = [
    ("send", "halfmsg.after_half_write=crash", False, True),
    ("kill_before_local_commit", "", False, True),
    ("kill_after_local_commit", "", True, True),
    ("send", "halfmsg.after_local_transaction=crash", True, True),
    ("send", "halfmsg.before_end_commit=crash", True, True),
    ("send", "coordinator.after_prepare=crash", True, False),
    ("send", "coordinator.after_marker=crash", True, False),
    ("send", "halfmsg.after_end=crash", True, False),
]


@pytest.mark.parametrize("scenario, failpoints, recorded, asked", STEPS,
                         ids=[s[1].split("=")[0] or s[0] for s in STEPS])
def test_kill_during_send_then_check_back(tmp_path, scenario, failpoints, recorded, asked):
    run_child(tmp_path, scenario, failpoints)
    assert payment_recorded(tmp_path) is recorded
    listener, pending = reopen_and_check(tmp_path)
    assert len(pending) == (1 if asked else 0)
    assert len(listener.checks) == (1 if asked else 0)
    assert count_payments(tmp_path) == (1 if recorded else 0)
    assert len(read_all(tmp_path, OP_HALF_TOPIC)) == 1          # one outcome, recorded once
    if failpoints.startswith("halfmsg.before_end_commit"):
        # the killed end's records are in the log, aborted: read_uncommitted sees both copies
        assert count_payments(tmp_path, "read_uncommitted") == 2


def test_kill_during_a_check_keeps_the_check_count(tmp_path):
    run_child(tmp_path, "check", "halfmsg_check.after_put_back=crash")
    assert payment_recorded(tmp_path)
    conn = child.open_db(str(tmp_path / "app.db"))
    listener = CheckingListener(conn)
    producer = TransactionProducer({"log.dirs": str(tmp_path / "data"), **child.FAST_BROKER},
                                   child.GROUP, listener, start_check_service=False)
    try:
        (half,) = producer.check_service.pending()
        assert half.check_times == 1 and half.check_ms > half.born_ms
        service = producer.check_service
        assert service.run_once(half.check_ms + TRANSACTION_CHECK_INTERVAL_MS - 1).checked == []
        report = service.run_once(half.check_ms + TRANSACTION_CHECK_INTERVAL_MS)
        assert [c.check_times for c in report.committed] == [2]
    finally:
        producer.close()
        conn.close()
    assert count_payments(tmp_path) == 1
