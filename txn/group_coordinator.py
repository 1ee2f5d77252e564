"""`GroupCoordinator`: Kafka's classic consumer-group protocol and committed offsets over
`__consumer_offsets`, for the embedded Consumer (threads) and the wire server (real clients).

Membership (ClassicGroup, GroupMetadataManager's classic half; the Java coordinator of Kafka
3.7+ is the reference, the Scala one where they agree):

    Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
    CompletingRebalance --leader's SyncGroup--> Stable --join/leave/expiry--> PreparingRebalance
    Empty (no offsets either) --expire_members / delete--> Dead (forgotten)

  - JoinGroup parks a Future per member until the join phase completes: when every known member
    has rejoined (and no MEMBER_ID_REQUIRED member is pending), or at the rebalance timeout (the
    largest of the members'), when members that did not rejoin are removed (dynamic ones). A
    group rebalancing out of Empty waits group.initial.rebalance.delay.ms first, extended by
    that delay (within the rebalance timeout) while new members keep arriving. The protocol is
    one every member supports, chosen by vote (each member votes for its first candidate);
    ties go to the leader's preference (Kafka: HashMap order).
  - SyncGroup parks followers until the leader's assignments arrive, then completes every
    member (members the leader left out get b""). Members that do not sync within the rebalance
    timeout are removed and the group rebalances (Kafka's pending-sync expiry).
  - Sessions: a heartbeat (or a commit while Stable/PreparingRebalance) pushes the member's
    deadline by session.timeout.ms; a member awaiting a join or sync response is kept alive; a
    new member must complete its first join within 5 minutes. group.instance.id (static
    membership) is supported as in Kafka: a rejoin with an unknown member id replaces the old
    member (fencing its parked requests with FENCED_INSTANCE_ID) and only rebalances when that
    changes the group's protocol or the group is between join and sync.

Timers: every deadline (session, pending member, join phase, pending sync) is checked against
broker.time_ms() at the end of each operation on the group and by `expire_members()`, which
the Broker runs every second; so a zero initial delay completes a first join inline, and a
fake clock drives everything in tests.

Offsets (OffsetMetadataManager):

  - commit_offsets / txn_offset_commit validate the generation and member as
    ClassicGroup.validateOffsetCommit (generation -1 with no member id: a "simple" commit,
    allowed while the group has no members; transactional commits skip the checks then too, and
    never get REBALANCE_IN_PROGRESS), refuse metadata longer than offset.metadata.max.bytes
    per partition (counted in UTF-16 units, as Java's String.length()), then append
    OffsetCommitKey v1 / OffsetCommitValue v3 (v1 with an expire timestamp) records in one
    batch to `__consumer_offsets-<broker.offsets_partition(group)>` (durable), and apply them.
  - A transactional commit is one transactional batch (producer id/epoch, no sequence, origin
    COORDINATOR: the partition checks the epoch and, KIP-890, asks the transaction coordinator
    whether the partition is in the transaction). Its offsets stay pending per producer id
    until that producer's next marker on the partition: COMMIT makes each pending offset the
    committed one unless a commit at a later log position is already there; ABORT drops them.
    Marker listeners run on the broker's completion thread, so a marker may be seen before the
    append that precedes it in the log is applied: recent markers per producer are kept and a
    pending offset followed in the log by a known marker is resolved at once.
  - fetch_offsets with require_stable answers UNSTABLE_OFFSET_COMMIT for partitions with
    pending transactional offsets (KIP-447).
  - Load: on construction every `__consumer_offsets` partition is replayed in log order
    (committed offsets, pending transactional offsets, markers, tombstones). Only offsets are
    persisted: group membership (GroupMetadataValue) is neither written nor read. Members are
    in-process threads or network clients that rejoin after a restart (a stale member id gets
    UNKNOWN_MEMBER_ID and the client joins afresh), so a restart costs one rebalance.

Results: join_group / sync_group return concurrent.futures.Future[JoinResult | SyncResult]
carrying Kafka error codes (`.error` gives the exception); they never block the caller and are
completed by whichever thread completes the phase. heartbeat raises the Kafka-named error;
commit methods raise group-level errors and return per-partition errors; fetch returns
OffsetAndMetadata (offset -1 when none) or an error per partition.

Thread-safety: every public method may be called from any thread. One lock per group guards
its membership; the registry lock may be taken while a group lock is held, never the reverse;
each offsets partition's state has a leaf lock (nothing is called while it is held). Futures
are completed after the group lock is released. Offset appends run under the group lock (they
serialize a group's commits), never under the registry or state locks.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import uuid
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from logstore.errors import LogstoreError
from logstore.record_batch import ABORT, COMMIT, build_batch
from txn import errors
from txn import offsets_log as ol
from txn.broker import CONSUMER_OFFSETS_TOPIC
from txn.producer_state import AppendOrigin

logger = logging.getLogger("txn.group_coordinator")

EMPTY = "Empty"
PREPARING_REBALANCE = "PreparingRebalance"
COMPLETING_REBALANCE = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"
VALID_PREVIOUS_STATES = {
    EMPTY: {PREPARING_REBALANCE},
    PREPARING_REBALANCE: {STABLE, COMPLETING_REBALANCE, EMPTY},
    COMPLETING_REBALANCE: {PREPARING_REBALANCE},
    STABLE: {COMPLETING_REBALANCE},
    DEAD: {STABLE, PREPARING_REBALANCE, COMPLETING_REBALANCE, EMPTY, DEAD},
}

UNKNOWN_MEMBER_ID = ""
NO_GENERATION = -1
NO_LEADER = ""
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
INVALID_OFFSET = -1
NONE = 0                                        # error code: no error
NON_EMPTY_GROUP = 68                            # Errors.NON_EMPTY_GROUP (not in txn.errors)
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000      # classicGroupNewMemberJoinTimeoutMs
MEMBER_ID_DELIMITER = "-"
EMPTY_ASSIGNMENT = b""
MAX_TIMER_ROUNDS = 16                           # timers firing timers, within one pass
RECENT_MARKERS_PER_PRODUCER = 4
MAX_PRODUCERS_WITH_MARKERS = 10_000             # least recently ended are forgotten first


# ------------------------------------------------------------------------------------------------
# Values handed to callers


@dataclass(frozen=True)
class OffsetAndMetadata:
    """A committed offset. commit_timestamp -1: the coordinator's clock at commit time.
    expire_timestamp (OffsetCommit v2-v4 retention) makes the record an OffsetCommitValue v1."""

    offset: int
    leader_epoch: int = ol.NO_LEADER_EPOCH
    metadata: str = ""
    commit_timestamp: int = ol.NO_TIMESTAMP
    expire_timestamp: int | None = None


NO_OFFSET = OffsetAndMetadata(INVALID_OFFSET)


def _error(code: int, message: str = ""):
    return None if code == NONE else errors.error_for_code(code, message)


@dataclass(frozen=True)
class JoinMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True)
class JoinResult:
    error_code: int
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader: str
    member_id: str
    members: tuple[JoinMember, ...] = ()        # the leader's only
    skip_assignment: bool = False

    @property
    def error(self):
        return _error(self.error_code)


@dataclass(frozen=True)
class SyncResult:
    error_code: int
    protocol_type: str | None
    protocol_name: str | None
    assignment: bytes

    @property
    def error(self):
        return _error(self.error_code)


@dataclass(frozen=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol_data: str                          # the protocol name while Stable, else ""
    members: tuple[MemberDescription, ...]


@dataclass(frozen=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str


@dataclass(frozen=True)
class LeaveResult:
    member_id: str
    group_instance_id: str | None
    error: Exception | None


def _join_error(member_id: str, code: int) -> JoinResult:
    return JoinResult(code, NO_GENERATION, None, None, NO_LEADER, member_id)


def _sync_error(code: int) -> SyncResult:
    return SyncResult(code, None, None, EMPTY_ASSIGNMENT)


class _Outbox:
    """Futures to complete once the group lock is released."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[Future, object]] = []

    def add(self, future: Future | None, result) -> None:
        if future is not None:
            self.items.append((future, result))

    def flush(self) -> None:
        items, self.items = self.items, []
        for future, result in items:
            try:
                future.set_result(result)
            except InvalidStateError:       # cancelled by the caller
                pass


