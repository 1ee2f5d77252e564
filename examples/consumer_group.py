"""A consumer group: members share a topic's partitions and rebalance as they come and go.

    python examples/consumer_group.py [DATA_DIR]

One member takes all four partitions; a second one joins and the group splits them two and
two (on_revoke / on_assign run inside poll()); the second leaves and the first takes them all
again. Offsets are committed by the group, so no record is read twice. Without DATA_DIR the
example works in a temporary directory and removes it.
"""

import sys
import tempfile
import time

from txn import AdminClient, Consumer, NewTopic, Producer

PARTITIONS = 4
RECORDS = 40


def member(data_dir, name, received):
    consumer = Consumer({"log.dirs": data_dir, "group.id": "dashboard",
                         "auto.offset.reset": "earliest",
                         "heartbeat.interval.ms": 100})     # notice rebalances quickly

    def on_assign(consumer, partitions):
        print(f"{name}: assigned {sorted(p.partition for p in partitions)}")

    def on_revoke(consumer, partitions):                # after the automatic commit
        print(f"{name}: revoked {sorted(p.partition for p in partitions)}")

    consumer.subscribe(["clicks"], on_assign=on_assign, on_revoke=on_revoke)
    received[name] = []
    return consumer


def poll_all(consumers, received, until, timeout_s=30.0):
    """Poll every member in turn (each poll serves its rebalance callbacks) until until()."""
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        for name, consumer in consumers.items():
            message = consumer.poll(0.05)
            if message is not None and message.error() is None:
                received[name].append(message.value())


def run(data_dir):
    with AdminClient({"log.dirs": data_dir}) as admin:
        admin.create_topics([NewTopic("clicks", PARTITIONS)])["clicks"].result()
    producer = Producer({"log.dirs": data_dir})
    for i in range(RECORDS):
        producer.produce("clicks", key=f"user-{i}".encode(), value=f"click {i}".encode())
    producer.flush()
    producer.close()

    received = {}
    members = {"first": member(data_dir, "first", received)}
    poll_all(members, received, lambda: len(members["first"].assignment()) == PARTITIONS)
    members["second"] = member(data_dir, "second", received)
    poll_all(members, received, lambda: all(len(c.assignment()) == PARTITIONS // 2
                                             for c in members.values()))
    poll_all(members, received, lambda: sum(map(len, received.values())) >= RECORDS // 2)
    members.pop("second").close()          # leaves the group: the first gets everything
    poll_all(members, received, lambda: len(members["first"].assignment()) == PARTITIONS)
    poll_all(members, received, lambda: sum(map(len, received.values())) >= RECORDS)
    members["first"].close()
    total = sum(map(len, received.values()))
    distinct = len({v for values in received.values() for v in values})
    print(f"records: {total} received, {distinct} distinct, "
          + ", ".join(f"{name} {len(values)}" for name, values in received.items()))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(directory)
