"""The embedded `Consumer`: confluent-kafka's Consumer over a logstore data directory.

Fetching. Each assigned partition has a fetch offset. A poll() that finds no message ready
fetches one partition (round robin over the assigned, unpaused ones) with
TxnPartition.fetch(offset, max.partition.fetch.bytes, isolation.level): whole batches up to the
high watermark (read_uncommitted) or the last stable offset (read_committed, filtered by
txn.fetch.committed_batches: aborted transactions and control batches never reach the
application). Every batch becomes Messages at once in C (logstore._ffi.build_record_objects),
into a list: the *chunk*. poll() then only takes the next item of the chunk's iterator, so the
common case costs one method call. With nothing to fetch, poll() waits on the broker's data
condition (broker.wait_for_data), which every append and marker notifies.

Positions. `position()` is the offset after the last message the application got (librdkafka's
app offset), computed from how far the chunk's iterator went when it matters ("settling":
before commits, position(), seeks, rebalances and the next fetch). With
enable.auto.offset.store that is also the stored offset. A new assignment starts at the
committed offset (fetched with require_stable for read_committed consumers, retried while an
open transaction holds it: UNSTABLE_OFFSET_COMMIT), else at auto.offset.reset (earliest,
latest, or `error`: an _AUTO_OFFSET_RESET error message).

Groups. subscribe() starts a txn.consumer_group.GroupMember (the classic protocol with the
range / roundrobin assignors, heartbeats on its own thread); its events are served here, on
the thread that calls poll(): on_assign / on_revoke / on_lost run there, and when a callback
does not call assign() / unassign() itself the consumer does, as confluent-kafka does. Eager
rebalancing: all partitions are revoked (with an automatic commit of the stored offsets when
enable.auto.commit) before the member joins again. assign() without subscribe() uses the
group only for offsets (commits with generation -1).

Commits: commit() writes at once (an embedded commit is one durable append); asynchronous
commits report through on_commit from the next poll(). enable.auto.commit commits the stored
offsets every auto.commit.interval.ms from poll(), on revocation and on close().

Errors and events come back from poll() as Messages whose error() is set:
_PARTITION_EOF (enable.partition.eof), _AUTO_OFFSET_RESET, _MAX_POLL_EXCEEDED,
UNKNOWN_TOPIC_OR_PART (a subscribed topic does not exist), storage errors.

Thread-safety: the application normally polls from one thread; other threads may call the
other methods (they take `_lock`, a re-entrant lock the callbacks already hold). poll()'s
fast path takes no lock.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque

from logstore import _ffi
from logstore.errors import CorruptRecord, LogstoreError, OffsetOutOfRange
from logstore.record_batch import iter_batches
from txn import errors as txn_errors
from txn.client_config import open_broker, parse_config
from txn.consumer_group import ASSIGN, ERROR, LOST, REVOKE, GroupMember
from txn.fetch import committed_batches
from txn.client_timeouts import deadline_after, time_left
from txn.kafka_error import KafkaError, KafkaException, error_from_exception, kafka_exception
from txn.message import (MESSAGE_SLOTS, OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID,
                         OFFSET_STORED, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME,
                         ConsumerGroupMetadata, Message, TopicPartition)

logger = logging.getLogger("txn.consumer")

READ_COMMITTED = "read_committed"
ATTR_LOG_APPEND_TIME = 0x08
UNSTABLE_RETRY_S = 0.01
MIN_WAIT_S = 0.001
CONSUME_MAX = 1000000
_EMPTY_NEXT = iter(()).__next__


class _Partition:
    """One assigned partition: where to fetch next, where the application is, what it stored
    and last committed, and fetch flags."""

    __slots__ = ("topic", "partition", "target", "fetch_offset", "app_position", "stored",
                 "committed", "paused", "eof_sent", "stopped", "retry_at", "constants",
                 "high_watermark", "last_stable_offset")

    def __init__(self, topic: str, partition: int, offset: int):
        self.topic = topic
        self.partition = partition
        self.target = None
        self.fetch_offset = offset       # >= 0, or OFFSET_* to resolve before the next fetch
        self.app_position = OFFSET_INVALID
        self.stored = OFFSET_INVALID
        self.committed = OFFSET_INVALID
        self.paused = False
        self.eof_sent = False
        self.stopped = False             # auto.offset.reset=error hit: wait for a seek
        self.retry_at = 0.0
        self.constants: dict = {}
        self.high_watermark = OFFSET_INVALID
        self.last_stable_offset = OFFSET_INVALID

    @property
    def key(self) -> tuple[str, int]:
        return self.topic, self.partition


class _Chunk:
    """The messages of one fetch of one partition, handed out through an iterator."""

    __slots__ = ("part", "messages", "iterator", "settled")

    def __init__(self, part: _Partition, messages: list):
        self.part = part
        self.messages = messages
        self.iterator = iter(messages)
        self.settled = 0

    def consumed(self) -> int:
        return len(self.messages) - self.iterator.__length_hint__()


def _event(topic, partition, offset, error: KafkaError) -> Message:
    return Message(topic, partition, offset, None, None, None, error)


class Consumer:
    """confluent_kafka.Consumer over an embedded data directory (`log.dirs`)."""

    def __init__(self, config: dict | None = None, /, **kwargs):
        import threading
        cfg = parse_config(config, kwargs, client="Consumer")
        self._config = cfg
        self._closed = False
        self._broker = open_broker(cfg)
        self._group_id = cfg["group.id"]
        self._isolation = cfg["isolation.level"]
        self._committed_only = self._isolation == READ_COMMITTED
        self._reset = cfg["auto.offset.reset"]
        self._auto_commit = cfg["enable.auto.commit"]
        self._auto_commit_s = cfg["auto.commit.interval.ms"] / 1000
        self._auto_store = cfg["enable.auto.offset.store"]
        self._eof = cfg["enable.partition.eof"]
        self._fetch_bytes = cfg["max.partition.fetch.bytes"]
        self._wait_s = cfg["fetch.wait.max.ms"] / 1000
        self._check_crcs = cfg["check.crcs"]
        self._on_commit = cfg["on_commit"]
        self._error_cb = cfg["error_cb"]
        self._lock = threading.RLock()
        self._parts: dict[tuple[str, int], _Partition] = {}
        self._order: list[_Partition] = []
        self._turn = 0
        self._chunk: _Chunk | None = None
        self._next = _EMPTY_NEXT
        self._events: deque[Message] = deque()
        self._commit_results: deque = deque()
        self._member: GroupMember | None = None
        self._callbacks = (None, None, None)
        self._rebalance_assigned = False
        self._slow_polls = 0
        self._polling = 0
        self._last_auto_commit = time.monotonic()

    # -- poll -------------------------------------------------------------------------------

    def poll(self, timeout: float = -1) -> Message | None:
        """The next message or event, waiting up to `timeout` seconds (-1: forever)."""
        try:
            return self._next()
        except StopIteration:
            return self._poll_slow(timeout)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        """Up to num_messages messages, waiting up to `timeout` seconds for them."""
        if not isinstance(num_messages, int) or not 0 <= num_messages <= CONSUME_MAX:
            raise ValueError(f"num_messages must be between 0 and {CONSUME_MAX} (1M)")
        deadline = deadline_after(timeout)
        out: list[Message] = []
        while len(out) < num_messages:
            chunk = self._chunk
            if chunk is not None:
                out += itertools.islice(chunk.iterator, num_messages - len(out))
                if len(out) >= num_messages:
                    break
            message = self._poll_slow(time_left(deadline) if deadline is not None else -1)
            if message is None:
                break
            out.append(message)
        return out

    def _poll_slow(self, timeout) -> Message | None:
        """Serve events, fetch, and wait for data in slices of fetch.wait.max.ms (every
        append and marker, and every group event, ends a wait early)."""
        deadline = deadline_after(timeout)
        with self._lock:
            self._polling += 1
        try:
            while True:
                with self._lock:
                    self._check_open()
                    self._slow_polls += 1
                    version = self._broker.data_version
                    message = self._poll_once()
                if message is not None:
                    return message
                left = time_left(deadline)
                if left is not None and left <= 0:
                    return None
                wait = self._wait_s if left is None else min(left, self._wait_s)
                self._broker.wait_for_data(version, max(wait, MIN_WAIT_S))
        finally:
            with self._lock:
                self._polling -= 1

    def _poll_once(self) -> Message | None:
        """Under _lock: serve events and callbacks, then fetch until a message turns up."""
        self._settle()
        event = self._serve_events()
        if event is not None:
            return event
        self._maybe_auto_commit()
        parts = [p for p in self._order if not p.paused and not p.stopped]
        for i in range(len(parts)):
            part = parts[(self._turn + i) % len(parts)]
            messages = self._fetch(part)
            if messages is None:
                continue
            self._turn = (self._turn + i + 1) % len(parts)
            if isinstance(messages, Message):
                return messages
            chunk = _Chunk(part, messages)
            self._chunk = chunk
            self._next = chunk.iterator.__next__
            return self._next()
        return self._events.popleft() if self._events else None

    def _progress(self) -> tuple[int, int, bool]:
        """Changes whenever the application polls; the flag: a poll() is waiting now (for
        max.poll.interval.ms, which a waiting poll() does not exceed)."""
        chunk = self._chunk
        return (self._slow_polls, chunk.consumed() if chunk is not None else 0,
                self._polling > 0)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("Consumer closed")

    # -- fetching ---------------------------------------------------------------------------

    def _settle(self) -> None:
        """Bring the chunk's partition up to what the application has taken."""
        chunk = self._chunk
        if chunk is None:
            return
        consumed = chunk.consumed()
        if consumed > chunk.settled:
            chunk.settled = consumed
            position = chunk.messages[consumed - 1]._offset + 1
            chunk.part.app_position = position
            if self._auto_store:
                chunk.part.stored = position
        if consumed == len(chunk.messages):
            self._chunk, self._next = None, _EMPTY_NEXT

    def _discard(self, part: _Partition | None = None) -> None:
        """Drop the unconsumed rest of the chunk (of `part`, or whatever its partition):
        the partition fetches it again from the first message not handed out."""
        self._settle()
        chunk = self._chunk
        if chunk is None or (part is not None and chunk.part is not part):
            return
        consumed = chunk.consumed()
        if consumed < len(chunk.messages):
            chunk.part.fetch_offset = chunk.messages[consumed]._offset
        self._chunk, self._next = None, _EMPTY_NEXT

    def _target(self, part: _Partition):
        if part.target is None or part.target.log.closed:      # new, or topic deleted
            part.target = self._broker.partition(part.topic, part.partition)
        return part.target

    def _fetch(self, part: _Partition):
        """Messages from `part` (a list), an event Message, or None (nothing now)."""
        if part.fetch_offset < 0 and not self._resolve(part):
            return None
        while True:
            start = part.fetch_offset
            try:
                result = self._target(part).fetch(start, self._fetch_bytes, self._isolation)
                messages = self._decode(part, result)
            except OffsetOutOfRange as exc:
                return self._out_of_range(part, exc)
            except LogstoreError as exc:
                part.retry_at = time.monotonic() + UNSTABLE_RETRY_S
                part.stopped = isinstance(exc, CorruptRecord)
                return _event(part.topic, part.partition, start, error_from_exception(exc))
            part.high_watermark = result.high_watermark
            part.last_stable_offset = result.last_stable_offset
            if result.next_offset > start:
                part.fetch_offset = result.next_offset
            if messages:
                part.eof_sent = False
                return messages
            if result.next_offset <= start:
                return self._end_reached(part)

    def _decode(self, part: _Partition, result) -> list[Message]:
        """Messages of a fetch result (records below the fetch offset skipped)."""
        out: list[Message] = []
        batches = iter_batches(result.records)
        if self._committed_only:
            batches = committed_batches(batches, result.aborted_transactions)
        for batch in batches:
            if batch.is_control:
                continue
            if self._check_crcs:
                batch.validate()
            header = batch.header
            append_time = header.attributes & ATTR_LOG_APPEND_TIME
            key = (append_time, header.partition_leader_epoch)
            constants = part.constants.get(key)
            if constants is None:
                constants = part.constants[key] = (
                    part.topic, part.partition, None,
                    TIMESTAMP_LOG_APPEND_TIME if append_time else TIMESTAMP_CREATE_TIME, None,
                    header.partition_leader_epoch)
            _ffi.build_record_objects(
                batch.records_region(), header.records_count, header.base_offset,
                header.base_timestamp, bool(append_time), header.max_timestamp,
                part.fetch_offset, Message, MESSAGE_SLOTS, constants, out,
                f"records of {part.topic}-{part.partition} at offset {header.base_offset}")
        return out

    def _end_reached(self, part: _Partition) -> Message | None:
        if not self._eof or part.eof_sent:
            return None
        part.eof_sent = True
        return _event(part.topic, part.partition, part.fetch_offset, KafkaError(
            KafkaError._PARTITION_EOF, f"Fetch from broker 0 reached end of partition at "
            f"offset {part.fetch_offset} (HighwaterMark {part.high_watermark})"))

    def _end_offset(self, target) -> int:
        return target.last_stable_offset if self._committed_only else target.high_watermark

    def _resolve(self, part: _Partition) -> bool:
        """A fetch offset for a partition starting at a logical offset: the committed offset,
        else auto.offset.reset; False when it cannot be known yet (or reset=error)."""
        if time.monotonic() < part.retry_at:
            return False
        try:
            offset = part.fetch_offset
            if offset in (OFFSET_STORED, OFFSET_INVALID):
                committed = self._committed_offset(part)
                if committed is None:                 # pending in an open transaction
                    part.retry_at = time.monotonic() + UNSTABLE_RETRY_S
                    return False
                if committed >= 0:
                    part.fetch_offset = part.committed = committed
                    return True
                offset = self._reset_offset(part, "no committed offset")
                if offset is None:
                    return False
            target = self._target(part)
            if offset == OFFSET_BEGINNING:
                part.fetch_offset = target.log_start_offset
            elif offset == OFFSET_END:
                part.fetch_offset = self._end_offset(target)
            else:
                part.fetch_offset = offset
            return True
        except LogstoreError as exc:
            part.retry_at = time.monotonic() + UNSTABLE_RETRY_S
            self._events.append(_event(part.topic, part.partition, OFFSET_INVALID,
                                       error_from_exception(exc)))
            return False

    def _committed_offset(self, part: _Partition) -> int | None:
        """The group's committed offset (-1: none; None: unstable, retry)."""
        found = self._broker.group_coordinator.fetch_offsets(
            self._group_id, [part.key], require_stable=self._committed_only)[part.key]
        if isinstance(found, txn_errors.UnstableOffsetCommit):
            return None
        if isinstance(found, Exception):
            raise found
        return found.offset

    def _reset_offset(self, part: _Partition, why: str) -> int | None:
        """auto.offset.reset: OFFSET_BEGINNING / OFFSET_END, or None after queueing the
        _AUTO_OFFSET_RESET error (the partition then waits for a seek)."""
        if self._reset == "earliest":
            return OFFSET_BEGINNING
        if self._reset == "latest":
            return OFFSET_END
        part.stopped = True
        self._events.append(_event(part.topic, part.partition, part.fetch_offset, KafkaError(
            KafkaError._AUTO_OFFSET_RESET, f"{part.topic} [{part.partition}]: {why} and "
            "auto.offset.reset=error")))
        return None

    def _out_of_range(self, part: _Partition, exc: Exception) -> Message | None:
        offset = self._reset_offset(
            part, f"fetch failed due to requested offset not available on the broker: "
                  f"Broker: Offset out of range ({exc})")
        if offset is None:
            return self._events.popleft() if self._events else None
        part.fetch_offset = offset
        self._resolve(part)
        return None

    # -- events and rebalances --------------------------------------------------------------

    def _serve_events(self) -> Message | None:
        """Group events (rebalance callbacks run here), commit callbacks, then the first
        queued error event."""
        member = self._member
        while member is not None and member.events:
            event = member.events.popleft()
            if event.kind == ASSIGN:
                self._rebalance(event.partitions)
            elif event.kind in (REVOKE, LOST):
                self._revoke(event.kind == LOST)
            elif event.kind == ERROR:
                self._events.append(_event(None, None, None, event.error))
        while self._commit_results:
            error, partitions = self._commit_results.popleft()
            if self._on_commit is not None:
                self._on_commit(error, partitions)
        return self._events.popleft() if self._events else None

    def _rebalance(self, partitions) -> None:
        assigned = [TopicPartition(topic, partition) for topic, partition in partitions]
        self._rebalance_assigned = False
        on_assign = self._callbacks[0]
        if on_assign is not None:
            on_assign(self, assigned)
        if not self._rebalance_assigned:
            self._assign(assigned)

    def _revoke(self, lost: bool) -> None:
        """Give up the assignment (commit first unless it is lost); tell the member."""
        try:
            current = self.assignment()
            if not lost and self._auto_commit:
                self._commit_stored(asynchronous=True)
            on_assign, on_revoke, on_lost = self._callbacks
            callback = on_lost if lost and on_lost is not None else on_revoke
            self._rebalance_assigned = False
            if callback is not None:
                callback(self, current)
        finally:
            if not self._rebalance_assigned:
                self._unassign()
            if self._member is not None:
                self._member.revoked()

    def subscribe(self, topics, on_assign=None, on_revoke=None, on_lost=None) -> None:
        """Join the group with this subscription (names, or "^regex" patterns)."""
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise TypeError("expected list of topic unicode strings")
        for callback in (on_assign, on_revoke, on_lost):
            if callback is not None and not callable(callback):
                raise TypeError("expected callable for rebalance callbacks")
        with self._lock:
            self._check_open()
            self._callbacks = (on_assign, on_revoke, on_lost)
            if self._member is not None:
                self._member.resubscribe(topics)
                return
            self._member = GroupMember(self, topics)
            self._member.start()

    def unsubscribe(self) -> None:
        """Leave the group: on_revoke runs now (with an automatic commit first)."""
        with self._lock:
            self._check_open()
            self._leave()

    def _leave(self) -> None:
        member = self._member
        if member is None:
            return
        self._settle()
        if self._parts:
            self._revoke(False)
        self._member = None
        member.stop(leave=True)

    # -- assignment -------------------------------------------------------------------------

    def assign(self, partitions) -> None:
        """Replace the assignment; each TopicPartition's offset says where to start."""
        with self._lock:
            self._check_open()
            self._assign(list(partitions))

    def _assign(self, partitions) -> None:
        self._rebalance_assigned = True
        self._unassign()
        self._add(partitions)

    def _add(self, partitions) -> None:
        for tp in partitions:
            if not isinstance(tp, TopicPartition):
                raise TypeError(f"expected list of TopicPartition, not {type(tp).__name__}")
            key = (tp.topic, tp.partition)
            if key in self._parts:
                raise kafka_exception(KafkaError._INVALID_ARG, f"{tp.topic} "
                                      f"[{tp.partition}] is already assigned")
            part = _Partition(tp.topic, tp.partition, tp.offset)
            if tp.offset >= 0:
                part.app_position = tp.offset
            self._parts[key] = part
            self._order.append(part)

    def unassign(self) -> None:
        with self._lock:
            self._check_open()
            self._rebalance_assigned = True
            self._unassign()

    def _unassign(self) -> None:
        self._discard()
        self._parts.clear()
        self._order = []
        self._turn = 0

    def incremental_assign(self, partitions) -> None:
        with self._lock:
            self._check_open()
            self._rebalance_assigned = True
            self._add(list(partitions))

    def incremental_unassign(self, partitions) -> None:
        with self._lock:
            self._check_open()
            self._rebalance_assigned = True
            for tp in partitions:
                part = self._parts.pop((tp.topic, tp.partition), None)
                if part is None:
                    raise kafka_exception(KafkaError._INVALID_ARG, f"{tp.topic} "
                                          f"[{tp.partition}] is not assigned")
                self._discard(part)
                self._order.remove(part)

    def assignment(self) -> list[TopicPartition]:
        with self._lock:
            self._check_open()
            return [TopicPartition(p.topic, p.partition) for p in self._order]

    def _part(self, tp: TopicPartition) -> _Partition:
        part = self._parts.get((tp.topic, tp.partition))
        if part is None:
            raise kafka_exception(KafkaError._UNKNOWN_PARTITION, f"{tp.topic} "
                                  f"[{tp.partition}] is not assigned to this consumer")
        return part

    # -- offsets ----------------------------------------------------------------------------

    def commit(self, message: Message | None = None, offsets=None, asynchronous: bool = True):
        """Commit `message`'s offset + 1, the given `offsets`, or the stored offsets of the
        assignment. Synchronous: returns the committed TopicPartitions (per-partition errors
        in .error) or raises; asynchronous: the result goes to on_commit from poll()."""
        with self._lock:
            self._check_open()
            self._settle()
            if message is not None:
                if message.error() is not None:
                    raise kafka_exception(KafkaError._INVALID_ARG,
                                          "Cannot commit offsets for message with error")
                wanted = {(message.topic(), message.partition()):
                          (message.offset() + 1, None, message.leader_epoch())}
            elif offsets is not None:
                wanted = {(tp.topic, tp.partition): (tp.offset, tp.metadata, tp.leader_epoch)
                          for tp in offsets if tp.offset >= 0}
            else:
                return self._commit_stored(asynchronous, silent_empty=False)
            return self._commit(wanted, asynchronous)

    def _maybe_auto_commit(self) -> None:
        """enable.auto.commit: the stored offsets every auto.commit.interval.ms."""
        if not self._auto_commit or not self._parts:
            return
        now = time.monotonic()
        if now - self._last_auto_commit >= self._auto_commit_s:
            self._last_auto_commit = now
            self._commit_stored(asynchronous=True)

    def _commit_stored(self, asynchronous: bool, silent_empty: bool = True):
        """Commit the stored offsets that moved since the last commit."""
        wanted = {p.key: (p.stored, None, None) for p in self._order
                  if p.stored >= 0 and p.stored != p.committed}
        if not wanted and silent_empty:
            return None if asynchronous else []
        return self._commit(wanted, asynchronous)

    def _commit(self, wanted: dict, asynchronous: bool):
        from txn.group_coordinator import OffsetAndMetadata
        try:
            if not wanted:
                raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
            generation, member_id, instance_id = self._identity()
            results = self._broker.group_coordinator.commit_offsets(
                self._group_id, generation, member_id,
                {key: OffsetAndMetadata(offset, -1 if epoch is None else epoch, metadata or "")
                 for key, (offset, metadata, epoch) in wanted.items()}, instance_id)
        except (LogstoreError, KafkaException) as exc:
            error = error_from_exception(exc)
            if not asynchronous:
                raise KafkaException(error) from None
            self._commit_results.append((error, _results(wanted, {}, error)))
            return None
        for key, (offset, _metadata, _epoch) in wanted.items():
            part = self._parts.get(key)
            if part is not None and results.get(key) is None:
                part.committed = offset
        committed = _results(wanted, results, None)
        if asynchronous:
            self._commit_results.append((None, committed))
            return None
        return committed

    def _identity(self) -> tuple[int, str, str | None]:
        member = self._member
        if member is None:
            return -1, "", None
        return member.generation, member.member_id, member.instance_id

    def committed(self, partitions, timeout: float = -1) -> list[TopicPartition]:
        """The group's committed offsets (OFFSET_INVALID when none); a read_committed
        consumer waits while an open transaction holds one (UNSTABLE_OFFSET_COMMIT)."""
        self._check_open()
        keys = [(tp.topic, tp.partition) for tp in partitions]
        deadline = deadline_after(timeout)
        while True:
            try:
                found = self._broker.group_coordinator.fetch_offsets(
                    self._group_id, keys, require_stable=self._committed_only)
            except LogstoreError as exc:
                raise KafkaException(error_from_exception(exc)) from None
            unstable = [v for v in found.values()
                        if isinstance(v, txn_errors.UnstableOffsetCommit)]
            if not unstable:
                break
            left = time_left(deadline)
            if left is not None and left <= 0:
                raise kafka_exception(KafkaError._TIMED_OUT, f"committed() timed out: "
                                      f"{unstable[0]}")
            time.sleep(UNSTABLE_RETRY_S if left is None else min(left, UNSTABLE_RETRY_S))
        out = []
        for topic, partition in keys:
            value = found[(topic, partition)]
            if isinstance(value, Exception):
                out.append(TopicPartition._result(topic, partition,
                                                  error=error_from_exception(value)))
                continue
            out.append(TopicPartition._result(
                topic, partition, value.offset if value.offset >= 0 else OFFSET_INVALID,
                value.metadata or None, value.leader_epoch if value.leader_epoch >= 0
                else None))
        return out

    def position(self, partitions) -> list[TopicPartition]:
        """The offset after the last message the application got (OFFSET_INVALID before
        the first one or a seek)."""
        with self._lock:
            self._check_open()
            self._settle()
            out = []
            for tp in partitions:
                part = self._parts.get((tp.topic, tp.partition))
                offset = part.app_position if part is not None else OFFSET_INVALID
                out.append(TopicPartition._result(tp.topic, tp.partition, offset))
            return out

    def store_offsets(self, message: Message | None = None, offsets=None) -> None:
        """Store offsets for the next (automatic) commit; enable.auto.offset.store=false."""
        with self._lock:
            self._check_open()
            if self._auto_store:
                raise kafka_exception(KafkaError._INVALID_ARG, "store_offsets() requires "
                                      "enable.auto.offset.store=false")
            if message is not None:
                wanted = [TopicPartition(message.topic(), message.partition(),
                                         message.offset() + 1)]
            else:
                wanted = list(offsets or ())
            for tp in wanted:
                part = self._parts.get((tp.topic, tp.partition))
                if part is None:
                    raise kafka_exception(KafkaError._STATE, f"{tp.topic} [{tp.partition}] "
                                          "is not assigned: its offset cannot be stored")
                part.stored = tp.offset

    def seek(self, partition: TopicPartition) -> None:
        """Fetch `partition` from partition.offset (an offset, OFFSET_BEGINNING or
        OFFSET_END) next."""
        with self._lock:
            self._check_open()
            part = self._part(partition)
            self._discard(part)
            part.fetch_offset = partition.offset
            part.app_position = partition.offset if partition.offset >= 0 else OFFSET_INVALID
            part.stopped = part.eof_sent = False
            part.retry_at = 0.0

    def pause(self, partitions) -> None:
        with self._lock:
            self._check_open()
            for tp in partitions:
                part = self._part(tp)
                self._discard(part)
                part.paused = True

    def resume(self, partitions) -> None:
        with self._lock:
            self._check_open()
            for tp in partitions:
                self._part(tp).paused = False

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = -1,
                              cached: bool = False):
        """(low, high): the log start offset and the high watermark (the last stable offset
        for read_committed consumers, as a ListOffsets with that isolation answers)."""
        self._check_open()
        try:
            target = self._broker.partition(partition.topic, partition.partition)
            return target.log_start_offset, self._end_offset(target)
        except LogstoreError as exc:
            raise KafkaException(error_from_exception(exc)) from None

    def offsets_for_times(self, partitions, timeout: float = -1) -> list[TopicPartition]:
        """Per partition, the first offset whose timestamp >= partition.offset (a time in
        ms), or OFFSET_END (-1) when there is none."""
        self._check_open()
        out = []
        for tp in partitions:
            try:
                log = self._broker.partition(tp.topic, tp.partition).log
                found = log.offset_for_timestamp(tp.offset)
            except LogstoreError as exc:
                out.append(TopicPartition._result(tp.topic, tp.partition,
                                                  error=error_from_exception(exc)))
                continue
            offset = OFFSET_END if found is None else found[0]
            out.append(TopicPartition._result(tp.topic, tp.partition, offset))
        return out

    # -- metadata ---------------------------------------------------------------------------

    def list_topics(self, topic: str | None = None, timeout: float = -1):
        from txn.metadata import cluster_metadata
        self._check_open()
        return cluster_metadata(self._broker, topic)

    def cluster_id(self, timeout: float = -1) -> str:
        return self._broker.store.cluster_id

    def consumer_group_metadata(self) -> ConsumerGroupMetadata:
        generation, member_id, instance_id = self._identity()
        return ConsumerGroupMetadata(self._group_id, generation, member_id, instance_id)

    def memberid(self) -> str | None:
        member = self._member
        return member.member_id if member is not None and member.member_id else None

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted for compatibility; the embedded store has no authentication."""

    # -- close ------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit (enable.auto.commit), revoke (on_revoke runs), leave the group, release the
        engine. Further calls raise RuntimeError("Consumer closed")."""
        with self._lock:
            if self._closed:
                return
            try:
                self._settle()
                if self._member is not None:
                    self._leave()
                elif self._auto_commit and self._parts:
                    self._commit_stored(asynchronous=True)
                self._unassign()
            finally:
                self._closed = True
                self._broker.release()

    def __enter__(self) -> Consumer:
        return self

    def __del__(self):
        """A consumer dropped without close(): leave the group and release the engine (no
        commit, no callbacks)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            if self._member is not None:
                self._member.stop(leave=True)
            self._broker.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.close()


def _results(wanted: dict, results: dict, error: KafkaError | None) -> list[TopicPartition]:
    out = []
    for (topic, partition), (offset, metadata, epoch) in wanted.items():
        failure = results.get((topic, partition))
        out.append(TopicPartition._result(
            topic, partition, offset, metadata, epoch,
            error if error is not None else
            (None if failure is None else error_from_exception(failure))))
    return out
