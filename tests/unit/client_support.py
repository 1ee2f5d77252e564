"""Helpers shared by the embedded-client tests (txn.Producer / Consumer / AdminClient on a
real Broker in a tmp directory): topic creation, draining a consumer, closing what a test
opened even when it fails."""

from __future__ import annotations

import contextlib
import time

from txn import AdminClient, NewTopic

POLL_DEADLINE_S = 30.0

# One partition per internal topic: a Broker then opens and closes in milliseconds instead
# of creating and syncing 100 partitions (every client of a test must use the same values).
FAST_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1}


def conf(directory, **extra) -> dict:
    """A client configuration for the store in `directory` (keys with dots as given)."""
    return {"log.dirs": str(directory), **FAST_BROKER, **extra}


def create_topic(directory, name: str, partitions: int = 1, config: dict | None = None):
    with AdminClient(conf(directory)) as admin:
        admin.create_topics([NewTopic(name, partitions, config=config)])[name].result()


def consume(consumer, count: int, *, deadline_s: float = POLL_DEADLINE_S,
            keep_errors: bool = False) -> list:
    """Poll until `count` messages (errors skipped unless keep_errors) or the deadline."""
    out = []
    give_up = time.monotonic() + deadline_s
    while len(out) < count and time.monotonic() < give_up:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error() is not None and not keep_errors:
            continue
        out.append(message)
    return out


def drain(consumer, *, idle_s: float = 0.5, deadline_s: float = POLL_DEADLINE_S) -> list:
    """Every message until none arrives for idle_s (errors skipped)."""
    out = []
    give_up = time.monotonic() + deadline_s
    quiet_since = time.monotonic()
    while time.monotonic() < give_up and time.monotonic() - quiet_since < idle_s:
        message = consumer.poll(0.05)
        if message is not None and message.error() is None:
            out.append(message)
            quiet_since = time.monotonic()
    return out


@contextlib.contextmanager
def closing_all(*clients):
    """Close the clients at the end, whatever happens (producers are flushed first)."""
    try:
        yield clients
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()


def values(messages) -> list:
    return [m.value() for m in messages]
