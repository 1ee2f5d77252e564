"""The embedded `Producer`: confluent-kafka's Producer over a logstore data directory.

How a record travels (librdkafka's design, in one process):

  1. produce() only appends one item to the accumulator list of the record's partition: the
     value itself for a keyless record, a (value, key) tuple for a keyed one, an `_Extended`
     (value, key, timestamp, headers, callback) when any of those is given. It takes no lock
     and looks nothing up but the topic: a list append is atomic under the GIL, so any number
     of threads may produce at once.
  2. A sender thread per Producer (librdkafka's broker thread) drains every accumulator after
     linger.ms, at once when one holds batch.num.messages records, or on flush(). It takes a
     prefix of each list (slice, then delete the prefix: producers only append at the end);
     a list of keyless records already is the values column (the C sizing pass says so),
     other lists are split into value and key columns; it cuts them into batches of at most
     batch.size / max.message.bytes, builds each one with record_batch.build_batch (the C
     gather encoder reads the value and key lists directly) and appends it with
     TxnPartition.append(validate=False), carrying the producer id, epoch and sequence
     (idempotence) and the transactional flag.
  3. Durability: with acks=all (-1, the default) each partition written in a drain is fsynced
     once after its appends (group commit) before its delivery reports are queued; acks=1
     reports after the append (page cache); acks=0 reports without offsets. flush() returns
     when every record is delivered and, whatever acks says, fsynced.
  4. Delivery reports and error_cb run only from poll() / flush() on the caller's thread, as
     in librdkafka. A record counts in len() until its report is served.

Idempotence (enable.idempotence, implied by transactional.id): a producer id from the
transaction coordinator's InitProducerId on first use; sequences per partition; a duplicate
append is success with the original offsets; a lost producer state (sequence or epoch errors)
gets a new producer id and the batch is appended once more.

Transactions (transactional.id): init_transactions, begin/commit/abort_transaction and
send_offsets_to_transaction as librdkafka (txn/producer_transactions.py); partitions join the
transaction (AddPartitionsToTxn) from the sender before their first batch in it.

Records produced without a timestamp get the time at which the sender takes them (at most
linger.ms after produce()).

Thread-safety: produce() from any number of threads; poll()/flush() from any thread (callbacks
run on the polling thread); the transactional API from one thread at a time, as librdkafka.
Lock order: `_drain_lock` (sender / purge) before `_cond` (counters, reports); the sender calls
the coordinators and partitions while holding neither.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
import zlib
from collections import deque

from logstore import _ffi
from logstore.errors import LogstoreError
from logstore.record_batch import HEADER_SIZE, build_batch, increment_sequence
from txn import errors as txn_errors
from txn.client_config import ACKS_ALL, open_broker, parse_config
from txn.client_timeouts import deadline_after, time_left
from txn.kafka_error import KafkaError, KafkaException, error_from_exception, kafka_exception
from txn.message import (OFFSET_INVALID, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME,
                         Message)
from txn.producer_transactions import Transactions

logger = logging.getLogger("txn.producer")

RECORD_FRAMING_ESTIMATE = 16  # bytes a small record adds to its key and value
IDLE_CHECK_S = 0.05           # the sender's safety wake-up when it believes it has no work
SIZE_CHECK_SLACK = 512        # values longer than message.max.bytes - this are checked in full
SCRATCH_INITIAL = 1 << 20
NO_SEQUENCE = -1
NO_PRODUCER = -1


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _payload(value, what: str) -> bytes:
    """str -> UTF-8; read-only buffers -> bytes; as confluent-kafka accepts them."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, memoryview) and value.readonly:
        return value.tobytes()
    if isinstance(value, bytes):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, str or None, not {type(value).__name__}")


def _timestamp(timestamp) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError(f"'{type(timestamp).__name__}' object cannot be interpreted as an "
                        "integer")
    return int(timestamp)


def _headers(headers):
    """confluent-kafka's header forms -> [(str, bytes | None)] (None for no headers)."""
    if headers is None:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    if not isinstance(items, (list, tuple, type({}.items()))):
        raise TypeError("expected headers to be dict or list of (key, value) tuples, not "
                        f"{type(headers).__name__}")
    out = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError("Headers are expected to be a list of (key, value) tuples")
        name, value = item
        if not isinstance(name, str):
            raise TypeError(f"expected header key to be unicode string, not "
                            f"{type(name).__name__}")
        if value is not None and not isinstance(value, (bytes, str)):
            raise TypeError("expected header value to be None, binary, or unicode string, not "
                            f"{type(value).__name__}")
        out.append((name, value.encode() if isinstance(value, str) else value))
    return out or None


