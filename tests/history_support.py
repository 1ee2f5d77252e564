"""Helpers of the tests that record txn.history histories through the embedded clients
(tests/crash/test_txn_*, tests/crash/test_eos_kill9.py, tests/history/): one broker
configuration for parent and child processes, client configurations, a reader that takes
partitions to their end and records what it read in a History, and the children's line
protocol. (tests/ is on sys.path: pytest puts the directory of tests/conftest.py there.)

A child process reports one event per line (`KIND field...`): `CHILD_REPORT`, put at the top
of its code, defines `report`, which writes each line with one write() so that a SIGKILL never
leaves half a line (print() writes its arguments one by one when PYTHONUNBUFFERED is set). A
parent then knows exactly what the child did before it died; `parse_events` reads them back.
"""

from __future__ import annotations

import os
import textwrap
import time

from txn import Consumer, KafkaError, TopicPartition
from txn.history import READ_COMMITTED, History

# The internal topics' partition counts: every process opening a directory must use the same
# ones (ids hash onto them). Small counts open and close quickly.
BROKER = {"offsets.topic.num.partitions": 3, "transaction.state.log.num.partitions": 3}
CLIENT_BROKER = {f"broker.{name}": value for name, value in BROKER.items()}
READ_UNCOMMITTED = "read_uncommitted"
READ_DEADLINE_S = 60.0
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def conf(directory, **extra) -> dict:
    """A client configuration for the store in `directory` (keys with dots as given)."""
    return {"log.dirs": str(directory), **CLIENT_BROKER, **extra}


def child_environment(**extra: str) -> dict:
    """os.environ with the checkout on PYTHONPATH (children import txn) and `extra`."""
    path = os.pathsep.join(filter(None, [CHECKOUT, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def value_label(message) -> bytes:
    return message.value()


def read_to_end(directory, isolation: str, partitions: list[tuple[str, int]],
                history: History | None = None, process: str = "reader",
                label=value_label) -> list[tuple]:
    """Every record of `partitions` from offset 0 to the end (the LSO for read_committed) as
    (topic, partition, offset, label(message)), label defaulting to the value; recorded in
    `history` as one poll per message batch."""
    consumer = Consumer(conf(directory, **{
        "group.id": f"check-{process}", "isolation.level": isolation,
        "enable.partition.eof": True, "enable.auto.commit": False}))
    try:
        consumer.assign([TopicPartition(t, p, 0) for t, p in partitions])
        records, ended = [], set()
        deadline = time.monotonic() + READ_DEADLINE_S
        while len(ended) < len(partitions):
            assert time.monotonic() < deadline, f"{isolation} read did not reach the end"
            batch = []
            for message in consumer.consume(1000, 0.1):
                error = message.error()
                if error is None:
                    batch.append((message.topic(), message.partition(), message.offset(),
                                  label(message)))
                elif error.code() == KafkaError._PARTITION_EOF:
                    ended.add((message.topic(), message.partition()))
                else:
                    raise AssertionError(f"consumer error {error}")
            if batch and history is not None:
                history.poll(process, isolation, batch, session=(process, id(consumer)))
            records += batch
        return records
    finally:
        consumer.close()


def values_of(records) -> list[bytes]:
    return [record[3] for record in records]


CHILD_REPORT = textwrap.dedent("""
    import sys


    def report(*fields):
        sys.stdout.write(" ".join(map(str, fields)) + "\\n")
        sys.stdout.flush()
""")


def parse_events(stdout: str) -> list[list[str]]:
    """The child's protocol lines, split into fields."""
    return [line.split() for line in stdout.splitlines() if line.strip()]


__all__ = ["BROKER", "CHILD_REPORT", "READ_COMMITTED", "READ_UNCOMMITTED",
           "child_environment", "conf", "parse_events", "read_to_end", "values_of"]
