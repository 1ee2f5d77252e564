"""RocketMQ-style transactional messages ("half" messages) on logstore's log and Kafka
transactions.

    producer = TransactionProducer({"log.dirs": "data"}, "order-service", listener)
    result = producer.send_message_in_transaction(TransactionMessage("payments", b"..."), arg)

How one message travels (RocketMQ's design, shared/ROCKETMQ_AND_CLIENTS.md §1):

  1. The half write. The message is appended to `RMQ_SYS_TRANS_HALF_TOPIC` partition 0 (RocketMQ
     stores every half message in queue 0) with its destination in record headers, and the
     partition is fsynced before anything else happens. Consumers of the real topic cannot see
     it: it is in another topic. Its offset there is the message's identity (the "queue
     offset" RocketMQ's op messages carry).
  2. `listener.execute_local_transaction(message, arg)` runs and answers COMMIT_MESSAGE,
     ROLLBACK_MESSAGE or UNKNOW (an exception or None counts as UNKNOW, as in RocketMQ).
  3. The end. COMMIT is ONE Kafka transaction of the producer group's transactional producer
     holding the real record (its topic, its partition) and the op record; ROLLBACK is one
     Kafka transaction holding only the op record. A crash therefore never leaves the real
     record without its op record or the reverse: after a restart the coordinator finishes a
     transaction whose commit was decided and aborts any other one. UNKNOW writes nothing.
  4. The check-back (txn/halfmsg_check.py, `TransactionCheckService`): a half message without
     an op record is checked with `listener.check_local_transaction(message)` once it is older
     than the check timeout (6 s), then every check interval (30 s), 15 times at most; then it
     moves to `TRANS_CHECK_MAX_TIME_TOPIC` (one Kafka transaction with its op record) and a
     warning is logged. A message is done iff a committed op record names it.

Formats (all values ASCII decimal where numeric; header names are RocketMQ's property keys
except the two timestamps, which RocketMQ keeps in message fields):

  half record    key, value: the application's; headers: REAL_TOPIC, REAL_QID, PGROUP,
                 TRAN_MSG=true, __transactionId__, TRANSACTION_CHECK_TIMES, BORN_TIMESTAMP,
                 CHECK_TIMESTAMP (last check, -1: never), CHECK_IMMUNITY_TIME_IN_SECONDS (if
                 set), TRAN_PREPARED_QUEUE_OFFSET (on re-appended copies: the first copy's
                 offset), then the application's headers.
  op record      value b"<half offset>," (RocketMQ's op body); headers TAGS=d (REMOVE_TAG),
                 PGROUP, __transactionId__, OP_TYPE=COMMIT|ROLLBACK|DISCARD (logstore's).
  real record    key, value and headers: the application's, plus __transactionId__, TRAN_MSG
                 and PGROUP (RocketMQ keeps these properties on the committed message).
  dead letter    the last half copy as it was, in TRANS_CHECK_MAX_TIME_TOPIC partition 0.

Invariants:
  - a half copy is fsynced before the local transaction (or a check) runs;
  - at most one committed op record per half message: ends are serialised under `_end_lock`
    and refused once the ledger knows the message is done; the ledger is rebuilt from the op
    topic (read_committed) after the producer's transactional id has been re-initialised,
    which finishes or aborts whatever the previous process left open;
  - real and op records are written only inside one Kafka transaction; read_committed
    readers see both or neither.

One TransactionProducer per producer group and data directory in a process (a second one is
refused: they would share, and fence, one transactional id). Timestamps in headers come from
`clock` (milliseconds, injectable for tests); Kafka record timestamps stay wall time.

Thread-safety: send_message_in_transaction may be called from any number of threads; local
transactions run concurrently, half writes and ends are serialised (`_half_lock`,
`_end_lock`). The check service runs listener.check_local_transaction on its own thread.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import threading
import uuid
from dataclasses import dataclass, field, replace

from logstore.scheduler import wall_ms
from txn import failpoints
from txn.client_config import open_broker, parse_config
from txn.kafka_error import KafkaError, KafkaException, kafka_exception

logger = logging.getLogger("txn.halfmsg")

HALF_TOPIC = "RMQ_SYS_TRANS_HALF_TOPIC"
OP_HALF_TOPIC = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
CHECK_MAX_TIME_TOPIC = "TRANS_CHECK_MAX_TIME_TOPIC"
SYSTEM_TOPICS = frozenset({HALF_TOPIC, OP_HALF_TOPIC, CHECK_MAX_TIME_TOPIC})
HALF_PARTITION = 0                  # RocketMQ: queueId=0 for every half message
OP_PARTITION = 0                    # one op queue per half queue, same id
CHECK_MAX_TIME_PARTITION = 0        # TCMT_QUEUE_NUMS = 1
SYSTEM_TOPIC_CONFIG = {"retention.ms": -1}     # nothing expires under an undecided message

PROPERTY_REAL_TOPIC = "REAL_TOPIC"
PROPERTY_REAL_QUEUE_ID = "REAL_QID"
PROPERTY_TRANSACTION_PREPARED = "TRAN_MSG"
PROPERTY_PRODUCER_GROUP = "PGROUP"
PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET = "TRAN_PREPARED_QUEUE_OFFSET"
PROPERTY_TRANSACTION_CHECK_TIMES = "TRANSACTION_CHECK_TIMES"
PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS = "CHECK_IMMUNITY_TIME_IN_SECONDS"
PROPERTY_TRANSACTION_ID = "__transactionId__"
PROPERTY_TAGS = "TAGS"
PROPERTY_BORN_TIMESTAMP = "BORN_TIMESTAMP"      # logstore: RocketMQ's bornTimestamp field
PROPERTY_CHECK_TIMESTAMP = "CHECK_TIMESTAMP"    # logstore: when the last check began
PROPERTY_OP_TYPE = "OP_TYPE"                    # logstore: what ended the message
REMOVE_TAG = b"d"                               # TransactionalMessageUtil.REMOVETAG
OP_BODY_SEPARATOR = b","
SYSTEM_PROPERTIES = frozenset({
    PROPERTY_REAL_TOPIC, PROPERTY_REAL_QUEUE_ID, PROPERTY_TRANSACTION_PREPARED,
    PROPERTY_PRODUCER_GROUP, PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET,
    PROPERTY_TRANSACTION_CHECK_TIMES, PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS,
    PROPERTY_TRANSACTION_ID, PROPERTY_BORN_TIMESTAMP, PROPERTY_CHECK_TIMESTAMP,
    PROPERTY_OP_TYPE})

# Broker defaults (RocketMQ BrokerConfig): transactionTimeOut, transactionCheckInterval,
# transactionCheckMax.
TRANSACTION_TIMEOUT_MS = 6_000
TRANSACTION_CHECK_INTERVAL_MS = 30_000
TRANSACTION_CHECK_MAX = 15

TRANSACTIONAL_ID_PREFIX = "RMQ_SYS_TRANS-"      # + producer group: the Kafka transactional id
CHECK_GROUP_PREFIX = "CID_RMQ_SYS_TRANS-"       # + producer group: the check-back's offsets
KAFKA_TRANSACTION_TIMEOUT_MS = 10_000           # an end is two records; a crashed one must
                                                # not hold the op topic's LSO for a minute
FLUSH_TIMEOUT_S = 30.0
NEVER = -1

OP_COMMIT = "COMMIT"
OP_ROLLBACK = "ROLLBACK"
OP_DISCARD = "DISCARD"

FP_AFTER_HALF_WRITE = "halfmsg.after_half_write"
FP_AFTER_LOCAL_TRANSACTION = "halfmsg.after_local_transaction"
FP_BEFORE_END_COMMIT = "halfmsg.before_end_commit"
FP_AFTER_END = "halfmsg.after_end"


class LocalTransactionState(enum.Enum):
    """What a local transaction answers (RocketMQ's names; UNKNOW is RocketMQ's spelling).
    COMMIT, ROLLBACK and UNKNOWN are aliases of the same members."""

    COMMIT_MESSAGE = "COMMIT_MESSAGE"
    ROLLBACK_MESSAGE = "ROLLBACK_MESSAGE"
    UNKNOW = "UNKNOW"
    COMMIT = "COMMIT_MESSAGE"
    ROLLBACK = "ROLLBACK_MESSAGE"
    UNKNOWN = "UNKNOW"

    @classmethod
    def of(cls, answer, what: str) -> LocalTransactionState:
        """A listener's answer as a state: a member, a member's name, or None (UNKNOW);
        anything else is logged and counts as UNKNOW (the check-back will ask again)."""
        if isinstance(answer, cls):
            return answer
        if answer is None:
            return cls.UNKNOW
        if isinstance(answer, str) and answer in cls.__members__:
            return cls[answer]
        logger.error("%s returned %r, not a LocalTransactionState: treated as UNKNOW", what,
                     answer)
        return cls.UNKNOW


class TransactionListener:
    """The application's side (RocketMQ's TransactionListener). Subclass it or pass any object
    with these two methods."""

    def execute_local_transaction(self, message: HalfMessage, arg) -> LocalTransactionState:
        raise NotImplementedError

    def check_local_transaction(self, message: HalfMessage) -> LocalTransactionState:
        raise NotImplementedError


@dataclass
class TransactionMessage:
    """What the application sends. `partition` None: chosen at send time by the producer's
    partitioner (key hash, or random for no key) and fixed in REAL_QID. `check_immunity_s`:
    RocketMQ's CHECK_IMMUNITY_TIME_IN_SECONDS (no check before that age; never below the
    check timeout)."""

    topic: str
    value: bytes | str | None
    key: bytes | str | None = None
    partition: int | None = None
    headers: list | dict | None = None
    check_immunity_s: int | None = None


@dataclass(frozen=True)
class HalfMessage:
    """One stored copy of a half message, as the listener sees it. `half_offset` (the first
    copy's offset) names the message for its whole life; `copy_offset` is this copy's."""

    transaction_id: str
    producer_group: str
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple = ()
    half_offset: int = NEVER
    copy_offset: int = NEVER
    check_times: int = 0
    born_ms: int = 0
    check_ms: int = NEVER
    check_immunity_s: int | None = None

    def stored_headers(self) -> list[tuple[str, bytes]]:
        """The half record's headers (system properties first, then the application's)."""
        out = [(PROPERTY_REAL_TOPIC, self.topic.encode()),
               (PROPERTY_REAL_QUEUE_ID, b"%d" % self.partition),
               (PROPERTY_PRODUCER_GROUP, self.producer_group.encode()),
               (PROPERTY_TRANSACTION_PREPARED, b"true"),
               (PROPERTY_TRANSACTION_ID, self.transaction_id.encode()),
               (PROPERTY_TRANSACTION_CHECK_TIMES, b"%d" % self.check_times),
               (PROPERTY_BORN_TIMESTAMP, b"%d" % self.born_ms),
               (PROPERTY_CHECK_TIMESTAMP, b"%d" % self.check_ms)]
        if self.check_immunity_s is not None:
            out.append((PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS,
                        b"%d" % self.check_immunity_s))
        if self.half_offset != NEVER:
            out.append((PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET, b"%d" % self.half_offset))
        return out + list(self.headers)

    def real_headers(self) -> list[tuple[str, bytes]]:
        return list(self.headers) + [
            (PROPERTY_TRANSACTION_ID, self.transaction_id.encode()),
            (PROPERTY_TRANSACTION_PREPARED, b"true"),
            (PROPERTY_PRODUCER_GROUP, self.producer_group.encode())]

    def checked(self, now_ms: int) -> HalfMessage:
        """The copy a check re-appends: one more check, begun now (RocketMQ's
        putBackHalfMsgQueue with the incremented TRANSACTION_CHECK_TIMES)."""
        return replace(self, copy_offset=NEVER, check_times=self.check_times + 1,
                       check_ms=now_ms)

    @classmethod
    def from_record(cls, record) -> HalfMessage | None:
        """Decode a consumed half record (a txn Message); None when it is not one."""
        props, user = {}, []
        for name, value in record.headers() or ():
            if name in SYSTEM_PROPERTIES and name not in props:
                props[name] = (value or b"").decode()
            else:
                user.append((name, value))
        try:
            offset = record.offset()
            immunity = props.get(PROPERTY_CHECK_IMMUNITY_TIME_IN_SECONDS)
            return cls(
                transaction_id=props[PROPERTY_TRANSACTION_ID],
                producer_group=props[PROPERTY_PRODUCER_GROUP],
                topic=props[PROPERTY_REAL_TOPIC],
                partition=int(props[PROPERTY_REAL_QUEUE_ID]),
                key=record.key(), value=record.value(), headers=tuple(user),
                half_offset=int(props.get(PROPERTY_TRANSACTION_PREPARED_QUEUE_OFFSET, offset)),
                copy_offset=offset,
                check_times=int(props.get(PROPERTY_TRANSACTION_CHECK_TIMES, 0)),
                born_ms=int(props[PROPERTY_BORN_TIMESTAMP]),
                check_ms=int(props.get(PROPERTY_CHECK_TIMESTAMP, NEVER)),
                check_immunity_s=None if immunity is None else int(immunity))
        except (KeyError, ValueError) as exc:
            logger.warning("record %d of %s is not a half message (%s): ignored",
                           record.offset(), HALF_TOPIC, exc)
            return None


def encode_op_body(half_offset: int) -> bytes:
    return b"%d" % half_offset + OP_BODY_SEPARATOR


def decode_op_body(body: bytes | None) -> list[int]:
    """The half offsets an op record names ("12," or RocketMQ's batched "12,13,")."""
    return [int(item) for item in (body or b"").split(OP_BODY_SEPARATOR) if item.strip()]


@dataclass(frozen=True)
class TransactionSendResult:
    """RocketMQ's TransactionSendResult: the half write went through (SEND_OK), the local
    transaction's answer, and where the message went. `offset` is the real record's offset
    when this call committed it; `end_error` says why a decided end could not be written
    (the check-back then settles the message)."""

    transaction_id: str
    half_offset: int
    local_transaction_state: LocalTransactionState
    topic: str
    partition: int
    offset: int | None = None
    end_error: str | None = None
    send_status: str = "SEND_OK"


@dataclass
class EndResult:
    """What an end wrote: the op record's offset and the real or dead-letter record's."""

    op_type: str
    op_offset: int
    target_offset: int | None = None


@dataclass
class _Delivered:
    offsets: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    def callback(self, name: str):
        def on_delivery(error, message):
            if error is not None:
                self.errors.append(error)
            else:
                self.offsets[name] = message.offset()
        return on_delivery


def _bytes(value, what: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, str or None, not {type(value).__name__}")


def _user_headers(headers) -> tuple:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, dict) else headers
    out = []
    for name, value in items:
        if not isinstance(name, str):
            raise TypeError(f"header names must be str, not {type(name).__name__}")
        if name in SYSTEM_PROPERTIES:
            raise ValueError(f"header {name!r} is a reserved transactional-message property")
        out.append((name, _bytes(value, f"header {name!r}")))
    return tuple(out)


class TransactionProducer:
    """RocketMQ's TransactionMQProducer over a logstore data directory (see the module doc).

    config: confluent-kafka Producer keys (`log.dirs` required; `broker.*` as the clients;
    `transactional.id` overrides the derived RMQ_SYS_TRANS-<group>). The check-back settings
    default to RocketMQ's broker defaults; `start_check_service=False` leaves the check-back
    to explicit `check_service.run_once(now_ms)` calls (tests with a fake clock)."""

    _live: set = set()
    _live_lock = threading.Lock()

    def __init__(self, config: dict, producer_group: str, listener, *,
                 check_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
                 check_interval_ms: int = TRANSACTION_CHECK_INTERVAL_MS,
                 check_max: int = TRANSACTION_CHECK_MAX, clock=None,
                 start_check_service: bool = True):
        if not isinstance(producer_group, str) or not producer_group:
            raise ValueError("producer_group must be a non-empty string")
        for method in ("execute_local_transaction", "check_local_transaction"):
            if not callable(getattr(listener, method, None)):
                raise TypeError(f"listener has no {method}() method")
        self.producer_group = producer_group
        self.listener = listener
        self.clock = clock or wall_ms
        self._config = dict(config)
        self._key = (os.path.realpath(str(self._config.get("log.dirs", ""))), producer_group)
        self._closed = True                   # until the claim below succeeds
        self._half_lock = threading.Lock()
        self._end_lock = threading.RLock()
        self._flight_lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._broker = None
        self._half_producer = self._txn_producer = None
        self.check_service = None
        self._claim()
        self._closed = False
        try:
            self._open(check_timeout_ms, check_interval_ms, check_max, start_check_service)
        except BaseException:
            self.close()
            raise

    def _claim(self) -> None:
        with TransactionProducer._live_lock:
            if self._key in TransactionProducer._live:
                raise ValueError(f"producer group {self.producer_group!r} already has a "
                                 f"TransactionProducer on {self._key[0]} in this process")
            TransactionProducer._live.add(self._key)

    def _open(self, timeout_ms: int, interval_ms: int, check_max: int, start: bool) -> None:
        from txn.halfmsg_check import TransactionCheckService
        from txn.producer import Producer
        base = {k: v for k, v in self._config.items() if k != "transactional.id"}
        self._broker = open_broker(parse_config(base, {}, client="Producer"))
        for topic in sorted(SYSTEM_TOPICS):
            self._broker.store.create_topic(topic, 1, SYSTEM_TOPIC_CONFIG, if_not_exists=True)
        self._half_producer = Producer({**base, "enable.idempotence": True, "acks": "all",
                                        "linger.ms": 0})
        self._txn_producer = self._new_txn_producer()
        self.check_service = TransactionCheckService(
            self, check_timeout_ms=timeout_ms, check_interval_ms=interval_ms,
            check_max=check_max, clock=self.clock)
        self.check_service.load()
        if start:
            self.check_service.start()

    def _new_txn_producer(self):
        """The group's transactional producer; init_transactions finishes or aborts what a
        previous instance (a crashed process) left open for the same transactional id."""
        from txn.producer import Producer
        conf = {**self._config, "linger.ms": 0}
        conf.setdefault("transactional.id", TRANSACTIONAL_ID_PREFIX + self.producer_group)
        conf.setdefault("transaction.timeout.ms", KAFKA_TRANSACTION_TIMEOUT_MS)
        producer = Producer(conf)
        try:
            producer.init_transactions(FLUSH_TIMEOUT_S)
        except BaseException:
            producer.close()
            raise
        return producer

    def client_config(self, **extra) -> dict:
        """A configuration for another client of the same store (log.dirs and broker.*)."""
        keep = {k: v for k, v in self._config.items()
                if k == "log.dirs" or k.startswith("broker.")}
        return {**keep, **extra}

    # -- sending ----------------------------------------------------------------------------

    def send_message_in_transaction(self, message: TransactionMessage,
                                    arg=None) -> TransactionSendResult:
        """Half write (fsynced), local transaction, end (see the module doc)."""
        self._check_open()
        half = self._prepare(message)
        with self._flight_lock:
            self._in_flight.add(half.transaction_id)
        try:
            half = self._append_half(half)
            failpoints.hit(FP_AFTER_HALF_WRITE)
            state = self._execute(half, arg)
            failpoints.hit(FP_AFTER_LOCAL_TRANSACTION)
            offset, error = None, None
            if state is not LocalTransactionState.UNKNOW:
                try:
                    end = self.end_transaction(half, state)
                    offset = end.target_offset if end is not None else None
                except KafkaException as exc:
                    error = str(exc)
            failpoints.hit(FP_AFTER_END)
        finally:
            with self._flight_lock:
                self._in_flight.discard(half.transaction_id)
        if state is LocalTransactionState.UNKNOW or error is not None:
            self.check_service.notify_half(half)        # now the check-back's business
        return TransactionSendResult(half.transaction_id, half.half_offset, state, half.topic,
                                     half.partition, offset, error)

    def _prepare(self, message: TransactionMessage) -> HalfMessage:
        if not isinstance(message, TransactionMessage):
            raise TypeError(f"expected a TransactionMessage, not {type(message).__name__}")
        if message.topic in SYSTEM_TOPICS:
            raise ValueError(f"{message.topic} is a system topic: sending to it is not allowed")
        immunity = message.check_immunity_s
        if immunity is not None and (not isinstance(immunity, int) or immunity < 0):
            raise ValueError(f"check_immunity_s must be a non-negative int, got {immunity!r}")
        key = _bytes(message.key, "key")
        return HalfMessage(
            transaction_id=uuid.uuid4().hex, producer_group=self.producer_group,
            topic=message.topic, partition=self._real_partition(message, key), key=key,
            value=_bytes(message.value, "value"), headers=_user_headers(message.headers),
            born_ms=self.clock(), check_immunity_s=immunity)

    def _real_partition(self, message: TransactionMessage, key: bytes | None) -> int:
        """REAL_QID: the given partition, else the configured partitioner's choice."""
        from logstore.errors import LogstoreError
        from txn.producer import PARTITIONERS
        try:
            self._broker.ensure_topic(message.topic)
            count = self._broker.partitions_of(message.topic)
        except LogstoreError as exc:
            raise kafka_exception(KafkaError._UNKNOWN_TOPIC, str(exc)) from None
        if message.partition is not None:
            if not 0 <= message.partition < count:
                raise kafka_exception(KafkaError._UNKNOWN_PARTITION, f"{message.topic} has "
                                      f"{count} partitions, not {message.partition}")
            return message.partition
        if key is None:
            return random.randrange(count)
        partition_for, _spread = PARTITIONERS[self._config.get("partitioner",
                                                                "consistent_random")]
        return partition_for(key, count)

    def _append_half(self, half: HalfMessage) -> HalfMessage:
        """Append one copy to the half topic and fsync it; the copy with its offsets (a first
        copy names itself: half_offset = copy_offset)."""
        delivered = _Delivered()
        with self._half_lock:
            self._half_producer.produce(HALF_TOPIC, half.value, half.key, HALF_PARTITION,
                                        on_delivery=delivered.callback("half"),
                                        headers=half.stored_headers())
            left = self._half_producer.flush(FLUSH_TIMEOUT_S)
        if left or delivered.errors or "half" not in delivered.offsets:
            error = delivered.errors[0] if delivered.errors else KafkaError(
                KafkaError._TIMED_OUT, f"half write not acknowledged ({left} left)")
            raise KafkaException(error)
        offset = delivered.offsets["half"]
        assert offset >= 0 and offset > half.half_offset, (offset, half.half_offset)
        first = half.half_offset == NEVER
        return replace(half, copy_offset=offset, half_offset=offset if first else
                       half.half_offset)

    def _execute(self, half: HalfMessage, arg) -> LocalTransactionState:
        try:
            answer = self.listener.execute_local_transaction(half, arg)
        except Exception:  # noqa: BLE001 - RocketMQ: an exception leaves the outcome UNKNOW
            logger.exception("execute_local_transaction failed for transaction %s: UNKNOW",
                             half.transaction_id)
            return LocalTransactionState.UNKNOW
        return LocalTransactionState.of(answer, "execute_local_transaction")

    # -- ends (also used by the check service) ----------------------------------------------

    def end_transaction(self, half: HalfMessage, state: LocalTransactionState
                        ) -> EndResult | None:
        """COMMIT: real record + op record in one Kafka transaction; ROLLBACK: op record only.
        None when the message was already done (nothing written). Raises KafkaException when
        the end could not be written (the message stays for the check-back)."""
        if state is LocalTransactionState.UNKNOW:
            raise ValueError("UNKNOW has no end: the check-back decides later")
        op = OP_COMMIT if state is LocalTransactionState.COMMIT_MESSAGE else OP_ROLLBACK
        return self._end(half, op)

    def discard(self, half: HalfMessage) -> EndResult | None:
        """Move a message checked too often to TRANS_CHECK_MAX_TIME_TOPIC (with its op)."""
        return self._end(half, OP_DISCARD)

    def _end(self, half: HalfMessage, op: str) -> EndResult | None:
        with self._end_lock:
            self._check_open()
            ledger = self.check_service.ledger
            if ledger.is_done(half.half_offset):
                logger.info("transaction %s (half offset %d) is already done; %s ignored",
                            half.transaction_id, half.half_offset, op)
                return None
            try:
                result = self._write_end(half, op)
            except BaseException as exc:
                logger.warning("ending transaction %s with %s failed (the check-back will "
                               "settle it): %r", half.transaction_id, op, exc)
                self._restart_txn_producer()
                raise
            ledger.mark_done(half, result.op_offset)
            return result

    def _write_end(self, half: HalfMessage, op: str) -> EndResult:
        producer = self._txn_producer
        delivered = _Delivered()
        producer.begin_transaction()
        if op == OP_COMMIT:
            producer.produce(half.topic, half.value, half.key, half.partition,
                             on_delivery=delivered.callback("target"),
                             headers=half.real_headers())
        elif op == OP_DISCARD:
            producer.produce(CHECK_MAX_TIME_TOPIC, half.value, half.key,
                             CHECK_MAX_TIME_PARTITION, on_delivery=delivered.callback("target"),
                             headers=half.stored_headers())
        producer.produce(OP_HALF_TOPIC, encode_op_body(half.half_offset), None, OP_PARTITION,
                         on_delivery=delivered.callback("op"),
                         headers=[(PROPERTY_TAGS, REMOVE_TAG),
                                  (PROPERTY_PRODUCER_GROUP, self.producer_group.encode()),
                                  (PROPERTY_TRANSACTION_ID, half.transaction_id.encode()),
                                  (PROPERTY_OP_TYPE, op.encode())])
        producer.flush(FLUSH_TIMEOUT_S)          # appended (commit would flush them anyway)
        failpoints.hit(FP_BEFORE_END_COMMIT)
        producer.commit_transaction(FLUSH_TIMEOUT_S)
        if delivered.errors or "op" not in delivered.offsets:
            raise KafkaException(delivered.errors[0] if delivered.errors else KafkaError(
                KafkaError._FAIL, "op record not acknowledged"))
        return EndResult(op, delivered.offsets["op"], delivered.offsets.get("target"))

    def _restart_txn_producer(self) -> None:
        """After a failed end: a fresh transactional producer, whose init_transactions aborts
        the failed transaction, or finishes it if its commit had been decided (the next scan
        then sees its op record)."""
        old, self._txn_producer = self._txn_producer, None
        try:
            old.close()
        except Exception:  # noqa: BLE001 - a fenced or failed producer may refuse to close
            logger.debug("closing the failed transactional producer", exc_info=True)
        self._txn_producer = self._new_txn_producer()

    # -- check-back support -----------------------------------------------------------------

    @property
    def end_lock(self) -> threading.RLock:
        """Held while an end is written (the check service reads op records under it)."""
        return self._end_lock

    def op_high_watermark(self) -> int:
        return self._broker.partition(OP_HALF_TOPIC, OP_PARTITION).high_watermark

    def in_flight(self) -> frozenset:
        """Transaction ids whose execute_local_transaction is running in this process (the
        check-back leaves them alone)."""
        with self._flight_lock:
            return frozenset(self._in_flight)

    def put_back(self, half: HalfMessage, now_ms: int) -> HalfMessage:
        """Re-append `half` with one more check, begun at now_ms (durable before it returns)."""
        self._check_open()
        return self._append_half(half.checked(now_ms))

    def check(self, half: HalfMessage) -> LocalTransactionState:
        try:
            answer = self.listener.check_local_transaction(half)
        except Exception:  # noqa: BLE001 - RocketMQ: a failed check is UNKNOW
            logger.exception("check_local_transaction failed for transaction %s: UNKNOW",
                             half.transaction_id)
            return LocalTransactionState.UNKNOW
        return LocalTransactionState.of(answer, "check_local_transaction")

    # -- life cycle -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("TransactionProducer closed")

    def close(self) -> None:
        """Stop the check service, close the clients, release the store."""
        if self._closed:
            return
        if self.check_service is not None:
            self.check_service.close()          # its thread may still end a message
        self._closed = True
        with self._end_lock:
            for producer in (self._half_producer, self._txn_producer):
                if producer is not None:
                    try:
                        producer.close()
                    except Exception:  # noqa: BLE001 - close everything else regardless
                        logger.warning("closing a producer failed", exc_info=True)
            self._half_producer = self._txn_producer = None
        if self._broker is not None:
            self._broker.release()
            self._broker = None
        self.check_service = None
        with TransactionProducer._live_lock:
            TransactionProducer._live.discard(self._key)

    def __enter__(self) -> TransactionProducer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


TransactionMQProducer = TransactionProducer          # RocketMQ's class name