# ------------------------------------------------------------------------------------------------
# Partitioners (librdkafka's, CONFIGURATION.md "partitioner")

_crc32 = zlib.crc32


def _consistent(key: bytes, n: int) -> int:
    return _crc32(key) % n


def _murmur2(key: bytes, n: int) -> int:
    return _ffi.murmur2_partition(key, len(key), n)


def _fnv1a(key: bytes, n: int) -> int:
    return _ffi.fnv1a_partition(key, len(key), n)


def _random(_key: bytes, n: int) -> int:
    return random.randrange(n)


# name -> (function for keyed records, whether null keys are spread (sticky) or hashed)
PARTITIONERS = {
    "consistent_random": (_consistent, True),
    "consistent": (_consistent, False),
    "murmur2_random": (_murmur2, True),
    "murmur2": (_murmur2, False),
    "fnv1a_random": (_fnv1a, True),
    "fnv1a": (_fnv1a, False),
    "random": (_random, True),
}


class _Accumulator:
    """One partition's queued records and its producer-side state (sequence, txn)."""

    __slots__ = ("topic", "partition", "msgs", "cap", "extended", "target", "sequence",
                 "in_txn")

    def __init__(self, topic: str, partition: int, cap: int):
        self.topic = topic
        self.partition = partition
        self.msgs: list = []          # value | (value, key) | _Extended, per record
        self.cap = cap                # a produce() seeing len(msgs) reach this goes slow
        self.extended = False         # some record carried (timestamp, headers, callback)
        self.target = None            # the TxnPartition, opened by the sender
        self.sequence = 0
        self.in_txn = False           # added to the current transaction


class _TopicState:
    """What produce() needs of a topic: its accumulators, partitioner and sticky partition."""

    __slots__ = ("name", "info", "accs", "partition_for", "crc32", "sticky", "sticky_since",
                 "sticky_ms", "spread_null", "null_partition", "lock")

    def __init__(self, name: str, info, partitioner: str, sticky_ms: int, cap: int):
        self.name = name
        self.info = info              # the store's TopicInfo (partitions grow in place)
        self.accs = [_Accumulator(name, p, cap) for p in range(info.partitions)]
        self.partition_for, self.spread_null = PARTITIONERS[partitioner]
        self.crc32 = self.partition_for is _consistent     # produce() inlines this one
        self.sticky_ms = sticky_ms
        self.sticky_since = 0.0
        self.sticky = -1
        self.null_partition = -1
        self.lock = threading.Lock()          # refresh() from the sender and produce()
        self.refresh(cap)

    def refresh(self, cap: int, store=None) -> None:
        """Pick up partitions added since, or a topic created again (called by the
        sender)."""
        with self.lock:
            if store is not None and store.has_topic(self.name):
                self.info = store.topic(self.name)
            count = self.info.partitions
            while len(self.accs) < count:
                self.accs.append(_Accumulator(self.name, len(self.accs), cap))
        if not self.spread_null:
            self.null_partition = self.partition_for(b"", count)
            self.sticky = self.null_partition
        elif self.sticky_ms > 0 and self.sticky < 0:
            self.sticky = random.randrange(count)
            self.sticky_since = time.monotonic()

    def maybe_switch_sticky(self) -> None:
        """librdkafka's sticky partitioning: keyless records stay on one partition for
        sticky.partitioning.linger.ms, then move to another one at random."""
        if not self.spread_null or self.sticky_ms <= 0:
            return
        now = time.monotonic()
        if (now - self.sticky_since) * 1000 < self.sticky_ms:
            return
        count = len(self.accs)
        if count > 1:
            choice = random.randrange(count - 1)
            self.sticky = choice + (choice >= self.sticky)
        self.sticky_since = now


class _Extended(tuple):
    """A record that carries more than a value and key:
    (value, key, timestamp, headers, callback)."""

    __slots__ = ()


