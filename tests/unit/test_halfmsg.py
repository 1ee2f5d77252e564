"""RocketMQ-style half messages (txn/halfmsg.py, txn/halfmsg_check.py) on a real store.

Goal: every outcome of a local transaction, every check-back rule and default, restarts.
Method: a TransactionProducer on a tmp directory with the check service driven by
run_once(now_ms) on a fake clock (no background thread, no sleeps); the log is then read with
ordinary read_committed / read_uncommitted consumers and counted by transaction id.
"""

from __future__ import annotations

import logging
import threading

import pytest

from txn import AdminClient, Consumer, NewTopic, TopicPartition
from txn.broker import Broker
from txn.halfmsg import (CHECK_MAX_TIME_TOPIC, HALF_TOPIC, OP_HALF_TOPIC, PROPERTY_OP_TYPE,
                         PROPERTY_TRANSACTION_CHECK_TIMES, PROPERTY_TRANSACTION_ID,
                         TRANSACTION_CHECK_INTERVAL_MS, TRANSACTION_CHECK_MAX,
                         TRANSACTION_TIMEOUT_MS, HalfMessage, LocalTransactionState,
                         TransactionMessage, TransactionProducer, decode_op_body)

from client_support import FAST_BROKER

COMMIT = LocalTransactionState.COMMIT_MESSAGE
ROLLBACK = LocalTransactionState.ROLLBACK_MESSAGE
UNKNOW = LocalTransactionState.UNKNOW
START_MS = 1_700_000_000_000
GROUP = "order-service"


class FakeClock:
    def __init__(self, now_ms: int = START_MS):
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Listener:
    """execute answers `arg`; check answers from `answers` by value (default UNKNOW)."""

    def __init__(self):
        self.answers: dict[bytes, object] = {}
        self.checks: list[HalfMessage] = []
        self.executed: list[HalfMessage] = []

    def execute_local_transaction(self, message, arg):
        self.executed.append(message)
        if isinstance(arg, Exception):
            raise arg
        return arg

    def check_local_transaction(self, message):
        self.checks.append(message)
        return self.answers.get(message.value, UNKNOW)


def conf(path) -> dict:
    return {"log.dirs": str(path), **FAST_BROKER}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def listener():
    return Listener()


@pytest.fixture
def open_producer(tmp_path, clock, listener):
    opened = []

    def make(**kwargs):
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("start_check_service", False)
        producer = TransactionProducer(conf(tmp_path), kwargs.pop("group", GROUP),
                                       kwargs.pop("listener", listener), **kwargs)
        opened.append(producer)
        return producer

    yield make
    for producer in opened:
        producer.close()


