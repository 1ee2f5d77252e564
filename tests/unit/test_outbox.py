"""The outbox relay (txn/outbox.py) on real SQLite files and a real store.

Goal: rows written with a business change reach the log exactly once, in id order, in Kafka
transactions that carry the relay's checkpoint; a failure at any step of a round neither loses
nor repeats a row; rolled-back business transactions never reach the log.
Method: an application connection writes orders and outbox rows; an OutboxRelay publishes
them; failpoints armed with "raise" interrupt a round in process; read_committed and
read_uncommitted consumers count the records by outbox id.
"""

from __future__ import annotations

import collections
import sqlite3
import time

import pytest
from client_support import FAST_BROKER

from txn import Consumer, TopicPartition, failpoints
from txn.outbox import (CHECKPOINT_TOPIC, OUTBOX_ID_HEADER, RELAY_GROUP_PREFIX, OutboxRelay,
                        connect, delete_relayed, enqueue)

DEADLINE_S = 30.0


def conf(tmp_path) -> dict:
    return {"log.dirs": str(tmp_path / "data"), **FAST_BROKER}


@pytest.fixture
def app(tmp_path):
    conn = connect(str(tmp_path / "app.db"))
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total INTEGER)")
    conn.commit()
    yield conn
    conn.close()


@pytest.fixture
def relays(tmp_path):
    opened = []

    def make(**kwargs):
        relay = OutboxRelay(str(tmp_path / "app.db"), conf(tmp_path), **kwargs)
        opened.append(relay)
        return relay

    yield make
    failpoints.disarm()
    for relay in opened:
        relay.close()


def place_order(conn, order_id: int, *, fail: bool = False, topic: str = "orders") -> None:
    """One business transaction: the order row and its outbox row, or neither."""
    try:
        with conn:
            conn.execute("INSERT INTO orders VALUES (?, ?)", (order_id, order_id * 10))
            enqueue(conn, topic, b"order %d" % order_id, key=b"%d" % order_id)
            if fail:
                raise ValueError("out of stock")
    except ValueError:
        pass


def read_orders(tmp_path, isolation: str = "read_committed", topic: str = "orders") -> list:
    consumer = Consumer({**conf(tmp_path), "group.id": "audit", "isolation.level": isolation,
                         "enable.partition.eof": True})
    try:
        partitions = consumer.list_topics(topic).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out, ended = [], set()
        while len(ended) < len(partitions):
            message = consumer.poll(5.0)
            assert message is not None
            if message.error() is None:
                out.append(message)
            else:
                ended.add(message.partition())
        return out
    finally:
        consumer.close()


def outbox_ids(messages) -> list[int]:
    return [int(dict(m.headers())[OUTBOX_ID_HEADER]) for m in messages]


