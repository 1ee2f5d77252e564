"""One embedded Consumer's membership of a classic consumer group (librdkafka's cgrp).

A `GroupMember` runs on its own thread and talks to the Broker's GroupCoordinator with Kafka's
classic protocol and the consumer protocol's bytes (txn/consumer_protocol.py):

    join:   JoinGroup with one protocol per partition.assignment.strategy entry ("range",
            "roundrobin"), each carrying the Subscription of the member's topics; the leader
            runs the chosen assignor over every member's subscription (txn/assignors.py) and
            sends the assignments in SyncGroup; every member gets its own from SyncGroup.
    stable: heartbeats; a RebalanceInProgress answer (another member joined or left, or a
            subscribed topic changed) starts an eager rebalance: the member asks the consumer
            to revoke its partitions, waits until the application has done so (on_revoke runs
            from poll()), then joins again. UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION mean the
            assignment is lost (on_lost, else on_revoke) and the member joins afresh.
    leave:  LeaveGroup on close or unsubscribe (static members, group.instance.id, do not
            leave: KIP-345), so the others rebalance at once.

The member never calls the application: it queues events (`ASSIGN`, `REVOKE`, `LOST`,
`ERROR`) that the consumer serves from poll() on the application's thread, as librdkafka
serves rebalance callbacks, and it wakes a waiting poll() through broker.notify_data().

Embedded differences from librdkafka: heartbeats go out every
min(heartbeat.interval.ms, HEARTBEAT_MAX_MS) (an in-process call costs nothing and a rebalance
is noticed sooner); subscribed topics ("^regex" patterns included) and their partition counts
are re-read at each heartbeat, and a change makes the member rejoin (librdkafka does this on
its metadata refresh). max.poll.interval.ms is enforced from the consumer's progress
(`consumer._progress()`; the member holds the consumer weakly): past it the member leaves the
group and queues _MAX_POLL_EXCEEDED; the next poll() joins again.

Thread-safety: the member's thread owns the membership state; `events` is a deque (atomic
appends and pops); `revoked()` and `stop()` may be called from any thread.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import weakref
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout

from logstore.errors import LogstoreError
from txn import assignors
from txn import consumer_protocol as cp
from txn import errors as txn_errors
from txn.kafka_error import KafkaError

logger = logging.getLogger("txn.consumer")

ASSIGN = "assign"
REVOKE = "revoke"
LOST = "lost"
ERROR = "error"

HEARTBEAT_MAX_MS = 100
WAIT_SLICE_S = 0.05
RETRY_BACKOFF_S = 0.05
NO_GENERATION = -1
INTERNAL_PREFIX = "__"


class GroupEvent:
    __slots__ = ("kind", "partitions", "error")

    def __init__(self, kind: str, partitions=None, error: KafkaError | None = None):
        self.kind = kind
        self.partitions = partitions or []
        self.error = error


def resolve_topics(patterns: list[str], existing) -> list[str]:
    """Subscribed names: plain names as given, "^regex" patterns matched against the
    existing (non-internal) topics, as librdkafka does."""
    names = []
    for pattern in patterns:
        if pattern.startswith("^"):
            regex = re.compile(pattern)
            names += [t for t in existing if not t.startswith(INTERNAL_PREFIX)
                      and regex.match(t)]
        else:
            names.append(pattern)
    return sorted(set(names))


class GroupMember:
    """The background half of a subscribed Consumer (see the module doc)."""

    def __init__(self, consumer, topics: list[str]):
        cfg = consumer._config
        self._consumer = weakref.ref(consumer)    # a dropped Consumer is collected
        self.broker = consumer._broker
        self.coordinator = self.broker.group_coordinator
        self.group_id = cfg["group.id"]
        self.instance_id = cfg["group.instance.id"]
        self.client_id = cfg["client.id"]
        self.host = f"/{socket.gethostname()}"
        self.session_ms = cfg["session.timeout.ms"]
        self.rebalance_ms = cfg["max.poll.interval.ms"]
        self.heartbeat_s = min(cfg["heartbeat.interval.ms"], HEARTBEAT_MAX_MS) / 1000
        self.max_poll_s = cfg["max.poll.interval.ms"] / 1000
        self.strategies = list(cfg["partition.assignment.strategy"])
        self.patterns = list(topics)
        self.member_id = ""
        self.generation = NO_GENERATION
        self.events: deque[GroupEvent] = deque()
        self.in_group = False
        self.is_leader = False
        self._snapshot = None
        self._reported_missing: set[str] = set()
        self._revoked = threading.Event()
        self._stop = threading.Event()
        self._rejoin = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"txn-consumer-group-{self.group_id}")

    def start(self) -> None:
        self._thread.start()

    # -- called from the consumer -----------------------------------------------------------

    def revoked(self) -> None:
        """The application has given up its partitions (REVOKE / LOST served)."""
        self._revoked.set()

    def resubscribe(self, topics: list[str]) -> None:
        self.patterns = list(topics)
        self._rejoin.set()

    def request_rejoin(self) -> None:
        self._rejoin.set()

    def stop(self, leave: bool = True) -> None:
        self._stop.set()
        self._revoked.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        if leave and self.member_id and self.instance_id is None:
            try:
                self.coordinator.leave_group(self.group_id, [self.member_id])
            except LogstoreError as exc:
                logger.info("group %s: leave failed: %s", self.group_id, exc)
        self.in_group = False

    # -- the thread -------------------------------------------------------------------------

    def _post(self, event: GroupEvent) -> None:
        self.events.append(event)
        self.broker.notify_data()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                partitions = self._join()
                if partitions is None:
                    self._stop.wait(RETRY_BACKOFF_S)
                    continue
                self.in_group = True
                self._post(GroupEvent(ASSIGN, partitions))
                kind = self._stable()
                self.in_group = False
                if kind is not None:
                    self._give_up(kind)
        except Exception as exc:  # noqa: BLE001 - report to the application
            logger.exception("group %s: member thread failed", self.group_id)
            self._post(GroupEvent(ERROR, error=KafkaError(KafkaError._FAIL, str(exc))))

    def _give_up(self, kind: str) -> None:
        """Ask the application to revoke (or drop lost) partitions; wait until it has."""
        self._revoked.clear()
        self._post(GroupEvent(kind))
        while not self._revoked.wait(WAIT_SLICE_S):
            if self._stop.is_set():
                return

    def _await(self, future):
        while True:
            try:
                return future.result(WAIT_SLICE_S)
            except FutureTimeout:
                if self._stop.is_set():
                    future.cancel()
                    return None

    def _subscription(self) -> tuple[list[str], dict[str, int]]:
        """(subscribed topic names, {existing topic: partitions})."""
        existing = {name: info.partitions for name, info in self.broker.store.topics().items()}
        names = resolve_topics(self.patterns, existing)
        return names, {t: existing[t] for t in names if t in existing}

    def _report_missing(self, names: list[str], counts: dict[str, int]) -> None:
        for topic in names:
            if topic not in counts and topic not in self._reported_missing:
                self._reported_missing.add(topic)
                self._post(GroupEvent(ERROR, error=KafkaError(
                    KafkaError.UNKNOWN_TOPIC_OR_PART, f"Subscribed topic not available: "
                    f"{topic}: Broker: Unknown topic or partition")))

    def _join(self) -> list[tuple[str, int]] | None:
        """JoinGroup then SyncGroup; the member's partitions, or None (retry later)."""
        names, counts = self._subscription()
        self._report_missing(names, counts)
        self._snapshot = (names, counts)
        self._rejoin.clear()
        metadata = cp.encode_subscription(cp.Subscription(names))
        joined = self._await(self.coordinator.join_group(
            self.group_id, self.member_id, self.instance_id, self.client_id, self.host,
            self.session_ms, self.rebalance_ms, cp.PROTOCOL_TYPE,
            [(name, metadata) for name in self.strategies]))
        if joined is None or joined.error_code:
            if joined is not None:
                self._failed(joined.error_code, joined.member_id)
            return None
        self.member_id, self.generation = joined.member_id, joined.generation_id
        self.is_leader = joined.leader == joined.member_id
        assignments = self._assign(joined) if self.is_leader else {}
        synced = self._await(self.coordinator.sync_group(
            self.group_id, self.generation, self.member_id, cp.PROTOCOL_TYPE,
            joined.protocol_name, assignments, self.instance_id))
        if synced is None or synced.error_code:
            if synced is not None:
                self._failed(synced.error_code, self.member_id)
            return None
        partitions = cp.decode_assignment(synced.assignment).partitions
        logger.info("group %s: member %s generation %d assigned %s", self.group_id,
                    self.member_id, self.generation, partitions)
        return partitions

    def _assign(self, joined) -> dict[str, bytes]:
        """The leader's SyncGroup assignments, from every member's subscription."""
        counts = {name: info.partitions for name, info in self.broker.store.topics().items()}
        members = [(m.member_id, m.group_instance_id, m.metadata) for m in joined.members]
        return assignors.assign_members(joined.protocol_name, members, counts)

    def _failed(self, code: int, member_id: str) -> None:
        """A JoinGroup / SyncGroup error: adjust the member id, report what is not routine."""
        if code == txn_errors.UnknownMemberId.code:
            self.member_id = ""
        elif code == txn_errors.MemberIdRequired.code:
            self.member_id = member_id
        elif code == txn_errors.FencedInstanceId.code:
            self._post(GroupEvent(ERROR, error=KafkaError(
                code, f"group {self.group_id}: static member {self.instance_id} was fenced "
                      "by another consumer with the same group.instance.id", fatal=True)))
            self._stop.set()
        elif code not in (txn_errors.RebalanceInProgress.code,
                          txn_errors.IllegalGeneration.code):
            self._post(GroupEvent(ERROR, error=KafkaError(code, f"group {self.group_id}: "
                                                                "join failed")))

    def _progress(self):
        consumer = self._consumer()
        if consumer is None:
            self._stop.set()
            return None
        return consumer._progress()

    def _stable(self) -> str | None:
        """Heartbeat until the assignment must go: REVOKE (rebalance) or LOST; None: stop."""
        progress = self._progress()
        progress_at = time.monotonic()
        while not self._stop.wait(self.heartbeat_s):
            if self._rejoin.is_set() or self._subscription_changed():
                return REVOKE
            now = time.monotonic()
            current = self._progress()
            if current != progress or (current is not None and current[-1]):
                progress, progress_at = current, now
            elif now - progress_at > self.max_poll_s:
                return self._poll_interval_exceeded(now - progress_at)
            try:
                self.coordinator.heartbeat(self.group_id, self.generation, self.member_id,
                                           self.instance_id)
            except txn_errors.RebalanceInProgress:
                return REVOKE
            except (txn_errors.UnknownMemberId, txn_errors.IllegalGeneration) as exc:
                if isinstance(exc, txn_errors.UnknownMemberId):
                    self.member_id = ""
                return LOST
            except txn_errors.FencedInstanceId as exc:
                self._failed(exc.code, self.member_id)
                return LOST
            except LogstoreError as exc:
                logger.info("group %s: heartbeat failed: %s", self.group_id, exc)
        return None

    def _subscription_changed(self) -> bool:
        """The subscribed names changed (any member), or a partition count (the leader
        reassigns: its JoinGroup starts the rebalance)."""
        names, counts = self._subscription()
        old_names, old_counts = self._snapshot
        return names != old_names or (self.is_leader and counts != old_counts)

    def _poll_interval_exceeded(self, idle_s: float) -> str:
        """librdkafka: leave the group, tell the application, join again on its next poll."""
        over_ms = int(idle_s * 1000 - self.max_poll_s * 1000)
        self._post(GroupEvent(ERROR, error=KafkaError(
            KafkaError._MAX_POLL_EXCEEDED, f"Application maximum poll interval "
            f"({int(self.max_poll_s * 1000)}ms) exceeded by {over_ms}ms")))
        if self.member_id and self.instance_id is None:
            try:
                self.coordinator.leave_group(self.group_id, [self.member_id])
            except LogstoreError:
                pass
        self.member_id = ""
        return LOST
