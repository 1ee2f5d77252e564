"""Consumer groups through txn.Consumer.subscribe() on a real Broker: consumers in threads
split the partitions with the range (or roundrobin) assignor, a consumer closing gives its
partitions to the others, rebalance callbacks run on the polling thread, committed offsets
survive a restart of the whole engine, missing and pattern-matched topics, and the
max.poll.interval.ms rule."""

from __future__ import annotations

import threading
import time

import pytest

from txn import Consumer, KafkaError, Producer, TopicPartition

from client_support import closing_all, conf, consume, create_topic

WAIT_S = 30.0


class Member:
    """A subscribed consumer polling on its own thread; records assignments and messages."""

    def __init__(self, directory, topics, group: str = "g", **extra):
        self.consumer = Consumer(conf(directory, **{
            "group.id": group, "auto.offset.reset": "earliest", "heartbeat.interval.ms": 10,
            **extra}))
        self.assignments: list[list[tuple[str, int]]] = []
        self.revoked: list[list[tuple[str, int]]] = []
        self.callback_threads: set[int] = set()
        self.messages = []
        self.errors = []
        self._stop = threading.Event()
        self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        self.callback_threads.add(threading.get_ident())
        self.assignments.append(sorted((tp.topic, tp.partition) for tp in partitions))

    def _on_revoke(self, consumer, partitions):
        self.callback_threads.add(threading.get_ident())
        self.revoked.append(sorted((tp.topic, tp.partition) for tp in partitions))

    def _run(self):
        while not self._stop.is_set():
            message = self.consumer.poll(0.05)
            if message is None:
                continue
            if message.error() is None:
                self.messages.append(message)
            else:
                self.errors.append(message.error())

    def current(self):
        return self.assignments[-1] if self.assignments else None

    def stop(self, close: bool = True):
        self._stop.set()
        self.thread.join(WAIT_S)
        if close:
            self.consumer.close()


def _wait_for(predicate, what: str):
    give_up = time.monotonic() + WAIT_S
    while time.monotonic() < give_up:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _produce(directory, topic: str, per_partition: int, partitions: int):
    producer = Producer(conf(directory))
    with closing_all(producer):
        for p in range(partitions):
            for i in range(per_partition):
                producer.produce(topic, f"{p}:{i}".encode(), partition=p)
        assert producer.flush(10) == 0


def test_two_members_split_with_range_and_one_closing_rebalances_the_other(tmp_path):
    create_topic(tmp_path, "t", 4)
    _produce(tmp_path, "t", 5, 4)
    a = Member(tmp_path, ["t"])
    b = None
    try:
        _wait_for(lambda: a.current() == [("t", p) for p in range(4)], "a owning all")
        b = Member(tmp_path, ["t"])
        _wait_for(lambda: b.current() and a.current() and len(a.current()) == 2
                  and len(b.current()) == 2, "the split")
        assert sorted(a.current() + b.current()) == [("t", p) for p in range(4)]
        assert {tuple(a.current()), tuple(b.current())} == {(("t", 0), ("t", 1)),
                                                            (("t", 2), ("t", 3))}
        assert a.revoked and a.revoked[-1] == [("t", p) for p in range(4)]
        assert a.callback_threads == {a.thread.ident}
        b.stop()
        _wait_for(lambda: a.current() == [("t", p) for p in range(4)], "a owning all again")
        a.stop(close=False)
        values = {m.value() for m in a.messages + b.messages}
        assert values == {f"{p}:{i}".encode() for p in range(4) for i in range(5)}
    finally:
        for member in (a, b):
            if member is not None:
                member.stop()


def test_roundrobin_when_configured(tmp_path):
    create_topic(tmp_path, "t", 4)
    members = [Member(tmp_path, ["t"], **{"partition.assignment.strategy": "roundrobin"})]
    try:
        _wait_for(lambda: members[0].current() is not None, "the first assignment")
        members.append(Member(tmp_path, ["t"], **{"partition.assignment.strategy":
                                                  "roundrobin"}))
        _wait_for(lambda: all(m.current() and len(m.current()) == 2 for m in members),
                  "the split")
        owned = {tuple(p for _, p in m.current()) for m in members}
        assert owned == {(0, 2), (1, 3)}
    finally:
        for member in members:
            member.stop()