def read_topic(path, topic: str, isolation: str = "read_committed") -> list:
    """Every message of every partition of `topic`, in partition then offset order."""
    consumer = Consumer({**conf(path), "group.id": "reader", "isolation.level": isolation,
                         "enable.partition.eof": True, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out, ended = [], set()
        while len(ended) < len(partitions):
            message = consumer.poll(5.0)
            assert message is not None, f"{topic} did not reach its end"
            if message.error() is not None:
                ended.add(message.partition())
            else:
                out.append(message)
        return sorted(out, key=lambda m: (m.partition(), m.offset()))
    finally:
        consumer.close()


def transaction_ids(messages) -> list[str]:
    return [dict(m.headers() or [])[PROPERTY_TRANSACTION_ID].decode() for m in messages]


def header(message, name: str) -> bytes | None:
    return dict(message.headers() or []).get(name)


def create_topic(path, topic: str, partitions: int) -> None:
    with AdminClient(conf(path)) as admin:
        admin.create_topics([NewTopic(topic, partitions)])[topic].result()


# -- outcomes of the local transaction ------------------------------------------------------

def test_commit_is_visible_exactly_once_in_its_topic_and_partition(tmp_path, open_producer):
    create_topic(tmp_path, "payments", 3)
    producer = open_producer()
    result = producer.send_message_in_transaction(
        TransactionMessage("payments", b"pay order 7", key=b"7", partition=2,
                           headers=[("trace", b"t-1")]), COMMIT)
    assert result.local_transaction_state is COMMIT and result.end_error is None
    assert (result.topic, result.partition) == ("payments", 2)
    producer.close()

    visible = read_topic(tmp_path, "payments")
    assert transaction_ids(visible) == [result.transaction_id]
    (record,) = visible
    assert (record.partition(), record.offset(), record.key(), record.value()) == \
        (2, result.offset, b"7", b"pay order 7")
    assert header(record, "trace") == b"t-1"
    (op,) = read_topic(tmp_path, OP_HALF_TOPIC)
    assert decode_op_body(op.value()) == [result.half_offset]
    assert op.value() == b"%d," % result.half_offset          # RocketMQ's op body
    assert header(op, "TAGS") == b"d" and header(op, PROPERTY_OP_TYPE) == b"COMMIT"


def test_partition_is_chosen_at_send_time_and_kept(tmp_path, open_producer):
    create_topic(tmp_path, "payments", 4)
    producer = open_producer()
    results = [producer.send_message_in_transaction(
        TransactionMessage("payments", b"v%d" % i, key=b"k%d" % i), UNKNOW) for i in range(8)]
    halves = {h.transaction_id: h for h in producer.check_service.pending()}
    for result in results:
        assert halves[result.transaction_id].partition == result.partition
    producer.listener.answers.update({b"v%d" % i: COMMIT for i in range(8)})
    producer.check_service.run_once(START_MS + TRANSACTION_TIMEOUT_MS + 1)
    producer.close()
    where = {transaction_ids([m])[0]: m.partition() for m in read_topic(tmp_path, "payments")}
    assert where == {r.transaction_id: r.partition for r in results}


def test_half_write_is_fsynced_before_the_local_transaction_runs(tmp_path, open_producer):
    seen = {}

    class Probe(Listener):
        def execute_local_transaction(self, message, arg):
            broker = Broker.open(str(tmp_path))
            try:
                log = broker.partition(HALF_TOPIC, 0).log
                seen["flushed_past_half"] = log.recovery_point > message.copy_offset
            finally:
                broker.release()
            return COMMIT

    producer = open_producer(listener=Probe())
    producer.send_message_in_transaction(TransactionMessage("payments", b"x"))
    assert seen == {"flushed_past_half": True}


def test_rollback_is_never_visible_and_leaves_an_op_record(tmp_path, open_producer):
    producer = open_producer()
    result = producer.send_message_in_transaction(TransactionMessage("payments", b"no"),
                                                  ROLLBACK)
    assert result.offset is None and result.local_transaction_state is ROLLBACK
    producer.check_service.run_once(START_MS + 10 * TRANSACTION_CHECK_INTERVAL_MS)
    assert producer.listener.checks == []
    producer.close()
    assert read_topic(tmp_path, "payments", "read_uncommitted") == []
    (op,) = read_topic(tmp_path, OP_HALF_TOPIC)
    assert decode_op_body(op.value()) == [result.half_offset]
    assert header(op, PROPERTY_OP_TYPE) == b"ROLLBACK"
    halves = read_topic(tmp_path, HALF_TOPIC)
    assert [h.offset() for h in halves] == [result.half_offset]    # nothing rewritten


@pytest.mark.parametrize("answer, visible", [(COMMIT, 1), (ROLLBACK, 0)])
def test_unknown_is_settled_by_the_check_back(tmp_path, open_producer, listener, answer,
                                              visible):
    producer = open_producer()
    result = producer.send_message_in_transaction(TransactionMessage("payments", b"m"), UNKNOW)
    assert result.offset is None
    assert read_topic(tmp_path, "payments", "read_uncommitted") == []
    listener.answers[b"m"] = answer
    report = producer.check_service.run_once(START_MS + TRANSACTION_TIMEOUT_MS + 1)
    assert [h.transaction_id for h in report.checked] == [result.transaction_id]
    assert len(report.committed) == visible and len(report.rolled_back) == 1 - visible
    assert producer.check_service.pending() == []
    later = producer.check_service.run_once(START_MS + 100 * TRANSACTION_CHECK_INTERVAL_MS)
    assert later.checked == [] and len(listener.checks) == 1
    producer.close()
    assert transaction_ids(read_topic(tmp_path, "payments")) == \
        [result.transaction_id] * visible
    assert len(read_topic(tmp_path, OP_HALF_TOPIC)) == 1


@pytest.mark.parametrize("answer", [None, RuntimeError("payment service down"), "maybe"])
def test_exceptions_none_and_junk_count_as_unknow(tmp_path, open_producer, listener, answer):
    producer = open_producer()
    result = producer.send_message_in_transaction(TransactionMessage("payments", b"m"),
                                                  answer)
    assert result.local_transaction_state is UNKNOW
    assert [h.transaction_id for h in producer.check_service.pending()] == \
        [result.transaction_id]


def test_state_names_and_aliases():
    assert LocalTransactionState.COMMIT is LocalTransactionState.COMMIT_MESSAGE
    assert LocalTransactionState.ROLLBACK is LocalTransactionState.ROLLBACK_MESSAGE
    assert LocalTransactionState.UNKNOWN is LocalTransactionState.UNKNOW
    assert [s.name for s in LocalTransactionState] == ["COMMIT_MESSAGE", "ROLLBACK_MESSAGE",
                                                       "UNKNOW"]
    assert LocalTransactionState.of("COMMIT", "t") is COMMIT
    assert LocalTransactionState.of("ROLLBACK_MESSAGE", "t") is ROLLBACK


# -- check-back timing: defaults, configuration, immunity ------------------------------------

def test_defaults_are_rocketmqs():
    assert (TRANSACTION_TIMEOUT_MS, TRANSACTION_CHECK_INTERVAL_MS, TRANSACTION_CHECK_MAX) == \
        (6_000, 30_000, 15)


def test_default_timing_first_check_after_6_s_then_every_30_s(open_producer, listener):
    producer = open_producer()
    service = producer.check_service
    assert (service.policy.check_timeout_ms, service.policy.check_interval_ms,
            service.policy.check_max) == (6_000, 30_000, 15)
    producer.send_message_in_transaction(TransactionMessage("payments", b"m"), UNKNOW)
    assert service.run_once(START_MS + 6_000).checked == []          # not older than 6 s
    first = START_MS + 6_001
    assert len(service.run_once(first).checked) == 1
    assert service.run_once(first + 29_999).checked == []
    (copy,) = service.run_once(first + 30_000).checked
    assert copy.check_times == 2 and copy.check_ms == first + 30_000
    assert service.run_once(first + 59_999).checked == []
    assert len(service.run_once(first + 60_000).checked) == 1
    assert [c.check_times for c in listener.checks] == [1, 2, 3]


def test_timing_is_configurable(open_producer, listener):
    producer = open_producer(check_timeout_ms=1_000, check_interval_ms=2_000, check_max=2)
    service = producer.check_service
    producer.send_message_in_transaction(TransactionMessage("payments", b"m"), UNKNOW)
    assert service.run_once(START_MS + 1_000).checked == []
    assert len(service.run_once(START_MS + 1_001).checked) == 1
    assert service.run_once(START_MS + 3_000).checked == []
    assert len(service.run_once(START_MS + 3_001).checked) == 1
    report = service.run_once(START_MS + 5_001)
    assert report.checked == [] and len(report.discarded) == 1
    assert len(listener.checks) == 2


def test_bad_timing_configuration_is_refused(tmp_path, open_producer):
    for bad in ({"check_interval_ms": 0}, {"check_max": -1}, {"check_timeout_ms": "6s"}):
        with pytest.raises(ValueError):
            open_producer(**bad)


def test_immunity_time_delays_the_first_check(open_producer, listener):
    producer = open_producer()
    service = producer.check_service
    producer.send_message_in_transaction(
        TransactionMessage("payments", b"slow", check_immunity_s=20), UNKNOW)
    producer.send_message_in_transaction(
        TransactionMessage("payments", b"short", check_immunity_s=2), UNKNOW)
    checked = service.run_once(START_MS + 6_001).checked
    assert [c.value for c in checked] == [b"short"]        # raised to the 6 s timeout
    assert service.run_once(START_MS + 2_001).checked == []
    assert service.run_once(START_MS + 20_000).checked == []
    (slow,) = service.run_once(START_MS + 20_001).checked
    assert slow.value == b"slow" and slow.check_immunity_s == 20 and slow.check_times == 1


def test_after_max_checks_the_message_moves_to_the_dead_letter_topic(
        tmp_path, open_producer, listener, caplog):
    producer = open_producer()
    service = producer.check_service
    result = producer.send_message_in_transaction(
        TransactionMessage("payments", b"lost", key=b"k"), UNKNOW)
    now = START_MS + TRANSACTION_TIMEOUT_MS + 1
    for expected in range(1, TRANSACTION_CHECK_MAX + 1):
        (copy,) = service.run_once(now).checked
        assert copy.check_times == expected
        now += TRANSACTION_CHECK_INTERVAL_MS
    with caplog.at_level(logging.WARNING, logger="txn.halfmsg_check"):
        report = service.run_once(now)
    assert report.checked == [] and len(report.discarded) == 1
    assert len(listener.checks) == TRANSACTION_CHECK_MAX
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(CHECK_MAX_TIME_TOPIC in r.getMessage() and result.transaction_id in
               r.getMessage() for r in warnings)
    assert service.pending() == []
    assert service.run_once(now + 10 * TRANSACTION_CHECK_INTERVAL_MS).discarded == []
    producer.close()
    (dead,) = read_topic(tmp_path, CHECK_MAX_TIME_TOPIC)
    assert (dead.key(), dead.value()) == (b"k", b"lost")
    assert header(dead, PROPERTY_TRANSACTION_CHECK_TIMES) == b"15"
    assert read_topic(tmp_path, "payments", "read_uncommitted") == []
    (op,) = read_topic(tmp_path, OP_HALF_TOPIC)
    assert header(op, PROPERTY_OP_TYPE) == b"DISCARD"
    assert decode_op_body(op.value()) == [result.half_offset]


# -- visibility, concurrency, groups ---------------------------------------------------------

def test_consumers_of_the_real_topic_never_see_half_messages(tmp_path, open_producer,
                                                             listener):
    producer = open_producer()
    for value, arg in ((b"a", UNKNOW), (b"b", ROLLBACK), (b"c", UNKNOW)):
        producer.send_message_in_transaction(TransactionMessage("payments", value), arg)
    consumer = Consumer({**conf(tmp_path), "group.id": "app",
                         "isolation.level": "read_uncommitted",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe(["payments"])
        assert consumer.poll(0.5) is None
        listener.answers[b"c"] = COMMIT
        producer.check_service.run_once(START_MS + TRANSACTION_TIMEOUT_MS + 1)
        message = consumer.poll(5.0)
        assert message is not None and message.error() is None and message.value() == b"c"
        assert consumer.poll(0.3) is None
    finally:
        consumer.close()


def test_a_running_local_transaction_is_not_checked(open_producer, listener):
    rounds = []

    class Slow(Listener):
        def execute_local_transaction(self, message, arg):
            rounds.append(producer.check_service.run_once(START_MS + 10 ** 7))
            return COMMIT

    producer = open_producer(listener=Slow())
    producer.send_message_in_transaction(TransactionMessage("payments", b"x"))
    assert rounds[0].checked == [] and producer.check_service.pending() == []


def test_an_end_after_the_message_is_done_writes_nothing(tmp_path, open_producer, listener):
    producer = open_producer()
    producer.send_message_in_transaction(TransactionMessage("payments", b"m"), UNKNOW)
    listener.answers[b"m"] = COMMIT
    (copy,) = producer.check_service.run_once(START_MS + 6_001).committed
    assert producer.end_transaction(copy, ROLLBACK) is None
    assert producer.end_transaction(copy, COMMIT) is None
    producer.close()
    assert len(read_topic(tmp_path, "payments")) == 1
    assert len(read_topic(tmp_path, OP_HALF_TOPIC)) == 1


def test_groups_check_only_their_own_messages(tmp_path, open_producer):
    one, two = Listener(), Listener()
    first = open_producer(group="g1", listener=one)
    second = open_producer(group="g2", listener=two)
    first.send_message_in_transaction(TransactionMessage("payments", b"1"), UNKNOW)
    second.send_message_in_transaction(TransactionMessage("payments", b"2"), UNKNOW)
    first.check_service.run_once(START_MS + 6_001)
    second.check_service.run_once(START_MS + 6_001)
    assert [m.value for m in one.checks] == [b"1"] and [m.value for m in two.checks] == [b"2"]
    with pytest.raises(ValueError, match="already has a TransactionProducer"):
        open_producer(group="g1")


def test_system_topics_and_reserved_headers_are_refused(open_producer):
    producer = open_producer()
    with pytest.raises(ValueError, match="system topic"):
        producer.send_message_in_transaction(TransactionMessage(HALF_TOPIC, b"x"), COMMIT)
    with pytest.raises(ValueError, match="reserved"):
        producer.send_message_in_transaction(
            TransactionMessage("payments", b"x", headers={"REAL_TOPIC": b"evil"}), COMMIT)
    assert producer.check_service.pending() == []


def test_background_thread_checks_on_its_own(open_producer, listener):
    settled = threading.Event()

    class Answering(Listener):
        def check_local_transaction(self, message):
            settled.set()
            return COMMIT

    producer = open_producer(listener=Answering(), clock=None, start_check_service=True,
                             check_timeout_ms=0, check_interval_ms=50)
    producer.send_message_in_transaction(TransactionMessage("payments", b"m"), UNKNOW)
    assert settled.wait(30.0)


# -- restarts ------------------------------------------------------------------------------

def test_undecided_messages_are_checked_again_after_reopen(tmp_path, open_producer, listener):
    producer = open_producer()
    done = producer.send_message_in_transaction(TransactionMessage("payments", b"d"), COMMIT)
    open_one = producer.send_message_in_transaction(TransactionMessage("payments", b"u"),
                                                    UNKNOW)
    assert len(producer.check_service.run_once(START_MS + 6_001).checked) == 1
    producer.close()

    again = Listener()
    again.answers[b"u"] = COMMIT
    reopened = open_producer(listener=again)
    (pending,) = reopened.check_service.pending()
    assert (pending.transaction_id, pending.check_times) == (open_one.transaction_id, 1)
    assert reopened.check_service.run_once(START_MS + 36_000).checked == []   # interval kept
    assert len(reopened.check_service.run_once(START_MS + 36_001).committed) == 1
    reopened.close()
    assert sorted(transaction_ids(read_topic(tmp_path, "payments"))) == \
        sorted([done.transaction_id, open_one.transaction_id])


def test_reopen_resumes_from_the_committed_checkpoint(tmp_path, open_producer, listener):
    producer = open_producer()
    for i in range(5):
        producer.send_message_in_transaction(TransactionMessage("payments", b"%d" % i), COMMIT)
    left = producer.send_message_in_transaction(TransactionMessage("payments", b"u"), UNKNOW)
    producer.check_service.run_once(START_MS)
    producer.close()
    consumer = Consumer({**conf(tmp_path), "group.id": "CID_RMQ_SYS_TRANS-" + GROUP})
    try:
        half, _op = consumer.committed([TopicPartition(HALF_TOPIC, 0),
                                        TopicPartition(OP_HALF_TOPIC, 0)])
    finally:
        consumer.close()
    assert half.offset == left.half_offset          # everything below it is done
    reopened = open_producer()
    assert [h.transaction_id for h in reopened.check_service.pending()] == \
        [left.transaction_id]
    assert reopened.check_service.ledger.is_done(0) is False     # below X: forgotten


def test_another_groups_open_transaction_on_the_op_topic_holds_checks_back(
        tmp_path, open_producer, listener):
    """An open Kafka transaction (another group's, its process crashed mid-end) hides later
    op records from read_committed readers: a message ended after it must not be checked and
    ended a second time; checks wait until that transaction ends."""
    from txn import Producer
    other = Producer({**conf(tmp_path), "transactional.id": "RMQ_SYS_TRANS-crashed-group"})
    other.init_transactions()
    other.begin_transaction()
    other.produce(OP_HALF_TOPIC, b"999,", partition=0)
    assert other.flush(30) == 0                              # in the log, not committed
    producer = open_producer()
    done = producer.send_message_in_transaction(TransactionMessage("payments", b"m"), COMMIT)
    producer.close()

    listener.answers[b"m"] = COMMIT
    reopened = open_producer()
    report = reopened.check_service.run_once(START_MS + 10 * TRANSACTION_CHECK_INTERVAL_MS)
    assert listener.checks == [] and report.checked == [] and report.blocked
    other.abort_transaction()
    other.close()
    report = reopened.check_service.run_once(START_MS + 10 * TRANSACTION_CHECK_INTERVAL_MS)
    assert not report.blocked and report.checked == []
    assert reopened.check_service.pending() == []
    reopened.close()
    assert transaction_ids(read_topic(tmp_path, "payments")) == [done.transaction_id]