# ------------------------------------------------------------------------------------------------
# Membership state (ClassicGroupMember, ClassicGroup)


@dataclass
class _JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    require_known_member_id: bool

    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}


class _Member:
    def __init__(self, member_id: str, request: _JoinRequest):
        self.member_id = member_id
        self.group_instance_id = request.group_instance_id
        self.client_id = request.client_id
        self.client_host = request.client_host
        self.rebalance_timeout_ms = request.rebalance_timeout_ms
        self.session_timeout_ms = request.session_timeout_ms
        self.protocol_type = request.protocol_type
        self.protocols = list(request.protocols)
        self.assignment = EMPTY_ASSIGNMENT
        self.join_future: Future | None = None
        self.sync_future: Future | None = None
        self.is_new = False
        self.heartbeat_deadline: int | None = None

    def metadata(self, protocol_name: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        return b""

    def vote(self, candidates: set[str]) -> str:
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise AssertionError(f"member {self.member_id} supports none of {candidates}")

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def has_satisfied_heartbeat(self) -> bool:
        if self.is_new:
            return False
        return self.join_future is not None or self.sync_future is not None


@dataclass
class _JoinTimer:
    deadline: int
    initial: bool = False
    delay_ms: int = 0
    remaining_ms: int = 0


class _Group:
    """One classic group's membership; every access holds `lock`."""

    def __init__(self, group_id: str, now: int):
        self.group_id = group_id
        self.lock = threading.Lock()
        self.state = EMPTY
        self.previous_state = DEAD
        self.state_timestamp = now
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.generation_id = 0
        self.leader_id: str | None = None
        self.members: dict[str, _Member] = {}
        self.static_members: dict[str, str] = {}
        self.pending_join: dict[str, int] = {}       # MEMBER_ID_REQUIRED ids -> deadline
        self.pending_sync: set[str] = set()
        self.num_awaiting_join = 0
        self.supported_protocols: collections.Counter = collections.Counter()
        self.new_member_added = False
        self.join_timer: _JoinTimer | None = None
        self.sync_deadline: int | None = None
        self.sync_generation = NO_GENERATION

    def transition(self, state: str, now: int) -> None:
        if self.state not in VALID_PREVIOUS_STATES[state]:
            raise AssertionError(f"group {self.group_id}: illegal transition {self.state} -> "
                                 f"{state}")
        self.previous_state, self.state = self.state, state
        self.state_timestamp = now

    def can_rebalance(self) -> bool:
        return self.state in VALID_PREVIOUS_STATES[PREPARING_REBALANCE]

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: _Member, future: Future | None) -> None:
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.supported_protocols.update(name for name, _ in member.protocols)
        member.join_future = future
        if future is not None:
            self.num_awaiting_join += 1
        self.pending_join.pop(member.member_id, None)

    def remove(self, member_id: str) -> _Member | None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.supported_protocols.subtract(name for name, _ in member.protocols)
            if member.join_future is not None:
                self.num_awaiting_join -= 1
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_join.pop(member_id, None)
        self.pending_sync.discard(member_id)
        return member

    def update_member(self, member: _Member, request: _JoinRequest, future: Future | None,
                      out: _Outbox) -> None:
        self.supported_protocols.subtract(name for name, _ in member.protocols)
        member.protocols = list(request.protocols)
        self.supported_protocols.update(name for name, _ in member.protocols)
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.session_timeout_ms = request.session_timeout_ms
        if member.join_future is not None:
            # Kafka drops a JoinGroup superseded by the same member's newer one; an in-process
            # caller may still wait on it, so it is answered.
            out.add(member.join_future, _join_error(member.member_id,
                                                    errors.RebalanceInProgress.code))
            self.num_awaiting_join -= 1
        member.join_future = future
        if future is not None:
            self.num_awaiting_join += 1

    def complete_join(self, member: _Member, result: JoinResult, out: _Outbox) -> None:
        if member.join_future is not None:
            out.add(member.join_future, result)
            member.join_future = None
            self.num_awaiting_join -= 1

    def complete_sync(self, member: _Member, result: SyncResult, out: _Outbox) -> bool:
        if member.sync_future is None:
            return False
        out.add(member.sync_future, result)
        member.sync_future = None
        return True

    def supports_protocols(self, protocol_type: str, names: set[str]) -> bool:
        if self.state == EMPTY:
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and any(
            self.supported_protocols[name] == len(self.members) for name in names)

    def select_protocol(self) -> str:
        candidates = {name for name, count in self.supported_protocols.items()
                      if count == len(self.members)}
        votes = collections.Counter(m.vote(candidates) for m in self.members.values())
        best = max(votes.values())
        leader = self.members.get(self.leader_id) or next(iter(self.members.values()))
        preference = [name for name, _ in leader.protocols] + sorted(votes)
        return next(name for name in preference if votes.get(name) == best)

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.num_awaiting_join and not self.pending_join

    def maybe_elect_new_joined_leader(self) -> bool:
        if self.leader_id is None:
            return False
        leader = self.members[self.leader_id]
        if leader.join_future is not None:
            return True
        for member in self.members.values():
            if member.join_future is not None:
                self.leader_id = member.member_id
                return True
        return False

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def current_members(self) -> tuple[JoinMember, ...]:
        return tuple(JoinMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
                     for m in self.members.values())

    def init_next_generation(self, now: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition(COMPLETING_REBALANCE, now)
        else:
            self.protocol_name = None
            self.transition(EMPTY, now)
        self.pending_sync.clear()

    def validate_member(self, member_id: str, group_instance_id: str | None) -> int:
        """ClassicGroup.validateMember as an error code."""
        if group_instance_id is not None:
            existing = self.static_members.get(group_instance_id)
            if existing is None:
                return errors.UnknownMemberId.code
            if existing != member_id:
                return errors.FencedInstanceId.code
        if member_id not in self.members:
            return errors.UnknownMemberId.code
        return NONE

    def join_result(self, member_id: str, leader: str | None = None,
                    with_members: bool | None = None) -> JoinResult:
        """A successful JoinGroup answer for the current generation."""
        if with_members is None:
            with_members = self.is_leader(member_id)
        return JoinResult(NONE, self.generation_id, self.protocol_type, self.protocol_name,
                          (self.leader_id if leader is None else leader) or NO_LEADER,
                          member_id, self.current_members() if with_members else ())


# ------------------------------------------------------------------------------------------------
# Offsets of one __consumer_offsets partition (OffsetMetadataManager's maps)


@dataclass(frozen=True)
class _Stored:
    value: ol.OffsetCommitValue
    record_offset: int                  # log position: the later one wins a COMMIT marker

    def offset_and_metadata(self) -> OffsetAndMetadata:
        v = self.value
        return OffsetAndMetadata(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp,
                                 v.expire_timestamp)


@dataclass(frozen=True)
class _Pending:
    group_id: str
    partition: tuple[str, int]
    stored: _Stored


@dataclass
class _OffsetsState:
    """Committed and pending offsets of the groups of one offsets partition. `lock` is a leaf
    lock: nothing else is acquired or called while it is held."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    committed: dict[str, dict[tuple[str, int], _Stored]] = field(default_factory=dict)
    pending: dict[int, list[_Pending]] = field(default_factory=dict)
    pending_keys: collections.Counter = field(default_factory=collections.Counter)
    markers: dict[int, collections.deque] = field(default_factory=dict)

    def has_group(self, group_id: str) -> bool:
        with self.lock:
            return bool(self.committed.get(group_id)) or any(
                key[0] == group_id for key, n in self.pending_keys.items() if n > 0)

    def group_ids(self) -> set[str]:
        with self.lock:
            found = {g for g, offsets in self.committed.items() if offsets}
            return found | {key[0] for key, n in self.pending_keys.items() if n > 0}

    def group_partitions(self, group_id: str) -> list[tuple[str, int]]:
        with self.lock:
            found = dict.fromkeys(self.committed.get(group_id, {}))
            found.update(dict.fromkeys(key[1] for key, n in self.pending_keys.items()
                                       if n > 0 and key[0] == group_id))
            return list(found)

    def put_committed(self, group_id: str, tp: tuple[str, int], stored: _Stored | None) -> None:
        """A non-transactional record: the value, or a tombstone (None), which also deletes
        pending transactional offsets of the partition (OffsetMetadataManager.replay)."""
        with self.lock:
            if stored is not None:
                self.committed.setdefault(group_id, {})[tp] = stored
                return
            offsets = self.committed.get(group_id)
            if offsets is not None:
                offsets.pop(tp, None)
                if not offsets:
                    del self.committed[group_id]
            if self.pending_keys[(group_id, tp)] > 0:
                for pid in list(self.pending):
                    self._drop_pending(pid, lambda p: (p.group_id, p.partition) == (group_id, tp))

    def put_pending(self, producer_id: int, group_id: str, tp: tuple[str, int],
                    stored: _Stored) -> None:
        """A transactional record; resolved at once when a marker of the producer that follows
        it in the log has already been seen (listeners run asynchronously)."""
        with self.lock:
            for marker_offset, commit in self.markers.get(producer_id, ()):
                if marker_offset > stored.record_offset:
                    if commit:
                        self._commit_one(group_id, tp, stored)
                    return
            self.pending.setdefault(producer_id, []).append(_Pending(group_id, tp, stored))
            self.pending_keys[(group_id, tp)] += 1

    def complete_txn(self, producer_id: int, commit: bool, marker_offset: int) -> None:
        """A COMMIT/ABORT marker: resolve the producer's pending offsets written before it."""
        with self.lock:
            recent = self.markers.pop(producer_id, None) or collections.deque(
                maxlen=RECENT_MARKERS_PER_PRODUCER)
            recent.append((marker_offset, commit))
            self.markers[producer_id] = recent          # most recent last
            if len(self.markers) > MAX_PRODUCERS_WITH_MARKERS:
                del self.markers[next(iter(self.markers))]
            resolved = self._drop_pending(producer_id,
                                          lambda p: p.stored.record_offset < marker_offset)
            if commit:
                for p in resolved:
                    self._commit_one(p.group_id, p.partition, p.stored)

    def _drop_pending(self, producer_id: int, predicate) -> list[_Pending]:
        entries = self.pending.get(producer_id, [])
        taken = [p for p in entries if predicate(p)]
        kept = [p for p in entries if not predicate(p)]
        if kept:
            self.pending[producer_id] = kept
        else:
            self.pending.pop(producer_id, None)
        for p in taken:
            key = (p.group_id, p.partition)
            self.pending_keys[key] -= 1
            if self.pending_keys[key] <= 0:
                del self.pending_keys[key]
        return taken

    def _commit_one(self, group_id: str, tp: tuple[str, int], stored: _Stored) -> None:
        """replayEndTransactionMarker(COMMIT): the later log position wins."""
        offsets = self.committed.setdefault(group_id, {})
        existing = offsets.get(tp)
        if existing is None or stored.record_offset > existing.record_offset:
            offsets[tp] = stored

    def fetch(self, group_id: str, partitions, require_stable: bool) -> dict:
        with self.lock:
            offsets = self.committed.get(group_id, {})
            wanted = list(offsets) if partitions is None else [tuple(tp) for tp in partitions]
            result = {}
            for tp in wanted:
                if require_stable and self.pending_keys.get((group_id, tp), 0) > 0:
                    result[tp] = errors.UnstableOffsetCommit(
                        f"group {group_id}: {tp[0]}-{tp[1]} has a pending transactional offset")
                elif tp in offsets:
                    result[tp] = offsets[tp].offset_and_metadata()
                else:
                    result[tp] = NO_OFFSET
            return result


# ------------------------------------------------------------------------------------------------
# The coordinator


class GroupCoordinator:
    def __init__(self, broker):
        self._broker = broker
        self._time = broker.time_ms
        config = broker.config
        self._initial_delay_ms = int(config["group.initial.rebalance.delay.ms"])
        self._min_session_ms = int(config["group.min.session.timeout.ms"])
        self._max_session_ms = int(config["group.max.session.timeout.ms"])
        self._max_metadata = int(config["offset.metadata.max.bytes"])
        self._groups: dict[str, _Group] = {}
        self._groups_lock = threading.Lock()
        self._states = [_OffsetsState()        # the existing topic's count decides, as Kafka
                        for _ in range(broker.partitions_of(CONSUMER_OFFSETS_TOPIC))]
        self._closed = False
        self._load()

    # -- load ---------------------------------------------------------------------------------

    def _load(self) -> None:
        """Replay every __consumer_offsets partition, then follow its markers."""
        for index, state in enumerate(self._states):
            partition = self._broker.partition(CONSUMER_OFFSETS_TOPIC, index)
            for batch in partition.log.batches():
                self._replay(state, batch, index)
            partition.add_marker_listener(state.complete_txn)

    def _replay(self, state: _OffsetsState, batch, index: int) -> None:
        try:
            self._replay_batch(state, batch)
        except LogstoreError as exc:
            raise type(exc)(f"{CONSUMER_OFFSETS_TOPIC}-{index}: batch at offset "
                            f"{batch.base_offset}: {exc}") from exc

    def _replay_batch(self, state: _OffsetsState, batch) -> None:
        if batch.is_control:
            record = batch.control_record()
            if record is not None and record.type in (ABORT, COMMIT):
                state.complete_txn(batch.producer_id, record.type == COMMIT, batch.base_offset)
            return
        producer_id = batch.producer_id if batch.is_transactional else NO_PRODUCER_ID
        for record in batch.records():
            if record.key is None:
                logger.warning("%s: skipping a record without a key at offset %d",
                               CONSUMER_OFFSETS_TOPIC, record.offset)
                continue
            key = ol.decode_key(record.key)
            if not isinstance(key, ol.OffsetCommitKey):
                continue        # group metadata is not persisted; unknown types (KIP-915)
            value = ol.decode_offset_commit_value(record.value)
            tp = (key.topic, key.partition)
            if value is None:
                state.put_committed(key.group, tp, None)
            elif producer_id == NO_PRODUCER_ID:
                state.put_committed(key.group, tp, _Stored(value, record.offset))
            else:
                state.put_pending(producer_id, key.group, tp, _Stored(value, record.offset))

    # -- groups and locking ---------------------------------------------------------------------

    def _state(self, group_id: str) -> _OffsetsState:
        return self._states[self._broker.offsets_partition(group_id)]

    def _acquire(self, group_id: str, create: bool) -> _Group | None:
        """The group, locked; created when `create` or when it has offsets (Kafka's "simple"
        group). A Dead group has left the registry: look again."""
        while True:
            with self._groups_lock:
                group = self._groups.get(group_id)
                if group is None:
                    if not (create or self._state(group_id).has_group(group_id)):
                        return None
                    group = _Group(group_id, self._time())
                    self._groups[group_id] = group
            group.lock.acquire()
            if group.state != DEAD:
                return group
            group.lock.release()

    @contextlib.contextmanager
    def _locked(self, group_id: str, create: bool = False):
        """(group | None, outbox) under the group's lock; due timers run before the lock is
        released and the outbox's futures are completed after."""
        if self._closed:
            raise errors.CoordinatorNotAvailable("the group coordinator is closed")
        out = _Outbox()
        group = self._acquire(group_id, create)
        try:
            yield group, out
            if group is not None:
                self._run_timers(group, out)
        finally:
            if group is not None:
                group.lock.release()
            out.flush()

    def _remove_group(self, group: _Group) -> None:
        """Dead: out of the registry (the caller holds the group's lock)."""
        group.transition(DEAD, self._time())
        with self._groups_lock:
            if self._groups.get(group.group_id) is group:
                del self._groups[group.group_id]

    # -- JoinGroup ------------------------------------------------------------------------------

    def join_group(self, group_id: str, member_id: str, group_instance_id: str | None,
                   client_id: str, client_host: str, session_timeout_ms: int,
                   rebalance_timeout_ms: int, protocol_type: str, protocols,
                   require_known_member_id: bool = False) -> Future:
        """JoinGroup: a Future[JoinResult], completed when the join phase completes (or at once
        with an error). rebalance_timeout_ms -1 (JoinGroup v0) means the session timeout;
        require_known_member_id is JoinGroup v4+ (an unknown member first gets
        MEMBER_ID_REQUIRED and its id)."""
        future: Future = Future()
        request = _JoinRequest(
            group_id, member_id or UNKNOWN_MEMBER_ID, group_instance_id, client_id,
            client_host, session_timeout_ms,
            session_timeout_ms if rebalance_timeout_ms < 0 else rebalance_timeout_ms,
            protocol_type, [(name, bytes(meta)) for name, meta in protocols],
            require_known_member_id)
        code = self._check_join(request)
        if code != NONE:
            future.set_result(_join_error(request.member_id, code))
            return future
        is_new = request.member_id == UNKNOWN_MEMBER_ID
        with self._locked(group_id, create=is_new) as (group, out):
            if group is None:
                out.add(future, _join_error(request.member_id, errors.UnknownMemberId.code))
            elif is_new:
                self._join_new_member(group, request, future, out)
            else:
                self._join_existing_member(group, request, future, out)
        return future

    def _check_join(self, request: _JoinRequest) -> int:
        if self._closed:
            return errors.CoordinatorNotAvailable.code
        if not request.group_id:
            return errors.InvalidGroupId.code
        if not self._min_session_ms <= request.session_timeout_ms <= self._max_session_ms:
            return errors.InvalidSessionTimeout.code
        return NONE

    def _join_new_member(self, group: _Group, request: _JoinRequest, future: Future,
                         out: _Outbox) -> None:
        """classicGroupJoinNewMember."""
        if not group.supports_protocols(request.protocol_type, request.protocol_names()):
            out.add(future, _join_error(UNKNOWN_MEMBER_ID,
                                        errors.InconsistentGroupProtocol.code))
            return
        prefix = request.group_instance_id or request.client_id
        new_id = f"{prefix}{MEMBER_ID_DELIMITER}{uuid.uuid4()}"
        instance_id = request.group_instance_id
        if instance_id is not None and instance_id in group.static_members:
            self._replace_static_member(group, request, new_id, future, out)
        elif instance_id is None and request.require_known_member_id:
            group.pending_join[new_id] = self._time() + request.session_timeout_ms
            out.add(future, _join_error(new_id, errors.MemberIdRequired.code))
        else:
            self._add_member_and_rebalance(group, request, new_id, future, out)

    def _join_existing_member(self, group: _Group, request: _JoinRequest, future: Future,
                              out: _Outbox) -> None:
        """classicGroupJoinExistingMember."""
        member_id = request.member_id
        if not group.supports_protocols(request.protocol_type, request.protocol_names()):
            out.add(future, _join_error(member_id, errors.InconsistentGroupProtocol.code))
            return
        if member_id in group.pending_join:
            if request.group_instance_id is not None:
                out.add(future, _join_error(member_id, errors.InvalidRequest.code))
            else:
                self._add_member_and_rebalance(group, request, member_id, future, out)
            return
        code = group.validate_member(member_id, request.group_instance_id)
        if code != NONE:
            out.add(future, _join_error(member_id, code))
            return
        member = group.members[member_id]
        if group.state == PREPARING_REBALANCE:
            self._update_member_and_rebalance(group, member, request, future, out)
        elif group.state == COMPLETING_REBALANCE:
            if member.matches(request.protocols):       # lost its JoinGroup answer: resend it
                out.add(future, group.join_result(member_id))
            else:
                self._update_member_and_rebalance(group, member, request, future, out)
        elif group.state == STABLE:
            if group.is_leader(member_id) or not member.matches(request.protocols):
                self._update_member_and_rebalance(group, member, request, future, out)
            else:
                out.add(future, group.join_result(member_id, with_members=False))
        else:
            out.add(future, _join_error(member_id, errors.UnknownMemberId.code))

    def _add_member_and_rebalance(self, group: _Group, request: _JoinRequest, member_id: str,
                                  future: Future, out: _Outbox) -> None:
        """addMemberThenRebalanceOrCompleteJoin."""
        member = _Member(member_id, request)
        member.is_new = True
        if group.state == PREPARING_REBALANCE and group.previous_state == EMPTY:
            group.new_member_added = True       # the initial rebalance may wait longer
        group.add(member, future)
        member.heartbeat_deadline = self._time() + NEW_MEMBER_JOIN_TIMEOUT_MS
        self._maybe_prepare_rebalance_or_complete_join(group, out)

    def _update_member_and_rebalance(self, group: _Group, member: _Member,
                                     request: _JoinRequest, future: Future,
                                     out: _Outbox) -> None:
        group.update_member(member, request, future, out)
        self._maybe_prepare_rebalance_or_complete_join(group, out)

    def _replace_static_member(self, group: _Group, request: _JoinRequest, new_id: str,
                               future: Future, out: _Outbox) -> None:
        """updateStaticMemberThenRebalanceOrCompleteJoin: a known group.instance.id joins with
        an unknown member id; its old member id is fenced."""
        old_leader = group.leader_id
        old = group.members[group.static_members[request.group_instance_id]]
        group.complete_join(old, _join_error(old.member_id, errors.FencedInstanceId.code), out)
        group.complete_sync(old, _sync_error(errors.FencedInstanceId.code), out)
        group.remove(old.member_id)
        member = _Member(new_id, request)
        member.protocols = old.protocols
        member.rebalance_timeout_ms = old.rebalance_timeout_ms
        member.session_timeout_ms = old.session_timeout_ms
        member.assignment = old.assignment
        group.add(member, None)
        if old_leader == old.member_id:
            group.leader_id = new_id
        self._reschedule_heartbeat(member)
        group.update_member(member, request, future, out)
        if group.state == STABLE:
            if group.protocol_name == group.select_protocol():
                # no rebalance; the old leader id is returned so that the new member (even a
                # former leader) does not compute an assignment nobody would collect
                group.complete_join(member, group.join_result(
                    new_id, leader=old_leader, with_members=False), out)
            else:
                self._maybe_prepare_rebalance_or_complete_join(group, out)
        elif group.state == COMPLETING_REBALANCE:
            self._prepare_rebalance(group, out)
        else:
            self._maybe_complete_join_phase(group, out)

    # -- the join and sync phases -----------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(self, group: _Group, out: _Outbox) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, out)
        else:
            self._maybe_complete_join_phase(group, out)

    def _maybe_complete_join_phase(self, group: _Group, out: _Outbox) -> None:
        """Complete the join phase once everyone joined, except during the initial delay."""
        if (group.state == PREPARING_REBALANCE and group.has_all_members_joined()
                and group.previous_state != EMPTY):
            self._complete_join(group, out)

    def _prepare_rebalance(self, group: _Group, out: _Outbox) -> None:
        if group.state == COMPLETING_REBALANCE:
            self._reset_and_propagate(group, errors.RebalanceInProgress.code, out)
        group.pending_sync.clear()
        group.sync_deadline = None
        now = self._time()
        initial = group.state == EMPTY
        if initial:
            delay = self._initial_delay_ms
            group.join_timer = _JoinTimer(now + delay, True, delay,
                                          max(group.rebalance_timeout_ms() - delay, 0))
        group.transition(PREPARING_REBALANCE, now)
        logger.info("group %s: preparing to rebalance (generation %d)", group.group_id,
                    group.generation_id)
        if not initial:
            if group.has_all_members_joined():
                self._complete_join(group, out)
            else:
                group.join_timer = _JoinTimer(now + group.rebalance_timeout_ms())

    def _on_join_timer(self, group: _Group, timer: _JoinTimer, out: _Outbox) -> None:
        """tryCompleteInitialRebalanceElseSchedule / the rebalance timeout."""
        if group.state != PREPARING_REBALANCE:
            return
        if timer.initial and group.new_member_added and timer.remaining_ms != 0:
            group.new_member_added = False
            delay = min(self._initial_delay_ms, timer.remaining_ms)
            # from the previous deadline: as if the timer had fired on time (ticks are coarse)
            group.join_timer = _JoinTimer(timer.deadline + delay, True, delay,
                                          max(timer.remaining_ms - timer.delay_ms, 0))
            return
        self._complete_join(group, out)

    def _complete_join(self, group: _Group, out: _Outbox) -> None:
        """completeClassicGroupJoin: drop dynamic members that did not rejoin, start the next
        generation and answer every parked JoinGroup."""
        group.join_timer = None
        for member in [m for m in group.members.values() if m.join_future is None]:
            if member.group_instance_id is None:
                self._drop_member(group, member, out)
        if not group.maybe_elect_new_joined_leader() and group.members:
            logger.warning("group %s: no member rejoined; waiting another rebalance timeout",
                           group.group_id)
            group.join_timer = _JoinTimer(self._time() + group.rebalance_timeout_ms())
            return
        group.init_next_generation(self._time())
        if group.state == EMPTY:
            logger.info("group %s: generation %d is empty", group.group_id, group.generation_id)
            return
        logger.info("group %s: generation %d with %d members, protocol %s", group.group_id,
                    group.generation_id, len(group.members), group.protocol_name)
        for member in group.members.values():
            group.complete_join(member, group.join_result(member.member_id), out)
            self._reschedule_heartbeat(member)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        group.sync_deadline = self._time() + group.rebalance_timeout_ms()
        group.sync_generation = group.generation_id

    def _reset_and_propagate(self, group: _Group, code: int, out: _Outbox) -> None:
        for member in group.members.values():
            member.assignment = EMPTY_ASSIGNMENT
        self._propagate(group, code, out)

    def _propagate(self, group: _Group, code: int, out: _Outbox) -> None:
        ok = code == NONE
        for member in group.members.values():
            result = SyncResult(code, group.protocol_type if ok else None,
                                group.protocol_name if ok else None, member.assignment)
            if group.complete_sync(member, result, out):
                self._reschedule_heartbeat(member)

    def _reschedule_heartbeat(self, member: _Member) -> None:
        member.heartbeat_deadline = self._time() + member.session_timeout_ms

    def _drop_member(self, group: _Group, member: _Member, out: _Outbox) -> None:
        """Out of the group, answering anything it still waits for with UNKNOWN_MEMBER_ID
        (Kafka drops a removed member's parked SyncGroup; an in-process caller would hang)."""
        group.complete_join(member, _join_error(UNKNOWN_MEMBER_ID,
                                                errors.UnknownMemberId.code), out)
        group.complete_sync(member, _sync_error(errors.UnknownMemberId.code), out)
        member.heartbeat_deadline = None
        group.remove(member.member_id)

    def _remove_member_and_update(self, group: _Group, member: _Member, out: _Outbox) -> None:
        """removeMemberAndUpdateClassicGroup (session expiry)."""
        self._drop_member(group, member, out)
        if group.state in (STABLE, COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group, out)
        elif group.state == PREPARING_REBALANCE and group.has_all_members_joined():
            self._complete_join(group, out)

    def _expire_pending_sync(self, group: _Group, generation_id: int, out: _Outbox) -> None:
        """expirePendingSync: members that never sent SyncGroup are removed."""
        if generation_id != group.generation_id or not group.pending_sync:
            return
        if group.state not in (COMPLETING_REBALANCE, STABLE):
            return
        missing = sorted(group.pending_sync)
        logger.info("group %s: removing members that did not sync: %s", group.group_id, missing)
        for member_id in missing:
            member = group.members.get(member_id)
            if member is not None:
                self._drop_member(group, member, out)
        self._prepare_rebalance(group, out)

    # -- timers ---------------------------------------------------------------------------------

    def _run_timers(self, group: _Group, out: _Outbox) -> None:
        for _ in range(MAX_TIMER_ROUNDS):
            if group.state == DEAD or not self._fire_due(group, self._time(), out):
                return

    def _fire_due(self, group: _Group, now: int, out: _Outbox) -> bool:
        fired = False
        for member_id, deadline in list(group.pending_join.items()):
            if deadline <= now and member_id in group.pending_join:
                fired = True
                logger.info("group %s: pending member %s expired", group.group_id, member_id)
                group.remove(member_id)
                if group.state == PREPARING_REBALANCE and group.has_all_members_joined():
                    self._complete_join(group, out)
        for member in list(group.members.values()):
            deadline = member.heartbeat_deadline
            if (deadline is None or deadline > now
                    or group.members.get(member.member_id) is not member):
                continue
            fired = True
            member.heartbeat_deadline = None
            if not member.has_satisfied_heartbeat():
                logger.info("group %s: member %s session expired", group.group_id,
                            member.member_id)
                self._remove_member_and_update(group, member, out)
        timer = group.join_timer
        if timer is not None and timer.deadline <= now:
            fired = True
            group.join_timer = None
            self._on_join_timer(group, timer, out)
        if group.sync_deadline is not None and group.sync_deadline <= now:
            fired = True
            group.sync_deadline = None
            self._expire_pending_sync(group, group.sync_generation, out)
        return fired

    def expire_members(self) -> None:
        """Fire every due timer of every group (sessions, pending members, join and sync
        phases) and forget groups that are Empty and hold no offsets. The Broker runs this
        every second; tests call it after moving a fake clock."""
        if self._closed:
            return
        with self._groups_lock:
            group_ids = list(self._groups)
        for group_id in group_ids:
            if self._closed:
                return
            with self._locked(group_id) as (group, _out):
                if (group is not None and group.state == EMPTY and not group.pending_join
                        and not self._state(group_id).has_group(group_id)):
                    self._remove_group(group)

    # -- SyncGroup, Heartbeat, LeaveGroup -------------------------------------------------------

    def sync_group(self, group_id: str, generation_id: int, member_id: str,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes], group_instance_id: str | None = None
                   ) -> Future:
        """SyncGroup: a Future[SyncResult] with this member's assignment, completed when the
        leader's assignments arrive (at once when the group is Stable, or on an error)."""
        future: Future = Future()
        if self._closed or not group_id:
            future.set_result(_sync_error(errors.CoordinatorNotAvailable.code if self._closed
                                          else errors.InvalidGroupId.code))
            return future
        with self._locked(group_id) as (group, out):
            if group is None:
                out.add(future, _sync_error(errors.UnknownMemberId.code))
                return future
            code = group.validate_member(member_id, group_instance_id)
            if code == NONE and generation_id != group.generation_id:
                code = errors.IllegalGeneration.code
            if code == NONE and (_inconsistent(protocol_type, group.protocol_type)
                                 or _inconsistent(protocol_name, group.protocol_name)):
                code = errors.InconsistentGroupProtocol.code
            if code == NONE and group.state == EMPTY:
                code = errors.UnknownMemberId.code
            if code == NONE and group.state == PREPARING_REBALANCE:
                code = errors.RebalanceInProgress.code
            if code != NONE:
                out.add(future, _sync_error(code))
            elif group.state == COMPLETING_REBALANCE:
                self._sync_completing(group, member_id, assignments, future, out)
            else:
                self._remove_pending_sync(group, member_id)
                member = group.members[member_id]
                out.add(future, SyncResult(NONE, group.protocol_type, group.protocol_name,
                                           member.assignment))
        return future

    def _sync_completing(self, group: _Group, member_id: str, assignments: dict[str, bytes],
                         future: Future, out: _Outbox) -> None:
        member = group.members[member_id]
        if member.sync_future is not None:          # superseded by this newer SyncGroup
            out.add(member.sync_future, _sync_error(errors.RebalanceInProgress.code))
        member.sync_future = future
        self._remove_pending_sync(group, member_id)
        if not group.is_leader(member_id):
            return
        logger.info("group %s: assignment from leader %s for generation %d", group.group_id,
                    member_id, group.generation_id)
        for m in group.members.values():
            m.assignment = bytes(assignments.get(m.member_id, EMPTY_ASSIGNMENT))
        self._propagate(group, NONE, out)
        group.transition(STABLE, self._time())

    def _remove_pending_sync(self, group: _Group, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            group.sync_deadline = None

    def heartbeat(self, group_id: str, generation_id: int, member_id: str,
                  group_instance_id: str | None = None) -> None:
        """Heartbeat: returns, or raises RebalanceInProgress (rejoin), IllegalGeneration,
        UnknownMemberId, FencedInstanceId."""
        if not group_id:
            raise errors.InvalidGroupId("a group id is required")
        with self._locked(group_id) as (group, _out):
            if group is None:
                code = errors.UnknownMemberId.code
            else:
                code = group.validate_member(member_id, group_instance_id)
            if code == NONE and generation_id != group.generation_id:
                code = errors.IllegalGeneration.code
            if code == NONE and group.state == EMPTY:
                code = errors.UnknownMemberId.code
            if code == NONE:
                self._reschedule_heartbeat(group.members[member_id])
                if group.state == PREPARING_REBALANCE:
                    code = errors.RebalanceInProgress.code
        if code != NONE:
            raise errors.error_for_code(code, f"group {group_id} member {member_id} "
                                              f"generation {generation_id}")

    def leave_group(self, group_id: str, members) -> list[LeaveResult]:
        """LeaveGroup for members: member ids or (member_id, group_instance_id) pairs (an empty
        member id with an instance id removes that static member, as the admin client does).
        Returns one LeaveResult per member; a group with no one left of them rebalances."""
        if not group_id:
            raise errors.InvalidGroupId("a group id is required")
        identities = [(m, None) if isinstance(m, str) else (m[0], m[1]) for m in members]
        with self._locked(group_id) as (group, out):
            if group is None:
                return [LeaveResult(m, i, errors.UnknownMemberId(f"unknown group {group_id}"))
                        for m, i in identities]
            results = [self._leave_one(group, m, i, out) for m, i in identities]
            if any(r.error is None for r in results):
                if group.state in (STABLE, COMPLETING_REBALANCE):
                    self._maybe_prepare_rebalance_or_complete_join(group, out)
                elif group.state == PREPARING_REBALANCE:
                    self._maybe_complete_join_phase(group, out)
        return results

    def _leave_one(self, group: _Group, member_id: str, instance_id: str | None,
                   out: _Outbox) -> LeaveResult:
        if member_id == UNKNOWN_MEMBER_ID:
            if instance_id is None or instance_id not in group.static_members:
                return LeaveResult(member_id, instance_id, errors.UnknownMemberId(
                    f"group {group.group_id} has no static member {instance_id}"))
            member_id = group.static_members[instance_id]
            self._drop_member(group, group.members[member_id], out)
            return LeaveResult(UNKNOWN_MEMBER_ID, instance_id, None)
        if member_id in group.pending_join:
            group.remove(member_id)
            return LeaveResult(member_id, instance_id, None)
        code = group.validate_member(member_id, instance_id)
        if code != NONE:
            return LeaveResult(member_id, instance_id, errors.error_for_code(
                code, f"group {group.group_id} member {member_id}"))
        logger.info("group %s: member %s left", group.group_id, member_id)
        self._drop_member(group, group.members[member_id], out)
        return LeaveResult(member_id, instance_id, None)

    # -- DescribeGroups, ListGroups, DeleteGroups -------------------------------------------------

    def describe_groups(self, group_ids) -> list[GroupDescription]:
        """Unknown groups are described as Dead with no members (Kafka: no error)."""
        described = []
        for group_id in group_ids:
            with self._locked(group_id) as (group, _out):
                if group is None:
                    described.append(GroupDescription(group_id, DEAD, "", "", ()))
                else:
                    described.append(_describe(group))
        return described

    def list_groups(self, states=None) -> list[ListedGroup]:
        """Every group (with members, or with offsets), optionally only in `states`."""
        with self._groups_lock:
            group_ids = set(self._groups)
        for state in self._states:
            group_ids |= state.group_ids()
        listed = []
        for group_id in sorted(group_ids):
            with self._locked(group_id) as (group, _out):
                if group is not None and (states is None or group.state in states):
                    listed.append(ListedGroup(group_id, group.protocol_type or "", group.state))
        return listed

    def delete_groups(self, group_ids) -> dict[str, Exception | None]:
        """DeleteGroups: an Empty group's offsets get tombstones (then a GroupMetadata
        tombstone) and it goes Dead; the tombstones also drop pending transactional offsets
        of those partitions, as replaying them does. GROUP_ID_NOT_FOUND for unknown groups,
        NON_EMPTY_GROUP while it has members."""
        results: dict[str, Exception | None] = {}
        for group_id in group_ids:
            if group_id is None:
                results[group_id] = errors.InvalidGroupId("a group id is required")
                continue
            with self._locked(group_id) as (group, _out):
                if group is None:
                    results[group_id] = errors.GroupIdNotFound(f"group {group_id} not found")
                elif group.state != EMPTY:
                    results[group_id] = errors.error_for_code(
                        NON_EMPTY_GROUP, f"group {group_id} has members ({group.state})")
                else:
                    self._delete_offsets(group_id)
                    self._remove_group(group)
                    results[group_id] = None
        return results

    def _delete_offsets(self, group_id: str) -> None:
        state = self._state(group_id)
        partitions = state.group_partitions(group_id)
        keys = [ol.encode_offset_commit_key(group_id, t, p) for t, p in partitions]
        keys.append(ol.encode_group_metadata_key(group_id))
        self._append(group_id, keys, [None] * len(keys))
        for tp in partitions:
            state.put_committed(group_id, tp, None)

    # -- offsets ----------------------------------------------------------------------------------

    def commit_offsets(self, group_id: str, generation_id: int, member_id: str,
                       offsets: dict, group_instance_id: str | None = None
                       ) -> dict[tuple[str, int], Exception | None]:
        """OffsetCommit: {(topic, partition): OffsetAndMetadata}. Raises the group-level error
        (IllegalGeneration, UnknownMemberId, RebalanceInProgress, FencedInstanceId); returns
        {(topic, partition): None | OffsetMetadataTooLarge}. Generation -1 with an empty member
        id commits for a group that does not use membership (it must have no members)."""
        if group_id is None:
            raise errors.InvalidGroupId("a group id is required")
        with self._locked(group_id, create=generation_id < 0) as (group, _out):
            if group is None:
                raise errors.IllegalGeneration(
                    f"group {group_id} does not exist; generation {generation_id} is stale")
            self._validate_offset_commit(group, member_id, group_instance_id, generation_id,
                                         transactional=False)
            member = group.members.get(member_id)
            if member is not None and group.state in (STABLE, PREPARING_REBALANCE):
                self._reschedule_heartbeat(member)
            results, keys, values, entries = self._offset_records(group_id, offsets)
            if keys:
                appended = self._append(group_id, keys, values)
                state = self._state(group_id)
                for i, (tp, value) in enumerate(entries):
                    state.put_committed(group_id, tp, _Stored(value, appended.first_offset + i))
        return results

    def txn_offset_commit(self, transactional_id: str, group_id: str, producer_id: int,
                          producer_epoch: int, generation_id: int, member_id: str,
                          offsets: dict, group_instance_id: str | None = None
                          ) -> dict[tuple[str, int], Exception | None]:
        """TxnOffsetCommit: the offsets become visible when the producer's transaction commits
        (they are pending until its marker). Generation -1 and no member id skip the group
        checks (KIP-447 consumers send theirs). Errors as commit_offsets, plus the partition's
        epoch / transaction verification errors (ProducerFenced, InvalidProducerEpoch,
        InvalidTxnState, ...)."""
        if not group_id:
            raise errors.InvalidGroupId("a group id is required")
        with self._locked(group_id, create=generation_id < 0) as (group, _out):
            if group is None:
                raise errors.IllegalGeneration(
                    f"group {group_id} does not exist; generation {generation_id} is stale")
            self._validate_offset_commit(group, member_id, group_instance_id, generation_id,
                                         transactional=True)
            results, keys, values, entries = self._offset_records(group_id, offsets)
            if keys:
                appended = self._append(group_id, keys, values, producer_id, producer_epoch)
                logger.debug("group %s: pending offsets of %s (producer %d) at %d", group_id,
                             transactional_id, producer_id, appended.first_offset)
                state = self._state(group_id)
                for i, (tp, value) in enumerate(entries):
                    state.put_pending(producer_id, group_id, tp,
                                      _Stored(value, appended.first_offset + i))
        return results

    def fetch_offsets(self, group_id: str, partitions=None, require_stable: bool = False
                      ) -> dict[tuple[str, int], OffsetAndMetadata | Exception]:
        """OffsetFetch: {(topic, partition): OffsetAndMetadata} (offset -1 when none was
        committed; partitions None: every committed partition). require_stable (KIP-447):
        UnstableOffsetCommit for partitions with pending transactional offsets."""
        if group_id is None:
            raise errors.InvalidGroupId("a group id is required")
        if self._closed:
            raise errors.CoordinatorNotAvailable("the group coordinator is closed")
        return self._state(group_id).fetch(group_id, partitions, require_stable)

    def _validate_offset_commit(self, group: _Group, member_id: str, instance_id: str | None,
                                generation_id: int, transactional: bool) -> None:
        """ClassicGroup.validateOffsetCommit."""
        if generation_id < 0 and group.state == EMPTY:
            return
        if generation_id >= 0 or member_id or instance_id is not None:
            code = group.validate_member(member_id, instance_id)
            if code == NONE and generation_id != group.generation_id:
                code = errors.IllegalGeneration.code
            if code != NONE:
                raise errors.error_for_code(code, f"group {group.group_id} member "
                                                  f"{member_id!r} generation {generation_id}")
        elif not transactional and group.state != EMPTY:
            raise errors.UnknownMemberId(f"group {group.group_id} has members; a commit "
                                         "without a member id is refused")
        if not transactional and group.state == COMPLETING_REBALANCE:
            raise errors.RebalanceInProgress(f"group {group.group_id} is rebalancing")

    def _offset_records(self, group_id: str, offsets: dict):
        """(per-partition results, keys, values, [(tp, OffsetCommitValue)]) for a commit."""
        now = self._time()
        results: dict[tuple[str, int], Exception | None] = {}
        keys, values, entries = [], [], []
        for (topic, partition), om in offsets.items():
            tp = (topic, partition)
            metadata = om.metadata or ""
            if _utf16_length(metadata) > self._max_metadata:
                results[tp] = errors.OffsetMetadataTooLarge(
                    f"metadata of {topic}-{partition} is longer than offset.metadata.max.bytes "
                    f"({self._max_metadata})")
                continue
            results[tp] = None
            timestamp = now if om.commit_timestamp == ol.NO_TIMESTAMP else om.commit_timestamp
            value = ol.OffsetCommitValue(om.offset, metadata, timestamp, om.leader_epoch,
                                         om.expire_timestamp)
            keys.append(ol.encode_offset_commit_key(group_id, topic, partition))
            values.append(ol.encode_offset_commit_value(value))
            entries.append((tp, value))
        return results, keys, values, entries

    def _append(self, group_id: str, keys: list[bytes], values: list,
                producer_id: int = NO_PRODUCER_ID, producer_epoch: int = NO_PRODUCER_EPOCH):
        """One batch to the group's offsets partition, durable before it is applied. Built
        here, so it skips the client batch rules (LogValidator checks those for CLIENT appends
        only; they would refuse a transactional batch without a sequence)."""
        batch = build_batch(values, keys, producer_id=producer_id, producer_epoch=producer_epoch,
                            transactional=producer_id != NO_PRODUCER_ID, now_ms=self._time())
        partition = self._broker.partition(CONSUMER_OFFSETS_TOPIC,
                                           self._broker.offsets_partition(group_id))
        return partition.append(batch, origin=AppendOrigin.COORDINATOR, durable=True,
                                validate=False)

    # -- shutdown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Answer every parked JoinGroup / SyncGroup with NOT_COORDINATOR (Kafka's unload)."""
        self._closed = True
        with self._groups_lock:
            groups = list(self._groups.values())
        for group in groups:
            out = _Outbox()
            with group.lock:
                for member in group.members.values():
                    group.complete_join(member, _join_error(member.member_id,
                                                            errors.NotCoordinator.code), out)
                    group.complete_sync(member, _sync_error(errors.NotCoordinator.code), out)
            out.flush()


def _inconsistent(requested: str | None, current: str | None) -> bool:
    """isProtocolInconsistent: both given and different."""
    return requested is not None and current is not None and requested != current


def _utf16_length(text: str) -> int:
    """Java's String.length(), which offset.metadata.max.bytes is compared against."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _describe(group: _Group) -> GroupDescription:
    stable = group.state == STABLE
    members = tuple(
        MemberDescription(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                          m.metadata(group.protocol_name) if stable else b"",
                          m.assignment if stable else b"")
        for m in group.members.values())
    return GroupDescription(group.group_id, group.state, group.protocol_type or "",
                            (group.protocol_name or "") if stable else "", members)
