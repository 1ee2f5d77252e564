"""A history checker for transactional queues, after Jepsen's Kafka workload and Elle.

Clients record what they did; the checker reports what no correct Kafka may show. Every value
written is unique, so one read reveals where a write landed.

Recording (thread-safe; `time` is a monotonic counter taken at each call):

    h = History()
    w = h.send(process, value, topic, partition, txn=t)    # invoke; returns the write
    h.send_ok(w, offset) / h.send_failed(w) / h.send_unknown(w)
    t = h.begin(process)                                   # a transaction
    h.commit_invoke(t); h.commit_ok(t) / h.abort(t) / h.txn_unknown(t)
    h.poll(process, isolation, [(topic, partition, offset, value), ...], session=s)

Anomalies (names as in Jepsen's Kafka checker where it has one):

    G1a                   a read_committed poll returned a value whose transaction aborted, or
                          whose non-transactional send failed
    dirty-read            a read_committed poll returned a value of a transaction before that
                          transaction's commit was even invoked (a read past the LSO)
    lost-write            a committed, acknowledged write at or below the highest offset read
                          (read_committed) on its partition was never read by anyone
    duplicate             one value at more than one offset
    inconsistent-offsets  two values read at one offset
    offset-mismatch       a value read at an offset other than the one its send acknowledged
    nonmonotonic-poll     within one consumer session, a partition's offsets went backwards or
                          repeated (sessions restart on rebalance, seek or reopen)

`check()` returns a CheckResult: `valid` and, per anomaly, plain-language examples.
Kafka allows G0 (write cycles) and skips across rebalances, so those are not anomalies here.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from dataclasses import dataclass, field

OK, FAIL, INFO, PENDING = "ok", "fail", "info", "pending"
READ_COMMITTED = "read_committed"
EXAMPLES_MAX = 10


@dataclass
class Txn:
    id: int
    process: str
    outcome: str = PENDING          # ok = committed, fail = aborted, info = unknown
    commit_invoked_at: int | None = None
    writes: list = field(default_factory=list)


@dataclass
class Write:
    id: int
    process: str
    value: bytes
    topic: str
    partition: int
    txn: Txn | None
    invoked_at: int
    outcome: str = PENDING
    offset: int | None = None


@dataclass
class Poll:
    process: str
    session: object
    isolation: str
    records: list
    at: int


@dataclass
class CheckResult:
    valid: bool
    anomalies: dict[str, list[str]]
    counts: dict[str, int]

    def __str__(self) -> str:
        if self.valid:
            return "valid: " + ", ".join(f"{k}={v}" for k, v in self.counts.items())
        lines = [f"{name}: {len(ex)} example(s)" for name, ex in self.anomalies.items()]
        for name, examples in self.anomalies.items():
            lines += [f"  {name}: {e}" for e in examples[:EXAMPLES_MAX]]
        return "\n".join(lines)


class History:
    def __init__(self):
        self._lock = threading.Lock()
        self._clock = itertools.count()
        self._ids = itertools.count()
        self.writes: list[Write] = []
        self.txns: list[Txn] = []
        self.polls: list[Poll] = []

    # -- recording --------------------------------------------------------------------------

    def begin(self, process: str) -> Txn:
        with self._lock:
            txn = Txn(next(self._ids), process)
            self.txns.append(txn)
            return txn

    def send(self, process: str, value: bytes, topic: str, partition: int,
             txn: Txn | None = None) -> Write:
        with self._lock:
            write = Write(next(self._ids), process, value, topic, partition, txn,
                          next(self._clock))
            self.writes.append(write)
            if txn is not None:
                txn.writes.append(write)
            return write

    def send_ok(self, write: Write, offset: int, partition: int | None = None) -> None:
        with self._lock:
            write.outcome, write.offset = OK, offset
            if partition is not None:
                write.partition = partition

    def send_failed(self, write: Write) -> None:
        with self._lock:
            write.outcome = FAIL

    def send_unknown(self, write: Write) -> None:
        with self._lock:
            write.outcome = INFO

    def commit_invoke(self, txn: Txn) -> None:
        with self._lock:
            txn.commit_invoked_at = next(self._clock)

    def commit_ok(self, txn: Txn) -> None:
        with self._lock:
            txn.outcome = OK

    def abort(self, txn: Txn) -> None:
        with self._lock:
            txn.outcome = FAIL

    def txn_unknown(self, txn: Txn) -> None:
        with self._lock:
            txn.outcome = INFO

    def poll(self, process: str, isolation: str, records, session: object = None) -> None:
        """records: iterable of (topic, partition, offset, value)."""
        with self._lock:
            self.polls.append(Poll(process, session if session is not None else process,
                                   isolation, list(records), next(self._clock)))

    # -- checking ---------------------------------------------------------------------------

    def check(self) -> CheckResult:
        with self._lock:
            anomalies: dict[str, list[str]] = defaultdict(list)
            by_value = {w.value: w for w in self.writes}
            reads = self._reads(anomalies)
            self._check_reads(reads, by_value, anomalies)
            self._check_lost(reads, anomalies)
            self._check_monotonic(anomalies)
            counts = {"writes": len(self.writes), "txns": len(self.txns),
                      "polls": len(self.polls),
                      "records_read": sum(len(p.records) for p in self.polls)}
            return CheckResult(not anomalies, dict(anomalies), counts)

    def _reads(self, anomalies) -> dict[bytes, set[tuple[str, int, int]]]:
        """value -> every (topic, partition, offset) it was read at; and inconsistent offsets."""
        where: dict[bytes, set[tuple[str, int, int]]] = defaultdict(set)
        at_offset: dict[tuple[str, int, int], bytes] = {}
        for poll in self.polls:
            for topic, partition, offset, value in poll.records:
                where[value].add((topic, partition, offset))
                key = (topic, partition, offset)
                seen = at_offset.setdefault(key, value)
                if seen != value:
                    anomalies["inconsistent-offsets"].append(
                        f"{topic}-{partition} offset {offset} held {seen!r} and {value!r}")
        for value, places in where.items():
            if len(places) > 1:
                anomalies["duplicate"].append(f"{value!r} read at {sorted(places)}")
        return where

    def _check_reads(self, reads, by_value, anomalies) -> None:
        for poll in self.polls:
            committed = poll.isolation == READ_COMMITTED
            for topic, partition, offset, value in poll.records:
                write = by_value.get(value)
                if write is None:
                    continue
                if write.offset is not None and write.offset != offset:
                    anomalies["offset-mismatch"].append(
                        f"{value!r} acknowledged at {write.offset}, read at {offset}")
                if not committed:
                    continue
                txn = write.txn
                if txn is None and write.outcome == FAIL:
                    anomalies["G1a"].append(f"{poll.process} read {value!r} whose send failed")
                if txn is not None and txn.outcome == FAIL:
                    anomalies["G1a"].append(
                        f"{poll.process} read {value!r} at {topic}-{partition}@{offset}, "
                        f"written by aborted txn {txn.id} of {txn.process}")
                if txn is not None and txn.outcome != FAIL and (
                        txn.commit_invoked_at is None or txn.commit_invoked_at > poll.at):
                    anomalies["dirty-read"].append(
                        f"{poll.process} read {value!r} of txn {txn.id} before its commit "
                        "was invoked")

    def _check_lost(self, reads, anomalies) -> None:
        highest: dict[tuple[str, int], int] = {}
        for poll in self.polls:
            if poll.isolation != READ_COMMITTED:
                continue
            for topic, partition, offset, _ in poll.records:
                key = (topic, partition)
                highest[key] = max(highest.get(key, -1), offset)
        for write in self.writes:
            durable = write.outcome == OK and (write.txn is None or write.txn.outcome == OK)
            if not durable or write.offset is None:
                continue
            top = highest.get((write.topic, write.partition))
            if top is not None and write.offset <= top and write.value not in reads:
                anomalies["lost-write"].append(
                    f"{write.value!r} acknowledged at {write.topic}-{write.partition}@"
                    f"{write.offset} (<= highest read {top}) was never read")

    def _check_monotonic(self, anomalies) -> None:
        last: dict[tuple[object, str, int], int] = {}
        for poll in sorted(self.polls, key=lambda p: p.at):
            for topic, partition, offset, value in poll.records:
                key = (poll.session, topic, partition)
                previous = last.get(key)
                if previous is not None and offset <= previous:
                    anomalies["nonmonotonic-poll"].append(
                        f"session {poll.session!r} read {topic}-{partition}@{offset} after "
                        f"@{previous}")
                last[key] = offset
