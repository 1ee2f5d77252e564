"""The transactional outbox: business rows and their messages in one SQLite transaction, and
a relay that publishes the messages exactly once.

    python examples/outbox_relay.py [DATA_DIR]

The shop writes an order and its outbox row together (`outbox.enqueue` on the same
connection, inside the same transaction), so a rolled-back order leaves no message. The
OutboxRelay publishes outbox rows in Kafka transactions that also commit its checkpoint, then
marks them relayed: killed at any point, a restarted relay neither loses nor repeats a row.
The store goes to DATA_DIR/log and SQLite to DATA_DIR/shop.db; without DATA_DIR a temporary
directory is used and removed.
"""

import json
import os
import sys
import tempfile
import time

from txn import Consumer, TopicPartition
from txn import outbox


def place_order(conn, order_id, item, in_stock):
    try:
        with conn:                                    # one SQLite transaction
            conn.execute("INSERT INTO orders VALUES (?, ?)", (order_id, item))
            outbox.enqueue(conn, "orders", json.dumps({"order": order_id, "item": item}),
                           key=str(order_id), headers={"type": "OrderPlaced"})
            if not in_stock:
                raise LookupError(f"{item} is out of stock")
        print(f"order {order_id} placed")
    except LookupError as exc:
        print(f"order {order_id} rolled back ({exc})")


def run(data_dir):
    log_dirs = os.path.join(data_dir, "log")
    conn = outbox.connect(os.path.join(data_dir, "shop.db"))      # WAL, synchronous=FULL
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT)")
    conn.commit()

    relay = outbox.OutboxRelay(os.path.join(data_dir, "shop.db"), {"log.dirs": log_dirs},
                               poll_interval_s=0.05)
    relay.start()                                     # publishes on a background thread
    place_order(conn, 1, "espresso machine", True)
    place_order(conn, 2, "golden kettle", False)
    place_order(conn, 3, "grinder", True)
    deadline = time.monotonic() + 60
    while relay.unrelayed() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = conn.execute("SELECT COUNT(*) FROM outbox WHERE relayed_ms IS NULL").fetchone()[0]
    print(f"outbox rows not yet relayed: {left}")

    # A billing service reads the orders (read_committed: only committed transactions).
    consumer = Consumer({"log.dirs": log_dirs, "group.id": "billing",
                         "isolation.level": "read_committed", "enable.partition.eof": True})
    consumer.assign([TopicPartition("orders", 0, 0)])
    relay.close()
    conn.close()
    while True:
        message = consumer.poll(10)
        if message is None or message.error() is not None:
            break
        headers = dict(message.headers())
        print(f"log: {message.value().decode()} (outbox_id {headers['outbox_id'].decode()}, "
              f"type {headers['type'].decode()})")
    consumer.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        os.makedirs(sys.argv[1], exist_ok=True)
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
