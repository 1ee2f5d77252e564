"""A read_committed consumer: it sees committed transactions only, and open ones only once
they commit.

    python examples/read_committed_consumer.py [DATA_DIR]

A transactional producer commits one transaction, aborts another and leaves a third open;
a read_committed consumer (in a consumer group) gets the first only, then the third once it
is committed. A read_uncommitted consumer would get all of them. Without DATA_DIR the example
works in a temporary directory and removes it.
"""

import sys
import tempfile

from txn import Consumer, Producer


def poll_values(consumer, idle_s=0.5):
    """Values polled until nothing arrives for idle_s."""
    values = []
    while True:
        message = consumer.poll(idle_s)
        if message is None:
            return values
        if message.error() is None:
            values.append(message.value().decode())
        else:
            print(f"  consumer error: {message.error()}")


def run(data_dir):
    producer = Producer({"log.dirs": data_dir, "transactional.id": "writer"})
    producer.init_transactions()
    for value, commit in ((b"committed", True), (b"aborted", False)):
        producer.begin_transaction()
        producer.produce("events", value)
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.begin_transaction()
    producer.produce("events", b"pending")
    producer.flush()                       # written and fsynced, but not committed

    consumer = Consumer({"log.dirs": data_dir, "group.id": "readers",
                         "isolation.level": "read_committed",   # the default, spelled out
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["events"])
    print("before the commit:", poll_values(consumer))
    producer.commit_transaction()
    print("after the commit: ", poll_values(consumer))
    consumer.close()                       # commits the offsets (enable.auto.commit)
    producer.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
