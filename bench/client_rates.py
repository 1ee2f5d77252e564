"""Records per second through the embedded confluent-kafka-style clients (txn.Producer and
txn.Consumer): produce() of 100-byte values, and poll() of them back. A quick measurement
script, not a test and not part of `make bench`:

    .venv/bin/python bench/client_rates.py [--records N] [--value-bytes B] [--keys] [--acks A]

produce rate: N produce() calls from one thread plus the final flush() (every record delivered
and fsynced), so the sender thread's batching, appends and fsyncs are included. poll rate: a
consumer assigned to the partitions from the beginning, polling until it has seen all N.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time


def produce_rate(directory: str, records: int, value: bytes, keys: bool, acks: str,
                 partitions: int) -> float:
    from txn import AdminClient, NewTopic, Producer
    with AdminClient({"log.dirs": directory}) as admin:
        admin.create_topics([NewTopic("bench", partitions)])["bench"].result()
    producer = Producer({"log.dirs": directory, "acks": acks})
    produce = producer.produce
    poll = producer.poll
    key_list = [b"key-%d" % (i % 1000) for i in range(1000)] if keys else None
    started = time.perf_counter()
    if key_list is None:
        for i in range(records):
            while True:
                try:
                    produce("bench", value)
                    break
                except BufferError:              # queue.buffering.max.messages: serve
                    poll(0.05)
            if i & 0xFFFF == 0:
                poll(0)
    else:
        for i in range(records):
            while True:
                try:
                    produce("bench", value, key_list[i % 1000])
                    break
                except BufferError:
                    poll(0.05)
            if i & 0xFFFF == 0:
                poll(0)
    left = producer.flush()
    elapsed = time.perf_counter() - started
    assert left == 0
    producer.close()
    return records / elapsed


def poll_rate(directory: str, records: int, partitions: int) -> float:
    from txn import Consumer, TopicPartition
    consumer = Consumer({"log.dirs": directory, "group.id": "bench",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition("bench", p, 0) for p in range(partitions)])
    poll = consumer.poll
    seen = 0
    started = time.perf_counter()
    while seen < records:
        message = poll(1.0)
        if message is not None and message.error() is None:
            seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--keys", action="store_true")
    parser.add_argument("--acks", default="all")
    parser.add_argument("--skip-poll", action="store_true")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="client-rates-")
    try:
        rate = produce_rate(directory, args.records, b"x" * args.value_bytes, args.keys,
                            args.acks, args.partitions)
        print(f"produce: {rate:,.0f} records/s ({args.records:,} x {args.value_bytes} B, "
              f"acks={args.acks}, keys={args.keys}, partitions={args.partitions})")
        if not args.skip_poll:
            rate = poll_rate(directory, args.records, args.partitions)
            print(f"poll:    {rate:,.0f} records/s")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
