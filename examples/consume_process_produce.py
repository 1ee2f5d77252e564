"""Exactly-once consume-process-produce: read `orders`, write `invoices`, and commit the
consumer's offsets in the same transaction as the output (send_offsets_to_transaction).

    python examples/consume_process_produce.py [DATA_DIR]

If the process dies between two commits, a restarted copy (same transactional.id, same group)
fences the dead one, its open transaction is aborted, and it resumes at the committed offsets:
each order yields exactly one invoice. Without DATA_DIR the example works in a temporary
directory and removes it.
"""

import sys
import tempfile

from txn import Consumer, KafkaException, Producer

BATCH = 10
ORDERS = 95


def fill_input(data_dir, count):
    producer = Producer({"log.dirs": data_dir})
    for i in range(count):
        producer.produce("orders", key=str(i).encode(), value=f"order {i}".encode())
    producer.flush()
    producer.close()


def process(data_dir, count):
    consumer = Consumer({"log.dirs": data_dir, "group.id": "invoicing",
                         "isolation.level": "read_committed",
                         "enable.auto.commit": False,          # offsets go in the transaction
                         "auto.offset.reset": "earliest"})
    producer = Producer({"log.dirs": data_dir, "transactional.id": "invoicing-1"})
    producer.init_transactions()
    consumer.subscribe(["orders"])
    processed = 0
    while processed < count:               # a real service would keep going
        messages = [m for m in consumer.consume(BATCH, timeout=1.0) if m.error() is None]
        if not messages:
            continue
        producer.begin_transaction()
        try:
            for message in messages:
                invoice = message.value().replace(b"order", b"invoice")
                producer.produce("invoices", key=message.key(), value=invoice)
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata())
            producer.commit_transaction()
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                raise                      # fatal (e.g. fenced): stop this instance
            producer.abort_transaction()
            rewind(consumer)               # process the batch again
            continue
        processed += len(messages)
    print(f"processed {processed} orders in transactions of up to {BATCH}")
    consumer.close()
    producer.close()


def rewind(consumer):
    """After an abort, go back to the committed offsets (the position does not rewind by
    itself, KAFKA-17582)."""
    for partition in consumer.committed(consumer.assignment()):
        if partition.offset >= 0:
            consumer.seek(partition)


def read_invoices(data_dir):
    consumer = Consumer({"log.dirs": data_dir, "group.id": "audit",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["invoices"])
    invoices = []
    while messages := consumer.consume(1000, timeout=1.0):
        invoices += [m.value() for m in messages if m.error() is None]
    consumer.close()
    return invoices


def run(data_dir):
    fill_input(data_dir, ORDERS)
    process(data_dir, ORDERS)
    invoices = read_invoices(data_dir)
    print(f"{len(invoices)} invoices, {len(set(invoices))} distinct")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
