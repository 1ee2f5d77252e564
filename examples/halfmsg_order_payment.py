"""RocketMQ-style transactional messages: payments sent as half messages with a local
transaction and a check-back.

    python examples/halfmsg_order_payment.py [DATA_DIR]

The payment service charges a card in its local transaction (a row in SQLite) and answers
COMMIT_MESSAGE (the payment message becomes visible), ROLLBACK_MESSAGE (it never does) or UNKNOW
(ask me later). For UNKNOW the producer's check-back service calls check_local_transaction once
the message is older than the check timeout (RocketMQ's default 6 s; 0.5 s here so the example
is quick) and every check interval after that. The store goes to DATA_DIR/log and SQLite to
DATA_DIR/payments.db; without DATA_DIR a temporary directory is used and removed.
"""

import os
import sqlite3
import sys
import tempfile
import threading
import time

from txn import Consumer, TopicPartition
from txn.halfmsg import (LocalTransactionState, TransactionListener, TransactionMessage,
                         TransactionProducer)

GATEWAY = {1: "captured", 2: "declined", 3: "pending"}       # what the card gateway says


class PaymentListener(TransactionListener):
    def __init__(self, db_path):
        self.db = sqlite3.connect(db_path, check_same_thread=False)   # the check-back thread
        self.db.execute("CREATE TABLE IF NOT EXISTS charges (order_id INTEGER PRIMARY KEY, "
                        "status TEXT)")
        self.db.commit()
        self.lock = threading.Lock()

    def execute_local_transaction(self, message, order_id):
        status = GATEWAY[order_id]
        with self.lock, self.db:
            self.db.execute("INSERT INTO charges VALUES (?, ?)", (order_id, status))
        return self.state(status)

    def check_local_transaction(self, message):
        with self.lock:
            (status,) = self.db.execute("SELECT status FROM charges WHERE order_id = ?",
                                        (int(message.key),)).fetchone()
        state = self.state(status)
        print(f"check-back #{message.check_times}: order {int(message.key)} -> {state.name}")
        return state

    def gateway_callback(self, order_id, status):
        with self.lock, self.db:
            self.db.execute("UPDATE charges SET status = ? WHERE order_id = ?",
                            (status, order_id))

    @staticmethod
    def state(status):
        return {"captured": LocalTransactionState.COMMIT,
                "declined": LocalTransactionState.ROLLBACK}.get(status,
                                                                LocalTransactionState.UNKNOWN)


def run(data_dir):
    log_dirs = os.path.join(data_dir, "log")
    listener = PaymentListener(os.path.join(data_dir, "payments.db"))
    producer = TransactionProducer({"log.dirs": log_dirs}, "payment-service", listener,
                                   check_timeout_ms=500, check_interval_ms=500)
    for order_id in GATEWAY:
        message = TransactionMessage("payments", f"payment for order {order_id}",
                                     key=str(order_id))
        result = producer.send_message_in_transaction(message, order_id)
        print(f"order {order_id}: {result.local_transaction_state.name}")

    listener.gateway_callback(3, "captured")          # the gateway answers late for order 3
    deadline = time.monotonic() + 60
    while producer.check_service.pending():           # undecided half messages
        if time.monotonic() > deadline:
            sys.exit("the check-back did not settle order 3")
        time.sleep(0.1)

    consumer = Consumer({"log.dirs": log_dirs, "group.id": "shipping",
                         "isolation.level": "read_committed", "enable.partition.eof": True})
    consumer.assign([TopicPartition("payments", 0, 0)])
    orders = []
    while True:
        message = consumer.poll(10)
        if message is None or message.error() is not None:
            break
        orders.append(int(message.key()))
    print(f"payments visible to consumers: orders {orders}")
    consumer.close()
    producer.close()
    listener.db.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        os.makedirs(sys.argv[1], exist_ok=True)
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