def unrelayed(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM outbox WHERE relayed_ms IS NULL").fetchone()[0]


def checkpoint(tmp_path) -> int:
    consumer = Consumer({**conf(tmp_path), "group.id": RELAY_GROUP_PREFIX + "default"})
    try:
        return consumer.committed([TopicPartition(CHECKPOINT_TOPIC, 0)])[0].offset
    finally:
        consumer.close()


def test_rolled_back_business_transactions_leave_no_outbox_row(app):
    place_order(app, 1)
    place_order(app, 2, fail=True)
    rows = app.execute("SELECT key FROM outbox ORDER BY id").fetchall()
    assert rows == [(b"1",)]
    assert app.execute("SELECT id FROM orders").fetchall() == [(1,)]


def test_connect_uses_wal_and_full_sync(app):
    assert app.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert app.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL


def test_relay_publishes_rows_once_in_id_order_and_marks_them(tmp_path, app, relays):
    for order_id in range(1, 11):
        place_order(app, order_id, fail=order_id % 4 == 0)
    relay = relays(batch_rows=3)
    assert relay.run(until_idle=True) == 8
    assert relay.run(until_idle=True) == 0
    relay.close()
    messages = read_orders(tmp_path)
    assert [m.value() for m in messages] == [b"order %d" % i for i in range(1, 11) if i % 4]
    ids = outbox_ids(messages)
    assert ids == sorted(set(ids))
    assert unrelayed(app) == 0
    assert checkpoint(tmp_path) == ids[-1] + 1


def test_rows_keep_partition_key_headers_and_null_values(tmp_path, app, relays):
    from txn import AdminClient, NewTopic
    with AdminClient(conf(tmp_path)) as admin:
        admin.create_topics([NewTopic("events", 3)])["events"].result()
    with app:
        enqueue(app, "events", None, key="k", partition=2, headers={"a": "1", "b": None})
        enqueue(app, "events", "text", headers=[("a", b"\x00\xff")])
    relays().run(until_idle=True)
    first, second = sorted(read_orders(tmp_path, topic="events"), key=lambda m: outbox_ids([m]))
    assert (first.partition(), first.key(), first.value()) == (2, b"k", None)
    assert first.headers()[:2] == [("a", b"1"), ("b", None)]
    assert second.value() == b"text" and second.headers()[0] == ("a", b"\x00\xff")


def test_a_round_interrupted_before_its_commit_is_aborted_and_redone(tmp_path, app, relays):
    for order_id in range(1, 8):
        place_order(app, order_id)
    relay = relays(batch_rows=3)
    failpoints.arm("outbox.after_produce", "raise", skip=1, count=1)
    assert relay.run_once() == 3
    with pytest.raises(failpoints.FailpointTriggered):
        relay.run_once()
    assert unrelayed(app) == 4
    assert relay.run(until_idle=True) == 4
    relay.close()
    committed = read_orders(tmp_path)
    assert outbox_ids(committed) == list(range(1, 8))
    everything = outbox_ids(read_orders(tmp_path, "read_uncommitted"))
    assert collections.Counter(everything)[4] == 2            # the aborted copy is in the log


def test_rows_published_but_not_marked_are_marked_not_republished(tmp_path, app, relays):
    for order_id in range(1, 6):
        place_order(app, order_id)
    relay = relays(batch_rows=10)
    failpoints.arm("outbox.after_commit", "raise", count=1)
    with pytest.raises(failpoints.FailpointTriggered):
        relay.run_once()
    assert unrelayed(app) == 5                     # in the log, not marked
    assert relay.run_once() == 0                   # the same relay does not send them again
    relay.close()
    assert unrelayed(app) == 0
    place_order(app, 6)
    again = relays()
    assert again.next_id == 6
    assert again.run(until_idle=True) == 1
    again.close()
    assert outbox_ids(read_orders(tmp_path, "read_uncommitted")) == list(range(1, 7))


def test_restart_reads_the_checkpoint_and_marks_published_rows(tmp_path, app, relays):
    for order_id in range(1, 4):
        place_order(app, order_id)
    relays().run(until_idle=True)
    app.execute("UPDATE outbox SET relayed_ms = NULL")          # as if the marks were lost
    app.commit()
    relay = relays()
    assert unrelayed(app) == 0 and relay.next_id == 4
    assert relay.run(until_idle=True) == 0
    relay.close()
    assert len(read_orders(tmp_path, "read_uncommitted")) == 3


def test_deleted_relayed_rows_never_give_their_ids_again(tmp_path, app, relays):
    for order_id in range(1, 4):
        place_order(app, order_id)
    relay = relays()
    relay.run(until_idle=True)
    assert delete_relayed(app, int(time.time() * 1000) + 1) == 3
    place_order(app, 4)
    assert app.execute("SELECT id FROM outbox").fetchall() == [(4,)]
    assert relay.run(until_idle=True) == 1
    relay.close()
    assert outbox_ids(read_orders(tmp_path)) == [1, 2, 3, 4]


def test_background_relay_publishes_rows_written_while_it_runs(tmp_path, app, relays):
    relay = relays(poll_interval_s=0.01)
    relay.start()
    for order_id in range(1, 6):
        place_order(app, order_id)
    give_up = time.monotonic() + DEADLINE_S
    while unrelayed(app) and time.monotonic() < give_up:
        time.sleep(0.01)
    relay.close()
    assert unrelayed(app) == 0
    assert outbox_ids(read_orders(tmp_path)) == [1, 2, 3, 4, 5]


def test_bad_arguments_are_refused(tmp_path, app, relays):
    with pytest.raises(ValueError):
        relays(batch_rows=0)
    with pytest.raises(ValueError):
        enqueue(app, "", b"x")
    app.rollback()
    assert isinstance(app, sqlite3.Connection)
