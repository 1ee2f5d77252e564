"""An idempotent consumer: each message's effect and its id commit in one SQLite transaction,
so a message delivered again is skipped.

    python examples/idempotent_consumer.py [DATA_DIR]

Payments are published at least once (one is sent twice, with the same payment_id header).
The ledger consumer credits accounts through IdempotentConsumer.process(message, fn): fn runs
on the consumer's SQLite connection and the message id goes into `processed_ids` in the same
transaction. The resent payment is skipped, and so is everything after a seek back to the
start (what a crash before the offset commit would redeliver). The store goes to
DATA_DIR/log and SQLite to DATA_DIR/ledger.db; without DATA_DIR a temporary directory is
used and removed.
"""

import os
import sys
import tempfile

from txn import Consumer, Producer, TopicPartition
from txn.outbox import IdempotentConsumer, connect, header_id

PAYMENTS = [("p1", "alice", 100), ("p2", "bob", 250), ("p3", "alice", 40), ("p3", "alice", 40)]


def credit(conn, message):
    conn.execute("INSERT INTO balances VALUES (?, ?) ON CONFLICT (account) DO UPDATE "
                 "SET cents = cents + excluded.cents",
                 (message.key().decode(), int(message.value())))


def process_all(ledger):
    credited = skipped = 0
    while True:
        message = ledger.consumer.poll(10)
        if message is None or message.error() is not None:      # the end of the partition
            return credited, skipped
        if ledger.process(message, credit):
            credited += 1
        else:
            skipped += 1


def run(data_dir):
    log_dirs = os.path.join(data_dir, "log")
    producer = Producer({"log.dirs": log_dirs})
    for payment_id, account, cents in PAYMENTS:
        producer.produce("payments", str(cents), account, headers={"payment_id": payment_id})
    producer.flush()

    conn = connect(os.path.join(data_dir, "ledger.db"))    # WAL, synchronous=FULL
    conn.execute("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, cents INTEGER)")
    conn.commit()
    consumer = Consumer({"log.dirs": log_dirs, "group.id": "ledger",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition("payments", 0, 0)])
    ledger = IdempotentConsumer(consumer, conn, id_of=header_id("payment_id"))

    credited, skipped = process_all(ledger)
    print(f"first pass: {credited} credited, {skipped} skipped (the resent p3)")
    consumer.seek(TopicPartition("payments", 0, 0))        # everything is delivered again
    credited, skipped = process_all(ledger)
    print(f"after a seek back to offset 0: {credited} credited, {skipped} skipped")
    balances = dict(conn.execute("SELECT account, cents FROM balances ORDER BY account"))
    print(f"balances: {balances}")
    consumer.close()
    producer.close()
    conn.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        os.makedirs(sys.argv[1], exist_ok=True)
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
