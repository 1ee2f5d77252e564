"""Zombie fencing: two instances with one transactional.id; the newer one wins.

    python examples/zombie_fencing.py [DATA_DIR]

Instance A opens a transaction and stalls (a GC pause, a network partition). Instance B starts
with the same transactional.id: init_transactions() bumps the producer epoch and aborts A's
open transaction. When A wakes up, its calls fail with the fatal _FENCED error (the broker's
PRODUCER_FENCED) and A must close: only B's records are ever committed. Without DATA_DIR the
example works in a temporary directory and removes it.
"""

import sys
import tempfile

from txn import Consumer, KafkaError, KafkaException, Producer


def run(data_dir):
    config = {"log.dirs": data_dir, "transactional.id": "payment-processor"}
    instance_a = Producer(config)
    instance_a.init_transactions()
    instance_a.begin_transaction()
    instance_a.produce("payments", b"charge 42 EUR (from A)")
    instance_a.flush()
    print("A: transaction open, then A stalls")

    instance_b = Producer(config)
    instance_b.init_transactions()         # fences A and aborts its open transaction
    print("B: init_transactions() fenced A")

    try:
        instance_a.commit_transaction()
    except KafkaException as exc:
        error = exc.args[0]
        assert error.code() == KafkaError._FENCED and error.fatal()
        print(f"A: commit_transaction() failed: {error.name()}, fatal={error.fatal()}")
        instance_a.close()                 # a fenced producer can only be closed

    instance_b.begin_transaction()
    instance_b.produce("payments", b"charge 42 EUR (from B)")
    instance_b.commit_transaction()
    instance_b.close()

    consumer = Consumer({"log.dirs": data_dir, "group.id": "ledger",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["payments"])
    while (message := consumer.poll(1.0)) is not None:
        if message.error() is None:
            print("committed:", message.value().decode())
    consumer.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