def test_committed_offsets_survive_a_restart_of_the_engine(tmp_path):
    create_topic(tmp_path, "t", 2)
    _produce(tmp_path, "t", 3, 2)
    member = Member(tmp_path, ["t"], group="keep", **{"auto.commit.interval.ms": 10})
    _wait_for(lambda: len(member.messages) == 6, "six messages")
    broker = member.consumer._broker
    member.stop()                                   # commits, leaves, releases the engine
    assert broker.closed
    _produce(tmp_path, "t", 2, 2)                   # offsets 3 and 4 of each partition
    consumer = Consumer(conf(tmp_path, **{"group.id": "keep", "auto.offset.reset": "earliest"}))
    with closing_all(consumer):
        committed = consumer.committed([TopicPartition("t", 0), TopicPartition("t", 1)])
        assert [tp.offset for tp in committed] == [3, 3]
        consumer.subscribe(["t"])
        got = consume(consumer, 4)
        assert sorted((m.partition(), m.offset()) for m in got) == \
            [(0, 3), (0, 4), (1, 3), (1, 4)]
        assert consumer.memberid() is not None
        metadata = consumer.consumer_group_metadata()
        assert metadata.generation_id >= 1 and metadata.member_id == consumer.memberid()


def test_a_missing_topic_is_reported_then_assigned_once_created(tmp_path):
    member = Member(tmp_path, ["later"])
    try:
        _wait_for(lambda: member.errors, "the missing-topic error")
        assert member.errors[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        create_topic(tmp_path, "later", 2)
        _wait_for(lambda: member.current() == [("later", 0), ("later", 1)],
                  "the new topic's partitions")
    finally:
        member.stop()


def test_pattern_subscriptions_follow_matching_topics(tmp_path):
    create_topic(tmp_path, "orders-eu", 1)
    create_topic(tmp_path, "other", 1)
    member = Member(tmp_path, ["^orders-.*"])
    try:
        _wait_for(lambda: member.current() == [("orders-eu", 0)], "the first match")
        create_topic(tmp_path, "orders-us", 1)
        _wait_for(lambda: member.current() == [("orders-eu", 0), ("orders-us", 0)],
                  "the second match")
    finally:
        member.stop()


def test_a_member_that_stops_polling_leaves_and_is_told(tmp_path):
    create_topic(tmp_path, "t", 1)
    consumer = Consumer(conf(tmp_path, **{
        "group.id": "slow", "heartbeat.interval.ms": 10, "session.timeout.ms": 200,
        "max.poll.interval.ms": 300, "broker.group.min.session.timeout.ms": 100}))
    with closing_all(consumer):
        consumer.subscribe(["t"])
        _wait_for(lambda: consumer.poll(0.01) is None and consumer.assignment(), "assignment")
        time.sleep(1.0)
        errors = [m.error().code() for m in consume(consumer, 1, keep_errors=True)]
        assert errors == [KafkaError._MAX_POLL_EXCEEDED]
        _wait_for(lambda: consumer.poll(0.01) is None and consumer.assignment(),
                  "the assignment after rejoining")


def test_max_poll_interval_must_cover_the_session_timeout(tmp_path):
    from txn import KafkaException
    with pytest.raises(KafkaException, match="max.poll.interval.ms"):
        Consumer(conf(tmp_path, **{"group.id": "g", "session.timeout.ms": 10000,
                                   "max.poll.interval.ms": 5000}))


def test_a_subscribed_consumer_dropped_without_close_leaves_and_releases(tmp_path):
    import gc
    from txn.broker import Broker
    create_topic(tmp_path, "t", 1)
    consumer = Consumer(conf(tmp_path, **{"group.id": "drop", "heartbeat.interval.ms": 10}))
    consumer.subscribe(["t"])
    _wait_for(lambda: consumer.poll(0.01) is None and consumer.assignment(), "assignment")
    broker, member = consumer._broker, consumer._member
    del consumer
    gc.collect()
    _wait_for(lambda: not member._thread.is_alive() and broker.store.closed,
              "the engine to close")
    assert broker not in Broker._registry.values()


def test_a_member_waiting_in_poll_is_not_past_max_poll_interval(tmp_path):
    create_topic(tmp_path, "t", 1)
    consumer = Consumer(conf(tmp_path, **{
        "group.id": "patient", "heartbeat.interval.ms": 10, "session.timeout.ms": 200,
        "max.poll.interval.ms": 300, "fetch.wait.max.ms": 1000,
        "broker.group.min.session.timeout.ms": 100}))
    with closing_all(consumer):
        consumer.subscribe(["t"])
        _wait_for(lambda: consumer.poll(0.01) is None and consumer.assignment(), "assignment")
        assert consumer.poll(1.5) is None                # one long wait, no messages
        assert consumer.poll(0.1) is None and consumer.assignment()
