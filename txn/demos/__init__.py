"""Narrated demos of the transactional-message patterns, run by `logstore demo NAME`
(txn/demo.py maps the names to these modules):

    halfmsg               txn/demos/halfmsg.py: RocketMQ-style half messages, an order/payment
                          flow (commit, rollback, UNKNOW settled by the check-back)
    outbox                txn/demos/outbox.py: the outbox relay killed with SIGKILL and resumed
    idempotent-consumer   txn/demos/idempotent_consumer.py: redeliveries skipped

Each module has `main(argv) -> int` with `--dir DIR` (work under DIR/<name>-demo instead of a
temporary directory) and `--keep` (keep the data). A demo checks what it narrates and exits 1
if something is not as it says. This module holds what they share.

Thread-safety: command-line programs; each demo runs on one thread (plus child processes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time

PROG = "logstore demo"
TIMEOUT_S = 30.0
# The demo stores are small: one partition per internal topic opens and closes in
# milliseconds (every client and child of a demo uses the same values).
DEMO_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1}


class DemoFailure(Exception):
    """What the demo narrates did not happen (a bug): exit 1."""


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, title: str) -> None:
    say(f"\n== {number}. {title}")


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailure(what)


def conf(data: str, **extra) -> dict:
    return {"log.dirs": data, **DEMO_BROKER, **extra}


def parser(name: str, description: str) -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(prog=f"{PROG} {name}", description=description)
    out.add_argument("--dir", help="work under this directory instead of a temporary one "
                                   f"(the demo's files go to DIR/{name}-demo)")
    out.add_argument("--keep", action="store_true", help="keep the data afterwards")
    return out


def run_demo(name: str, args, body) -> int:
    """Run body(workdir) in DIR/<name>-demo (or a temporary directory); 0, or 1 when the
    demo failed its own checks. The directory is removed unless --keep."""
    root = args.dir or tempfile.mkdtemp(prefix=f"logstore-demo-{name}-")
    work = os.path.join(root, f"{name}-demo")
    if os.path.exists(work):
        print(f"{PROG}: error: {work} already exists; choose another --dir", file=sys.stderr)
        return 1
    os.makedirs(work)
    say(f"logstore {name} demo in {work}")
    try:
        body(work)
        say(f"\ndone{' (data kept in ' + work + ')' if args.keep else ''}.")
        return 0
    except DemoFailure as exc:
        print(f"{PROG}: error: the demo did not go as narrated: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work if args.dir else root, ignore_errors=True)


def read_topic(data: str, topic: str, isolation: str = "read_committed") -> list:
    """Every record of every partition of `topic` as a consumer with `isolation` sees them
    (partition, then offset order); [] when the topic does not exist."""
    from txn import Consumer, TopicPartition
    consumer = Consumer(conf(data, **{"group.id": f"demo-reader-{isolation}",
                                      "isolation.level": isolation,
                                      "enable.partition.eof": True,
                                      "enable.auto.commit": False}))
    try:
        found = consumer.list_topics().topics.get(topic)
        if found is None:
            return []
        partitions = [TopicPartition(topic, p, 0) for p in sorted(found.partitions)]
        out = read_to_end(consumer, partitions, f"a {isolation} reader of {topic}")
        return sorted(out, key=lambda m: (m.partition(), m.offset()))
    finally:
        consumer.close()


def read_to_end(consumer, partitions: list, who: str) -> list:
    """Assign `partitions` (TopicPartitions with their start offsets) to `consumer` (configured
    with enable.partition.eof) and poll until every one has reported its end: the records in
    the order polled. Fails the demo when an end does not come within TIMEOUT_S."""
    from txn import KafkaError
    consumer.assign(partitions)
    out, ends = [], set()
    deadline = time.monotonic() + TIMEOUT_S
    while len(ends) < len(partitions) and time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is None:
            continue
        if message.error() is None:
            out.append(message)
        elif message.error().code() == KafkaError._PARTITION_EOF:
            ends.add((message.topic(), message.partition()))
    expect(len(ends) == len(partitions), f"{who} did not reach its end")
    return out


def header(message, name: str) -> str | None:
    for key, value in message.headers() or ():
        if key == name and value is not None:
            return value.decode(errors="replace")
    return None


@contextlib.contextmanager
def printed_warnings(logger_name: str):
    """Show the warnings of `logger_name` in the narration (indented) while the block runs."""
    import logging

    class Narrated(logging.Handler):
        def emit(self, record):
            say(f"   WARNING ({record.name}): {record.getMessage()}")

    handler = Narrated(logging.WARNING)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