class _Records:
    """Records taken from an accumulator, as columns: values, keys, and `extras`
    {index: (timestamp, headers, callback)} for records that carry them (None: none do)."""

    __slots__ = ("values", "keys", "extras")

    def __init__(self, values: list, keys: list, extras: dict | None):
        self.values = values
        self.keys = keys
        self.extras = extras

    @classmethod
    def take(cls, items: list, extended: bool) -> _Records:
        """From an accumulator's items (see _Accumulator.msgs); keys None: all null."""
        if _ffi.sequences_size(None, items, len(items)) is not None:
            return cls(items, None, None)            # keyless values only: the column
        if not extended:
            return cls([x[0] if x.__class__ is tuple else x for x in items],
                       [x[1] if x.__class__ is tuple else None for x in items], None)
        values, keys, extras = [], [], {}
        for i, item in enumerate(items):
            kind = item.__class__
            if kind is tuple:
                values.append(item[0])
                keys.append(item[1])
            elif kind is _Extended:
                values.append(item[0])
                keys.append(item[1])
                extras[i] = item[2:]
            else:
                values.append(item)
                keys.append(None)
        return cls(values, keys, extras or None)

    def __len__(self) -> int:
        return len(self.values)

    def slice(self, start: int, end: int) -> _Records:
        if (start, end) == (0, len(self.values)):
            return self
        extras = None
        if self.extras:
            extras = {i - start: e for i, e in self.extras.items() if start <= i < end} or None
        keys = None if self.keys is None else self.keys[start:end]
        return _Records(self.values[start:end], keys, extras)


class _Report:
    """Delivery reports of one appended batch (or of failed / purged records)."""

    __slots__ = ("topic", "partition", "base_offset", "records", "error", "timestamp",
                 "timestamp_type", "latency")

    def __init__(self, acc: _Accumulator, records: _Records, base_offset: int, error,
                 timestamp: int, timestamp_type: int, latency: float | None):
        self.topic = acc.topic
        self.partition = acc.partition
        self.records = records
        self.base_offset = base_offset
        self.error = error
        self.timestamp = timestamp
        self.timestamp_type = timestamp_type
        self.latency = latency


class _Job:
    """One accumulator's drained records in one drain, and what became of them."""

    __slots__ = ("acc", "records", "reports", "last_offset", "error")

    def __init__(self, acc: _Accumulator, records: _Records):
        self.acc = acc
        self.records = records
        self.reports: list[_Report] = []
        self.last_offset = -1
        self.error = None


