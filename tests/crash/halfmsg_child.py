"""Child process of tests/crash/test_halfmsg_crash.py (not a test module).

    python halfmsg_child.py <log dir> <sqlite db> <scenario> <order id>

Sends one half message for the order's payment; its local transaction records the payment in
SQLite. The scenario (plus LOGSTORE_FAILPOINTS set by the parent) decides where it dies:
  send                    nothing special (failpoints decide)
  kill_before_local_commit  the local transaction dies before its SQLite commit
  kill_after_local_commit   the local transaction dies after its SQLite commit
  check                   the local transaction answers UNKNOW, then one check round runs
                          7 s later (failpoints decide where it dies)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys

from txn.halfmsg import LocalTransactionState, TransactionMessage, TransactionProducer

FAST_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1}
GROUP = "payment-service"
TOPIC = "payments"


def open_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS payments (order_id INTEGER PRIMARY KEY)")
    conn.commit()
    return conn


class PaymentListener:
    def __init__(self, conn: sqlite3.Connection, scenario: str):
        self.conn = conn
        self.scenario = scenario

    def execute_local_transaction(self, message, order_id):
        self.conn.execute("INSERT INTO payments VALUES (?)", (order_id,))
        if self.scenario == "kill_before_local_commit":
            os.kill(os.getpid(), signal.SIGKILL)
        self.conn.commit()
        if self.scenario == "kill_after_local_commit":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.scenario == "check":
            return LocalTransactionState.UNKNOW
        return LocalTransactionState.COMMIT_MESSAGE

    def check_local_transaction(self, message):
        found = self.conn.execute("SELECT 1 FROM payments WHERE order_id = ?",
                                  (int(message.key),)).fetchone()
        return LocalTransactionState.COMMIT if found else LocalTransactionState.ROLLBACK


def main(log_dir: str, db: str, scenario: str, order_id: str) -> None:
    conn = open_db(db)
    producer = TransactionProducer({"log.dirs": log_dir, **FAST_BROKER}, GROUP,
                                   PaymentListener(conn, scenario), start_check_service=False)
    producer.send_message_in_transaction(
        TransactionMessage(TOPIC, b"payment of order " + order_id.encode(),
                           key=order_id.encode()), int(order_id))
    if scenario == "check":
        producer.check_service.run_once(producer.clock() + 7_000)
    producer.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
