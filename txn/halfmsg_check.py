"""`TransactionCheckService`: the check-back of one producer group's half messages
(RocketMQ's TransactionalMessageCheckService and TransactionalMessageServiceImpl.check).

The ledger. The service reads `RMQ_SYS_TRANS_OP_HALF_TOPIC` and `RMQ_SYS_TRANS_HALF_TOPIC`
(partition 0 of each, read_committed, with two assign-only consumers of the group
`CID_RMQ_SYS_TRANS-<producer group>`) into a `HalfLedger`:

    pending  {half offset: the latest copy of a message of this group with no op record}
    done     {half offset: (latest copy offset, op record offset)}

A message is done iff a committed op record names its half offset (the first copy's offset;
re-appended copies carry it in TRAN_PREPARED_QUEUE_OFFSET). Every copy of a message is written
before its op record, so each scan reads the op topic first and then the half topic to its
end, and only then applies the ops: every copy an op refers to has been seen. An op naming an
offset that is neither pending nor done is another group's (or was pruned) and is ignored.

Open transactions. A read_committed reader stops at the op topic's last stable offset. The op
scan holds the producer's end lock, so no end of this group is open meanwhile, and after a
reopen none is left (init_transactions finished or aborted it). Another group's open
transaction (its process crashed mid-end; it lasts until that group reopens or its
transaction.timeout.ms passes) can still hide this group's later op records: a message could
then look undecided although it was ended, and checking it could end it twice. So a round
whose op scan stopped below the high watermark checks nothing and retries later.

The rules of one round, `run_once(now_ms)` (RocketMQ's, per message instead of per wake-up):
  - a pending message is due when it is older than its immunity, max(check timeout,
    CHECK_IMMUNITY_TIME_IN_SECONDS), strictly, as RocketMQ compares, and, once checked, when
    its last check began at least `check_interval_ms` ago;
  - a due message with TRANSACTION_CHECK_TIMES >= check_max is discarded: copied to
    TRANS_CHECK_MAX_TIME_TOPIC with its op record (one Kafka transaction), and a warning;
  - any other due message is re-appended with the counter plus one and the check time
    (putBackHalfMsgQueue; fsynced, so a crash never loses a check), then
    `check_local_transaction` is asked and COMMIT / ROLLBACK are ended as the producer ends
    them; UNKNOW leaves it pending;
  - messages whose execute_local_transaction is still running in this process are skipped
    (RocketMQ's broker cannot know; this producer can).
With the defaults a message with no answer is checked 15 times, at 6 s and then every 30 s,
and discarded at the 16th due time.

The checkpoint. After a round the service commits (X, Y) for the group: X = the lowest offset
of a pending message's latest copy (or the half topic's read position), Y = the lowest op
offset of a done message whose latest copy is at or above X (or the op topic's read position,
or the first op read but not yet applied). A reopened service starts reading there: below X
every message is done, and every op it may still need is at or above Y. Done entries below X
are dropped from memory.

Thread-safety: `run_once` and `scan` are serialised by `_round_lock`; the ledger has its own
lock (the producer marks messages done from its sending threads). The background thread
(`start`) calls run_once with the producer's clock, sleeping until the next message is due
(at most one check interval), and listener.check_local_transaction runs on it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from txn import failpoints
from txn.halfmsg import (CHECK_GROUP_PREFIX, CHECK_MAX_TIME_TOPIC, FLUSH_TIMEOUT_S, HALF_TOPIC,
                         NEVER, OP_HALF_TOPIC, HalfMessage, LocalTransactionState,
                         decode_op_body)
from txn.kafka_error import KafkaError, KafkaException
from txn.message import TopicPartition

logger = logging.getLogger("txn.halfmsg_check")

FP_AFTER_PUT_BACK = "halfmsg_check.after_put_back"
SCAN_RECORDS_MAX = 100_000          # records read from one topic in one scan
WAIT_MIN_MS = 10                    # the background thread's shortest sleep
BLOCKED_RETRY_MS = 1_000            # a round blocked by an open op transaction retries then


@dataclass
class CheckRound:
    """What one run_once did. `checked`: copies re-appended and asked; the others list the
    messages by outcome (`failed`: an end or re-append that could not be written).
    `blocked`: nothing was checked because the op topic has an open transaction."""

    now_ms: int
    checked: list = field(default_factory=list)
    committed: list = field(default_factory=list)
    rolled_back: list = field(default_factory=list)
    unknown: list = field(default_factory=list)
    discarded: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    next_due_ms: int | None = None
    blocked: bool = False


@dataclass(frozen=True)
class CheckPolicy:
    """The timing rules (module doc)."""

    check_timeout_ms: int
    check_interval_ms: int
    check_max: int

    def __post_init__(self):
        for name, low in (("check_timeout_ms", 0), ("check_interval_ms", 1),
                          ("check_max", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

    def immunity_ms(self, half: HalfMessage) -> int:
        if half.check_immunity_s is None:
            return self.check_timeout_ms
        return max(self.check_timeout_ms, half.check_immunity_s * 1000)

    def due_at(self, half: HalfMessage) -> int:
        """The first time (ms) at which `half` may be checked (or discarded)."""
        first = half.born_ms + self.immunity_ms(half) + 1      # strictly older than
        if half.check_times == 0 or half.check_ms == NEVER:
            return first
        return max(first, half.check_ms + self.check_interval_ms)


class HalfLedger:
    """Pending and done messages of one producer group (module doc)."""

    def __init__(self, producer_group: str):
        self.producer_group = producer_group
        self._lock = threading.Lock()
        self._pending: dict[int, HalfMessage] = {}
        self._done: dict[int, tuple[int, int]] = {}

    def add_copy(self, half: HalfMessage) -> None:
        if half.producer_group != self.producer_group:
            return
        with self._lock:
            if half.half_offset in self._done:
                return
            current = self._pending.get(half.half_offset)
            if current is None or half.copy_offset > current.copy_offset:
                self._pending[half.half_offset] = half

    def add_op(self, half_offset: int, op_offset: int) -> None:
        with self._lock:
            latest = self._pending.pop(half_offset, None)
            if latest is not None and half_offset not in self._done:
                self._done[half_offset] = (latest.copy_offset, op_offset)

    def mark_done(self, half: HalfMessage, op_offset: int) -> None:
        """The producer ended `half` (its latest copy) with the op record at op_offset."""
        assert half.half_offset >= 0 and op_offset >= 0, (half, op_offset)
        with self._lock:
            latest = self._pending.pop(half.half_offset, None)
            copy = max(half.copy_offset, latest.copy_offset if latest else NEVER)
            assert copy >= half.half_offset, (half, latest)
            self._done[half.half_offset] = (copy, op_offset)

    def is_done(self, half_offset: int) -> bool:
        with self._lock:
            return half_offset in self._done

    def pending(self) -> list[HalfMessage]:
        with self._lock:
            return sorted(self._pending.values(), key=lambda h: h.half_offset)

    def checkpoint(self, half_position: int, op_position: int) -> tuple[int, int]:
        """(X, Y) as the module doc defines them; done entries below X are dropped."""
        with self._lock:
            low = min([h.copy_offset for h in self._pending.values()] + [half_position])
            ops = [op for copy, op in self._done.values() if copy >= low]
            for half_offset in [k for k, (copy, _op) in self._done.items() if copy < low]:
                del self._done[half_offset]
            checkpoint = low, min(ops + [op_position])
        assert checkpoint[0] <= half_position and checkpoint[1] <= op_position, checkpoint
        return checkpoint


class TransactionCheckService:
    """The check-back of `producer`'s group (a txn.halfmsg.TransactionProducer)."""

    def __init__(self, producer, *, check_timeout_ms: int, check_interval_ms: int,
                 check_max: int, clock):
        self.policy = CheckPolicy(check_timeout_ms, check_interval_ms, check_max)
        self.group_id = CHECK_GROUP_PREFIX + producer.producer_group
        self.ledger = HalfLedger(producer.producer_group)
        self._producer = producer
        self._clock = clock
        self._round_lock = threading.RLock()
        self._half_reader = self._op_reader = None
        self._half_position = self._op_position = 0
        self._op_backlog: list[tuple[int, int]] = []        # (half offset, op offset)
        self._committed: tuple[int, int] | None = None
        self.op_stable = False              # the last op scan reached the high watermark
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake = threading.Event()

    # -- reading ----------------------------------------------------------------------------

    def load(self) -> None:
        """Open the readers at the group's checkpoint (else the start) and catch up."""
        from txn.consumer import Consumer
        conf = self._producer.client_config(**{
            "group.id": self.group_id, "isolation.level": "read_committed",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": True, "auto.offset.reset": "earliest"})
        self._half_reader, self._op_reader = Consumer(conf), Consumer(conf)
        starts = {}
        for tp in self._op_reader.committed([TopicPartition(HALF_TOPIC, 0),
                                             TopicPartition(OP_HALF_TOPIC, 0)],
                                            timeout=FLUSH_TIMEOUT_S):
            low, _high = self._op_reader.get_watermark_offsets(tp)
            starts[tp.topic] = max(tp.offset, low)
        self._half_position, self._op_position = starts[HALF_TOPIC], starts[OP_HALF_TOPIC]
        self._committed = (self._half_position, self._op_position)
        self._half_reader.assign([TopicPartition(HALF_TOPIC, 0, self._half_position)])
        self._op_reader.assign([TopicPartition(OP_HALF_TOPIC, 0, self._op_position)])
        logger.info("check service of %s resumes at half offset %d, op offset %d",
                    self.ledger.producer_group, self._half_position, self._op_position)
        self.scan()

    def scan(self) -> None:
        """Read new op records, then the half topic to its end; apply the ops."""
        with self._round_lock:
            with self._producer.end_lock:       # no end of this group is half-written now
                ops, self._op_position = _drain(self._op_reader, self._op_position)
                self.op_stable = self._op_position >= self._producer.op_high_watermark()
            for record in ops:
                for half_offset in decode_op_body(record.value()):
                    self._op_backlog.append((half_offset, record.offset()))
            copies, self._half_position, complete = _drain_all(self._half_reader,
                                                               self._half_position)
            for record in copies:
                half = HalfMessage.from_record(record)
                if half is not None:
                    self.ledger.add_copy(half)
            if complete:
                for half_offset, op_offset in self._op_backlog:
                    self.ledger.add_op(half_offset, op_offset)
                self._op_backlog = []

    def pending(self) -> list[HalfMessage]:
        """Messages of this group without an outcome (after a scan; while the op topic has
        an open transaction, messages ended after it may still be listed)."""
        self.scan()
        return self.ledger.pending()

    # -- rounds -----------------------------------------------------------------------------

    def run_once(self, now_ms: int | None = None) -> CheckRound:
        """One round at now_ms (default: the producer's clock): scan, check or discard every
        due message, commit the checkpoint."""
        with self._round_lock:
            now = self._clock() if now_ms is None else now_ms
            report = CheckRound(now)
            self.scan()
            if not self.op_stable:
                logger.info("%s has an open transaction: checks of %s wait",
                            OP_HALF_TOPIC, self.ledger.producer_group)
                report.blocked = True
                report.next_due_ms = now + BLOCKED_RETRY_MS
                return report
            skip = self._producer.in_flight()
            for half in self.ledger.pending():
                if half.transaction_id not in skip and self.policy.due_at(half) <= now:
                    self._check(half, now, report)
            report.next_due_ms = self.next_due_ms()
            self._commit_checkpoint()
            return report

    def next_due_ms(self) -> int | None:
        skip = self._producer.in_flight()
        times = [self.policy.due_at(h) for h in self.ledger.pending()
                 if h.transaction_id not in skip]
        return min(times) if times else None

    def _check(self, half: HalfMessage, now: int, report: CheckRound) -> None:
        if half.check_times >= self.policy.check_max:
            self._discard(half, report)
            return
        try:
            copy = self._producer.put_back(half, now)
        except KafkaException as exc:
            logger.warning("re-appending half message %d failed: %s", half.half_offset, exc)
            report.failed.append(half)
            return
        self.ledger.add_copy(copy)
        failpoints.hit(FP_AFTER_PUT_BACK)
        report.checked.append(copy)
        state = self._producer.check(copy)
        if state is LocalTransactionState.UNKNOW:
            report.unknown.append(copy)
            return
        try:
            end = self._producer.end_transaction(copy, state)
        except KafkaException:
            report.failed.append(copy)
            return
        if end is not None:
            committed = state is LocalTransactionState.COMMIT_MESSAGE
            (report.committed if committed else report.rolled_back).append(copy)

    def _discard(self, half: HalfMessage, report: CheckRound) -> None:
        try:
            end = self._producer.discard(half)
        except KafkaException:
            report.failed.append(half)
            return
        if end is None:
            return
        report.discarded.append(half)
        logger.warning(
            "half message %d (transaction %s, producer group %s, for %s-%d) had no outcome "
            "after %d checks: moved to %s at offset %d", half.half_offset,
            half.transaction_id, half.producer_group, half.topic, half.partition,
            half.check_times, CHECK_MAX_TIME_TOPIC, end.target_offset)

    def _commit_checkpoint(self) -> None:
        op_position = self._op_position
        if self._op_backlog:
            op_position = min(op_position, self._op_backlog[0][1])
        checkpoint = self.ledger.checkpoint(self._half_position, op_position)
        if checkpoint == self._committed:
            return
        half_offset, op_offset = checkpoint
        try:
            self._op_reader.commit(offsets=[TopicPartition(HALF_TOPIC, 0, half_offset),
                                            TopicPartition(OP_HALF_TOPIC, 0, op_offset)],
                                   asynchronous=False)
        except KafkaException as exc:
            logger.warning("committing the check-back checkpoint failed: %s", exc)
            return
        self._committed = checkpoint

    # -- the background thread --------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"halfmsg-check-{self.ledger.producer_group}")
        self._thread.start()

    def notify_half(self, half: HalfMessage) -> None:
        """A message was left without an outcome: wake the thread, which then sleeps until
        the first due time (this one's, or an earlier one)."""
        self._wake.set()

    def _run(self) -> None:
        interval = self.policy.check_interval_ms
        while not self._stopping:
            next_due = None
            try:
                next_due = self.run_once().next_due_ms
            except Exception:  # noqa: BLE001 - the service must outlive one failed round
                logger.exception("check-back round of %s failed", self.ledger.producer_group)
            now = self._clock()
            wait_ms = interval if next_due is None else min(interval,
                                                            max(next_due - now, WAIT_MIN_MS))
            self._wake.wait(wait_ms / 1000)
            self._wake.clear()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._round_lock:
            for reader in (self._half_reader, self._op_reader):
                if reader is not None:
                    reader.close()
            self._half_reader = self._op_reader = None


def _drain(reader, position: int) -> tuple[list, int]:
    records, position, _complete = _drain_all(reader, position)
    return records, position


def _drain_all(reader, position: int) -> tuple[list, int, bool]:
    """Records available now (up to SCAN_RECORDS_MAX), the next position, and whether the end
    (the last stable offset) was reached."""
    records = []
    while len(records) < SCAN_RECORDS_MAX:
        message = reader.poll(0)
        if message is None:
            return records, position, True
        error = message.error()
        if error is None:
            records.append(message)
            position = message.offset() + 1
        elif error.code() == KafkaError._PARTITION_EOF:
            return records, max(position, message.offset()), True
        else:
            raise KafkaException(error)
    return records, position, False