class Producer:
    """confluent_kafka.Producer over an embedded data directory (`log.dirs`)."""

    def __init__(self, config: dict | None = None, /, **kwargs):
        cfg = parse_config(config, kwargs, client="Producer")
        self._config = cfg
        self._closed = False
        self._broker = open_broker(cfg)
        self._acks = cfg["acks"]
        self._linger_s = cfg["linger.ms"] / 1000
        self._batch_records = cfg["batch.num.messages"]
        self._batch_bytes = cfg["batch.size"]
        self._max_records = cfg["queue.buffering.max.messages"]
        self._max_message = cfg["message.max.bytes"]
        self._max_value = max(0, self._max_message - SIZE_CHECK_SLACK)
        self._codec = cfg["compression.type"]
        level = cfg["compression.level"]
        self._level = None if level < 0 else level
        self._on_delivery = cfg["on_delivery"]
        self._error_cb = cfg["error_cb"]
        self._only_errors = cfg["delivery.report.only.error"]
        self._idempotent = cfg["enable.idempotence"]
        self._known: dict[str, _TopicState] = {}
        self._topics = self._known                   # what produce() looks up
        self._topics_lock = threading.Lock()
        self._all_topics: list[_TopicState] = []
        self._drain_lock = threading.Lock()
        self._cond = threading.Condition()          # counters, reports, sender flags
        self._reports: deque[_Report] = deque()
        self._errors: deque[KafkaError] = deque()
        self._in_flight = 0
        self._unserved = 0
        self._urgent = False
        self._work = False
        self._closing = False
        self._dirty: set = set()                    # partitions written since flush()
        self._pid = NO_PRODUCER
        self._epoch = -1
        self._fatal: KafkaError | None = None
        self._txn = Transactions(self, cfg["transactional.id"], cfg["transaction.timeout.ms"])
        self._blocked = self._txn.enabled           # produce() must take the slow path
        self._scratch = bytearray(SCRATCH_INITIAL)
        # The thread holds the producer weakly: a producer dropped without close() is
        # collected (__del__ releases the engine; queued records are lost, as librdkafka's
        # destroy without flush loses them).
        self._sender = threading.Thread(target=_run_sender, args=(weakref.ref(self),),
                                        daemon=True, name=f"txn-producer-{cfg['client.id']}")
        self._sender.start()

    # -- produce ----------------------------------------------------------------------------

    def produce(self, topic, value=None, key=None, partition=-1, callback=None,
                on_delivery=None, timestamp=0, headers=None):
        """Queue one record (see the module doc); delivery is reported through poll()."""
        try:
            state = self._topics[topic]            # empty while produce() is not allowed
        except (KeyError, TypeError):
            state = self._topic_state(topic)
        if value.__class__ is not bytes:
            if value is not None:
                value = _payload(value, "value")
        elif len(value) > self._max_value:
            self._check_size(value, key)
        if key is None:
            if partition < 0:
                partition = state.sticky
                if partition < 0:
                    partition = random.randrange(len(state.accs))
            record = value
        else:
            if key.__class__ is not bytes:
                key = _payload(key, "key")
            if partition < 0:
                if state.crc32:
                    partition = _crc32(key) % len(state.accs)
                else:
                    partition = state.partition_for(key, len(state.accs))
            record = (value, key)
        try:
            acc = state.accs[partition]
        except (IndexError, TypeError):
            acc = self._unknown_partition(state, partition)
        msgs = acc.msgs
        n = len(msgs)
        if not 0 < n < acc.cap:
            self._admit(acc, n)
        if callback is None and on_delivery is None and not timestamp and headers is None:
            msgs.append(record)
        else:
            if timestamp.__class__ is not int:
                timestamp = _timestamp(timestamp)
            headers = _headers(headers)
            acc.extended = True
            msgs.append(_Extended((value, key, timestamp, headers, callback or on_delivery)))

    def produce_batch(self, topic, messages, partition=-1, callback=None, on_delivery=None):
        """Produce a list of {value, key, partition, timestamp, headers, callback} dicts;
        returns how many were queued; a failed one gets its exception's KafkaError under
        "_error", as confluent-kafka does."""
        queued = 0
        for m in messages:
            try:
                self.produce(topic, m.get("value"), m.get("key"), m.get("partition", partition),
                             m.get("callback", callback), m.get("on_delivery", on_delivery),
                             m.get("timestamp", 0), m.get("headers"))
                queued += 1
            except KafkaException as exc:
                m["_error"] = exc.args[0]
            except BufferError:
                m["_error"] = KafkaError(KafkaError._QUEUE_FULL)
        return queued

    def _topic_state(self, topic) -> _TopicState:
        """The slow path of produce(): state checks, then the topic (created if allowed)."""
        if not isinstance(topic, str):
            raise TypeError(f"argument 1 must be str, not {type(topic).__name__}")
        self._check_producible()
        state = self._known.get(topic)
        if state is not None:
            return state
        try:
            self._broker.ensure_topic(topic)
            info = self._broker.store.topic(topic)
        except LogstoreError as exc:
            code = exc.code if exc.code != KafkaError.UNKNOWN_TOPIC_OR_PART \
                else KafkaError._UNKNOWN_TOPIC
            raise kafka_exception(code, f"Unable to produce message: {exc}") from None
        with self._topics_lock:
            state = self._known.get(topic)
            if state is None:
                cfg = self._config
                state = _TopicState(topic, info, cfg["partitioner"],
                                    cfg["sticky.partitioning.linger.ms"], self._batch_records)
                self._all_topics.append(state)
                self._known[topic] = state
        return state

    @property
    def _blocked(self) -> bool:
        return self._topics is not self._known

    @_blocked.setter
    def _blocked(self, blocked: bool) -> None:
        """produce() takes its slow path (which checks the state) while blocked: the fast
        path's topic table is then an empty one."""
        self._topics = {} if blocked or self._closed or self._fatal is not None \
            else self._known

    def _check_producible(self) -> None:
        if self._closed:
            raise kafka_exception(KafkaError._STATE, "Unable to produce message: the "
                                                     "producer is closed")
        if self._fatal is not None:
            raise KafkaException(KafkaError(KafkaError._FATAL, self._fatal.str(), fatal=True))
        if self._txn.enabled and not self._txn.may_produce():
            raise kafka_exception(
                KafkaError._STATE, "Unable to produce message: Local: Erroneous state "
                f"(transactional producer in state {self._txn.state}: produce() is only "
                "allowed between begin_transaction() and commit/abort_transaction())")

    def _check_size(self, value: bytes, key) -> None:
        size = len(value) + (len(key) if isinstance(key, (bytes, str)) else 0)
        if size > self._max_message:
            raise kafka_exception(
                KafkaError.MSG_SIZE_TOO_LARGE, "Unable to produce message: Broker: Message "
                f"size too large ({size} bytes > message.max.bytes {self._max_message})")

    def _unknown_partition(self, state: _TopicState, partition) -> _Accumulator:
        state.refresh(self._batch_records, self._broker.store)
        if isinstance(partition, int) and 0 <= partition < len(state.accs):
            return state.accs[partition]
        if not isinstance(partition, int):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        raise kafka_exception(
            KafkaError._UNKNOWN_PARTITION, f"Unable to produce message: Local: Unknown "
            f"partition ({state.name} has {len(state.accs)} partitions, not {partition})")

    def _admit(self, acc: _Accumulator, n: int) -> None:
        """produce() found the accumulator empty (wake the sender) or at its cap: apply
        queue.buffering.max.messages (BufferError, as confluent-kafka) and move the cap."""
        if n >= acc.cap:
            total = self._queued_records() + self._in_flight + self._unserved
            if total >= self._max_records:
                raise BufferError("Local: Queue full")
            room = min(self._batch_records, self._max_records - total)
            acc.cap = n + room
            urgent = n >= self._batch_records
        else:
            urgent = False
        with self._cond:
            self._work = True
            self._urgent = self._urgent or urgent
            self._cond.notify_all()

    def _queued_records(self) -> int:
        return sum(len(acc.msgs) for state in self._all_topics for acc in state.accs)

    def __len__(self) -> int:
        with self._cond:
            return self._queued_records() + self._in_flight + self._unserved

    def __bool__(self) -> bool:
        return True

    # -- delivery reports -------------------------------------------------------------------

    def poll(self, timeout: float = -1) -> int:
        """Serve queued delivery reports and errors (callbacks run here); wait up to
        `timeout` seconds (-1: forever) for one when none is queued. Returns how many."""
        served = self._serve()
        if served or timeout == 0:
            return served
        deadline = deadline_after(timeout)
        with self._cond:
            while not self._reports and not self._errors:
                if self._closed or (deadline is not None and time_left(deadline) <= 0):
                    break
                self._cond.wait(time_left(deadline))
        return self._serve()

    def flush(self, timeout: float = -1) -> int:
        """Deliver everything queued, serving reports; returns the records still queued or
        in flight (0: all delivered and fsynced)."""
        deadline = deadline_after(timeout)
        while True:
            self._serve()
            with self._cond:
                left = self._queued_records() + self._in_flight + self._unserved
                if left == 0 or (deadline is not None and time_left(deadline) <= 0):
                    break
                if not self._reports and not self._errors:
                    self._urgent = self._work = True
                    self._cond.notify_all()
                    self._cond.wait(time_left(deadline))
        if left == 0:
            self._sync_dirty()
        return left

    def _sync_dirty(self) -> None:
        """flush() promises durability whatever acks says: fsync what was written since."""
        with self._cond:
            dirty, self._dirty = self._dirty, set()
        for target in dirty:
            try:
                target.log.flush()
            except LogstoreError as exc:
                raise KafkaException(error_from_exception(exc)) from exc

    def _serve(self) -> int:
        served = 0
        while True:
            try:
                error = self._errors.popleft()
            except IndexError:
                break
            served += 1
            if self._error_cb is not None:
                self._error_cb(error)
        while True:
            try:
                report = self._reports.popleft()
            except IndexError:
                return served
            served += self._deliver(report)

    def _deliver(self, report: _Report) -> int:
        """Run the callbacks of one report; the count is released even if one raises (the
        rest of the report is then put back for the next poll)."""
        records = report.records
        count = len(records)
        default = self._on_delivery
        extras = records.extras
        done = 0
        try:
            if default is None and extras is None:
                done = count
                return done
            error = report.error
            skip = self._only_errors and error is None
            for i in range(count):
                done = i + 1
                extra = extras.get(i) if extras else None
                callback = extra[2] if extra is not None and extra[2] else default
                if callback is not None and not skip:
                    callback(error, self._report_message(report, i, extra))
            return done
        finally:
            if done < count:
                self._reports.appendleft(_rest_of(report, done))
            with self._cond:
                self._unserved -= done
                self._cond.notify_all()

    @staticmethod
    def _report_message(report: _Report, i: int, extra) -> Message:
        offset = report.base_offset + i if report.base_offset >= 0 else OFFSET_INVALID
        timestamp = report.timestamp
        headers = None
        if extra is not None:
            headers = extra[1]
            if extra[0] and report.timestamp_type == TIMESTAMP_CREATE_TIME:
                timestamp = extra[0]
        records = report.records
        key = None if records.keys is None else records.keys[i]
        return Message(report.topic, report.partition, offset, key,
                       records.values[i], headers, report.error,
                       (report.timestamp_type, timestamp), report.latency)

    def _queue_error(self, error: KafkaError) -> None:
        with self._cond:
            self._errors.append(error)
            self._cond.notify_all()

    # -- purge and close --------------------------------------------------------------------

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True):
        """Drop queued records (their reports carry _PURGE_QUEUE); records already handed to
        the sender complete. blocking: wait for them."""
        if in_queue:
            self._purge_queued(KafkaError(KafkaError._PURGE_QUEUE))
        if blocking:
            self._wait_sender_idle(None)

    def _purge_queued(self, error: KafkaError) -> int:
        reports = []
        with self._drain_lock, self._cond:
            for acc in self._accumulators():
                msgs = acc.msgs
                n = len(msgs)
                if n:
                    records = _Records.take(msgs[:n], acc.extended)
                    del msgs[:n]
                    reports.append(_Report(acc, records, OFFSET_INVALID, error, 0,
                                           TIMESTAMP_CREATE_TIME, None))
            for report in reports:
                self._unserved += len(report.records)
                self._reports.append(report)
            self._cond.notify_all()
        return sum(len(r.records) for r in reports)

    def _wait_sender_idle(self, deadline: float | None) -> bool:
        with self._cond:
            while self._in_flight:
                if deadline is not None and time_left(deadline) <= 0:
                    return False
                self._cond.wait(time_left(deadline))
        return True

    def _accumulators(self):
        return [acc for state in list(self._all_topics) for acc in state.accs]

    def close(self) -> bool:
        """Abort an open transaction, flush, stop the sender and release the engine."""
        if self._closed:
            return True
        if self._txn.enabled and self._fatal is None and self._txn.in_transaction():
            try:
                self._txn.abort(-1)
            except KafkaException as exc:
                logger.info("close(): aborting the open transaction failed: %s", exc)
        self.flush()
        self._stop_sender()
        self._closed = True
        self._blocked = True
        self._broker.release()
        return True

    def _stop_sender(self, wait: bool = True) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if wait and threading.current_thread() is not self._sender:
            self._sender.join()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.close()

    def __del__(self):
        if not getattr(self, "_closed", True):
            self._closed = True
            try:
                self._stop_sender(wait=False)
                self._broker.release()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    # -- metadata ---------------------------------------------------------------------------

    def list_topics(self, topic: str | None = None, timeout: float = -1):
        from txn.metadata import cluster_metadata
        return cluster_metadata(self._broker, topic)

    def cluster_id(self, timeout: float = -1) -> str:
        return self._broker.store.cluster_id

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted for compatibility; the embedded store has no authentication."""

    # -- transactions (txn/producer_transactions.py) ----------------------------------------

    def init_transactions(self, timeout: float = -1) -> None:
        self._txn.init(timeout)

    def begin_transaction(self) -> None:
        self._txn.begin()

    def send_offsets_to_transaction(self, positions, group_metadata, timeout: float = -1):
        self._txn.send_offsets(positions, group_metadata, timeout)

    def commit_transaction(self, timeout: float = -1) -> None:
        self._txn.commit(timeout)

    def abort_transaction(self, timeout: float = -1) -> None:
        self._txn.abort(timeout)

    # -- the sender thread ------------------------------------------------------------------

    def _sender_step(self) -> bool:
        """One round of the sender: wait for work (at most IDLE_CHECK_S), linger, drain,
        send. False when the producer is closing and nothing is left."""
        with self._cond:
            if not self._work and not self._closing:
                self._cond.wait(IDLE_CHECK_S)
                if not self._work and not self._closing and not self._queued_records():
                    return True
            closing = self._closing
            self._work = False
        if not closing:
            self._linger()
        jobs = self._drain()
        if jobs:
            self._send(jobs)
        elif closing:
            return False
        if self._queued_records():
            self._work = True
        return True

    def _linger(self) -> None:
        if self._linger_s <= 0:
            return
        with self._cond:
            if not self._urgent:
                self._cond.wait_for(lambda: self._urgent or self._closing, self._linger_s)
            self._urgent = False

    def _drain(self) -> list[_Job]:
        """Take every queued record, as one job per partition."""
        jobs = []
        with self._drain_lock, self._cond:
            for state in list(self._all_topics):
                state.refresh(self._batch_records, self._broker.store)
                for acc in state.accs:
                    msgs = acc.msgs
                    n = len(msgs)
                    if n:
                        taken = msgs[:n]
                        del msgs[:n]
                        acc.cap = self._batch_records
                        jobs.append((acc, taken))
                state.maybe_switch_sticky()
            self._in_flight += sum(len(taken) for _, taken in jobs)
        return [_Job(acc, _Records.take(taken, acc.extended)) for acc, taken in jobs]

    def _send(self, jobs: list[_Job]) -> None:
        started = time.monotonic()
        now_ms = _wall_ms()
        self._prepare_producer(jobs)
        for job in jobs:
            if job.error is None:
                self._append_job(job, now_ms)
        if self._acks == ACKS_ALL:
            self._sync_jobs(jobs)
        self._publish(jobs, time.monotonic() - started)

    def _prepare_producer(self, jobs: list[_Job]) -> None:
        """A producer id for an idempotent producer; the partitions joining a transaction."""
        try:
            if self._txn.enabled:
                self._txn.add_partitions(jobs)
            elif self._idempotent and self._pid == NO_PRODUCER:
                self._new_producer_id()
        except (LogstoreError, KafkaException) as exc:
            error = self._producer_error(exc)
            for job in jobs:
                job.error = error

    def _new_producer_id(self) -> None:
        """InitProducerId without a transactional id; sequences restart at 0."""
        coordinator = self._broker.transaction_coordinator
        self._pid, self._epoch = coordinator.init_producer_id(None, 0)
        self._reset_sequences()

    def _reset_sequences(self) -> None:
        for acc in self._accumulators():
            acc.sequence = 0

    def _append_job(self, job: _Job, now_ms: int) -> None:
        acc = job.acc
        try:
            if acc.target is None or acc.target.log.closed:     # new, or topic deleted
                acc.target = self._broker.partition(acc.topic, acc.partition)
        except LogstoreError as exc:
            job.error = error_from_exception(exc)
            return
        records = job.records
        keys = records.keys
        if keys is not None and keys.count(None) == len(keys):
            keys = None
        headers = timestamps = None
        if records.extras:
            headers, timestamps = _extras(records, now_ms)
        columns = (records.values, keys, headers, timestamps)
        limit = min(self._batch_bytes, acc.target.log.config.max_message_bytes)
        for start, end in _chunks(records.values, keys, headers, limit):
            self._append_range(job, columns, start, end, now_ms)
            if job.error is not None:
                if end < len(records):
                    job.reports.append(_Report(acc, records.slice(end, len(records)),
                                               OFFSET_INVALID, job.error, now_ms,
                                               TIMESTAMP_CREATE_TIME, None))
                return

    def _append_range(self, job: _Job, columns, start: int, end: int, now_ms: int) -> None:
        """Build and append records [start, end) of the job: halves when the batch is over
        max.message.bytes; one retry with a new producer id when an idempotent producer's
        state was lost (sequence or epoch errors)."""
        acc = job.acc
        target = acc.target
        retried = False
        while True:
            try:
                batch = self._build(acc, columns, start, end, now_ms)
                if len(batch) > target.log.config.max_message_bytes and end - start > 1:
                    middle = (start + end) // 2
                    self._append_range(job, columns, start, middle, now_ms)
                    if job.error is None:
                        self._append_range(job, columns, middle, end, now_ms)
                    return
                result = target.append(batch, validate=False)
                break
            except (txn_errors.OutOfOrderSequence, txn_errors.UnknownProducerId,
                    txn_errors.InvalidProducerEpoch) as exc:
                if self._txn.enabled or retried or not self._idempotent:
                    job.error = self._producer_error(exc)
                    break
                logger.info("%s-%d: %s; new producer id", acc.topic, acc.partition, exc)
                self._new_producer_id()
                retried = True
            except (LogstoreError, ValueError, TypeError) as exc:
                job.error = self._producer_error(exc)
                break
        records = job.records.slice(start, end)
        if job.error is not None:
            job.reports.append(_Report(acc, records, OFFSET_INVALID, job.error, now_ms,
                                       TIMESTAMP_CREATE_TIME, None))
            return
        if self._idempotent:
            acc.sequence = increment_sequence(acc.sequence, end - start)
        job.last_offset = max(job.last_offset, result.last_offset)
        base = result.first_offset if self._acks != 0 else OFFSET_INVALID
        if result.log_append_time_ms >= 0:
            stamp, kind = result.log_append_time_ms, TIMESTAMP_LOG_APPEND_TIME
        else:
            stamp, kind = now_ms, TIMESTAMP_CREATE_TIME
        job.reports.append(_Report(acc, records, base, None, stamp, kind, None))

    def _build(self, acc: _Accumulator, columns, start: int, end: int, now_ms: int):
        values, keys, headers, timestamps = columns
        whole = (start, end) == (0, len(values))

        def part(column):
            return column if column is None or whole else column[start:end]
        scratch = self._scratch if self._codec == 0 else None
        return build_batch(
            part(values), part(keys), part(headers), part(timestamps), now_ms=now_ms,
            compression=self._codec, compression_level=self._level, out=scratch,
            producer_id=self._pid if self._idempotent else NO_PRODUCER,
            producer_epoch=self._epoch if self._idempotent else -1,
            base_sequence=acc.sequence if self._idempotent else NO_SEQUENCE,
            transactional=self._txn.enabled)

    def _sync_jobs(self, jobs: list[_Job]) -> None:
        """acks=all: one fsync per partition written in this drain (group commit)."""
        for job in jobs:
            if job.last_offset < 0:
                continue
            try:
                job.acc.target.log.flush(job.last_offset + 1)
            except LogstoreError as exc:
                error = self._producer_error(exc)
                job.error = error
                for report in job.reports:
                    if report.error is None:
                        report.error, report.base_offset = error, OFFSET_INVALID

    def _publish(self, jobs: list[_Job], latency: float) -> None:
        acc_errors = [job.error for job in jobs if job.error is not None]
        with self._cond:
            for job in jobs:
                if not job.reports:
                    job.reports.append(_Report(job.acc, job.records, OFFSET_INVALID,
                                               job.error, 0, TIMESTAMP_CREATE_TIME, None))
                for report in job.reports:
                    report.latency = latency
                    self._reports.append(report)
                if job.last_offset >= 0 and self._acks != ACKS_ALL:
                    self._dirty.add(job.acc.target)
                self._in_flight -= len(job.records)
                self._unserved += len(job.records)
            self._cond.notify_all()
        if acc_errors and self._txn.enabled:
            self._txn.delivery_failed(acc_errors[0])

    def _producer_error(self, exc: BaseException) -> KafkaError:
        """The KafkaError of a failed append or coordinator call; fencing is fatal."""
        error = error_from_exception(exc, transactional=self._txn.enabled)
        if error.fatal() and self._fatal is None:
            self._set_fatal(error)
        return error

    def _set_fatal(self, error: KafkaError) -> None:
        """librdkafka's fatal error: produce() and the transactional API fail from now on;
        error_cb sees it (with fatal() True) on the next poll; queued records fail."""
        if self._fatal is not None:
            return
        if not error.fatal():
            error = KafkaError(error.code(), error.str(), fatal=True)
        self._fatal = error
        self._blocked = True
        self._txn.fatal(error)
        self._queue_error(error)
        self._purge_queued(KafkaError(KafkaError._FATAL, error.str(), fatal=True))


def _run_sender(ref) -> None:
    """The sender thread: rounds of Producer._sender_step while the producer lives."""
    while True:
        producer = ref()
        if producer is None:
            return
        try:
            if not producer._sender_step():
                return
        except BaseException as exc:  # noqa: BLE001 - report, never die silently
            logger.exception("producer sender thread failed")
            producer._set_fatal(KafkaError(KafkaError._FAIL, f"sender thread failed: {exc}",
                                           fatal=True))
            return
        del producer


def _rest_of(report: _Report, done: int) -> _Report:
    """The part of a report after its first `done` records."""
    rest = _Report.__new__(_Report)
    for name in _Report.__slots__:
        setattr(rest, name, getattr(report, name))
    rest.records = report.records.slice(done, len(report.records))
    if report.base_offset >= 0:
        rest.base_offset = report.base_offset + done
    return rest


def _extras(records: _Records, now_ms: int):
    """(headers, timestamps) columns for records some of which carry them (None: unused)."""
    count = len(records)
    headers = timestamps = None
    for i, (timestamp, record_headers, _callback) in records.extras.items():
        if record_headers:
            if headers is None:
                headers = [None] * count
            headers[i] = record_headers
        if timestamp:
            if timestamps is None:
                timestamps = [now_ms] * count
            timestamps[i] = timestamp
    return headers, timestamps


def _chunks(values: list, keys: list | None, headers, limit: int):
    """[start, end) ranges of about `limit` bytes each (by count, from the total size)."""
    count = len(values)
    sizes = _ffi.sequences_size(keys, values, count)
    if sizes is None:
        total = sum(len(v) for v in values if v is not None)
        total += sum(len(k) for k in keys or () if k is not None)
    else:
        total = sizes[0] + sizes[1]
    if headers is not None:
        total += sum(len(k) + len(v or b"") for h in headers if h for k, v in h)
    total += HEADER_SIZE + count * RECORD_FRAMING_ESTIMATE
    if total <= limit or count == 1:
        yield 0, count
        return
    pieces = -(-total // limit)
    step = max(1, -(-count // pieces))
    for start in range(0, count, step):
        yield start, min(count, start + step)
