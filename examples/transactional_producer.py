"""A transactional producer: records to two topics committed together, and one aborted.

    python examples/transactional_producer.py [DATA_DIR]

Without DATA_DIR the example works in a temporary directory and removes it. The code is the
confluent-kafka API: with `bootstrap.servers` instead of `log.dirs` it runs against Kafka.
"""

import sys
import tempfile

from txn import KafkaException, Producer


def on_delivery(error, message):
    """Delivery reports are served by poll(), flush() and commit_transaction()."""
    if error is None:
        print(f"  delivered to {message.topic()}-{message.partition()}@{message.offset()}")
    else:
        print(f"  not delivered: {error.str()}")


def run(data_dir):
    producer = Producer({"log.dirs": data_dir, "transactional.id": "order-service-1",
                         "on_delivery": on_delivery})
    producer.init_transactions()           # fences any older instance with this id

    # An order and its payment: both topics, one atomic transaction.
    producer.begin_transaction()
    producer.produce("orders", key=b"1001", value=b'{"order": 1001, "total": 249.0}')
    producer.produce("payments", key=b"1001", value=b'{"order": 1001, "paid": 249.0}')
    producer.commit_transaction()          # returns once data and commit are durable
    print("committed order 1001 and its payment")

    # Something went wrong half-way: abort, and no read_committed consumer sees either record.
    producer.begin_transaction()
    producer.produce("orders", key=b"1002", value=b'{"order": 1002, "total": 99.0}')
    try:
        raise ValueError("card declined")
    except ValueError as exc:
        producer.abort_transaction()
        print(f"aborted order 1002 ({exc})")

    # Transactional calls raise KafkaException; fatal errors (fencing) end the producer.
    try:
        producer.begin_transaction()
        producer.produce("orders", key=b"1003", value=b'{"order": 1003, "total": 12.9}')
        producer.commit_transaction()
        print("committed order 1003")
    except KafkaException as exc:
        error = exc.args[0]
        if error.txn_requires_abort():
            producer.abort_transaction()
        elif error.fatal():
            raise
    producer.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
