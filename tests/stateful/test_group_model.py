"""A hypothesis state machine plays consumer clients against a real GroupCoordinator.

Goal: no sequence of client requests and clock moves breaks the classic group state machine.
Method: up to five simulated clients (some static, with different assignor lists) join, rejoin,
sync (the leader computes a range assignment from the JoinGroup metadata), heartbeat, leave and
commit in any order, with some requests superseding parked ones, while the fake clock jumps
by up to more than the rebalance timeout and expire_members() runs. Only Kafka-coded errors
may come back. After every step the group's own bookkeeping is recomputed and compared, and
liveness is checked: a rebalancing group always has a timer that will end the phase, and a
member not waiting on the coordinator always has a session deadline. Successful JoinGroup
answers of one generation (of one incarnation of the group) agree on the protocol, and on the
leader unless static members replace it. At the end, letting time run answers every parked
request.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from logstore.errors import LogstoreError
from txn import assignors
from txn import consumer_protocol as cp
from txn.broker import Broker
from txn.group_coordinator import (COMPLETING_REBALANCE, EMPTY, PREPARING_REBALANCE, STABLE,
                                   OffsetAndMetadata)

CONFIG = {"transaction.state.log.num.partitions": 1, "offsets.topic.num.partitions": 1}
SESSION_MS = 10_000
MAX_CLIENTS = 5
GROUP = "g"
PROTOCOL_CHOICES = [("range",), ("range", "roundrobin"), ("roundrobin", "range")]
TOPICS = {"t": 4, "u": 2}


class Clock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


class Client:
    def __init__(self, index: int, instance: str | None, protocols, rebalance_ms: int):
        self.client_id = f"c{index}"
        self.instance = instance
        subscription = cp.encode_subscription(cp.Subscription(sorted(TOPICS)), 0)
        self.protocols = [(name, subscription) for name in protocols]
        self.rebalance_ms = rebalance_ms
        self.member_id = ""
        self.joined = None                  # the last successful JoinResult
        self.futures = []


class GroupMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="logstore-groups-")
        self.clock = Clock()
        self.broker = None
        self.clients: list[Client] = []
        self.generations: dict[int, tuple[str, str]] = {}

    def start(self, delay_ms: int) -> None:
        self.broker = Broker(self.root, {**CONFIG, "group.initial.rebalance.delay.ms": delay_ms},
                             time_ms=self.clock, background=False)
        self.gc = self.broker.group_coordinator

    def teardown(self):
        try:
            if self.broker is not None:
                for _ in range(4):
                    self.clock.now += 31_000
                    self.gc.expire_members()
                    self.collect()
                parked = [f for c in self.clients for f in c.futures if not f.done()]
                assert not parked, f"{len(parked)} requests never answered"
                self.broker.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- clients ----------------------------------------------------------------------------

    @precondition(lambda self: self.broker is None)
    @rule(delay=st.sampled_from([0, 0, 3000]))
    def open_broker(self, delay):
        self.start(delay)

    @precondition(lambda self: self.broker is not None and len(self.clients) < MAX_CLIENTS)
    @rule(static=st.booleans(), protocols=st.sampled_from(PROTOCOL_CHOICES),
          rebalance_ms=st.sampled_from([10_000, 30_000]))
    def add_client(self, static, protocols, rebalance_ms):
        index = len(self.clients)
        self.clients.append(Client(index, f"i{index}" if static else None, protocols,
                                   rebalance_ms))

    def client(self, data) -> Client:
        return self.clients[data.draw(st.integers(0, len(self.clients) - 1))]

    @precondition(lambda self: self.clients)
    @rule(data=st.data(), require_known=st.booleans(), forget=st.booleans())
    def join(self, data, require_known, forget):
        c = self.client(data)
        member_id = "" if forget else c.member_id    # a restarted client forgets its id
        c.futures.append(("join", self.gc.join_group(
            GROUP, member_id, c.instance, c.client_id, "host", SESSION_MS, c.rebalance_ms,
            "consumer", c.protocols, require_known)))

    @precondition(lambda self: any(c.joined for c in self.clients))
    @rule(data=st.data())
    def sync(self, data):
        c = self.client(data)
        if c.joined is None:
            return
        r = c.joined
        assignments = {}
        if r.members:
            assignments = assignors.assign_members(
                r.protocol_name, [(m.member_id, m.group_instance_id, m.metadata)
                                  for m in r.members], TOPICS)
        c.futures.append(("sync", self.gc.sync_group(GROUP, r.generation_id, r.member_id,
                                                     "consumer", r.protocol_name, assignments,
                                                     c.instance)))

    @precondition(lambda self: any(c.member_id for c in self.clients))
    @rule(data=st.data())
    def heartbeat(self, data):
        c = self.client(data)
        generation = c.joined.generation_id if c.joined else -1
        try:
            self.gc.heartbeat(GROUP, generation, c.member_id, c.instance)
        except LogstoreError:
            pass

    @precondition(lambda self: any(c.member_id for c in self.clients))
    @rule(data=st.data(), by_instance=st.booleans())
    def leave(self, data, by_instance):
        c = self.client(data)
        who = ("", c.instance) if by_instance and c.instance else (c.member_id, c.instance)
        self.gc.leave_group(GROUP, [who])

    @precondition(lambda self: any(c.joined for c in self.clients))
    @rule(data=st.data(), offset=st.integers(0, 100))
    def commit(self, data, offset):
        c = self.client(data)
        if c.joined is None:
            return
        try:
            self.gc.commit_offsets(GROUP, c.joined.generation_id, c.member_id,
                                   {("t", 0): OffsetAndMetadata(offset)}, c.instance)
        except LogstoreError:
            pass

    @precondition(lambda self: self.broker is not None)
    @rule(ms=st.sampled_from([0, 1000, 3000, 6000, 11_000, 31_000]))
    def tick(self, ms):
        self.clock.now += ms
        self.gc.expire_members()
        self.collect()
        if GROUP not in self.gc._groups:        # forgotten (Empty, no offsets): the next
            self.generations.clear()            # incarnation counts generations from 0 again

    # -- answers ------------------------------------------------------------------------------

    def collect(self) -> None:
        for c in self.clients:
            still = []
            for kind, future in c.futures:
                if not future.done():
                    still.append((kind, future))
                elif kind == "join":
                    self.on_join(c, future.result())
            c.futures = still

    def on_join(self, c: Client, r) -> None:
        if r.error_code == 0:
            c.member_id, c.joined = r.member_id, r
            seen = self.generations.setdefault(r.generation_id, (r.leader, r.protocol_name))
            assert r.protocol_name == seen[1], (r, seen)
            if not any(other.instance for other in self.clients):
                assert r.leader == seen[0], (r, seen)   # (a static member replacing the
            if r.members:                               # leader changes the leader id)
                assert r.leader == r.member_id
        elif r.member_id:
            c.member_id = r.member_id               # MEMBER_ID_REQUIRED hands one out

    @invariant()
    def answers_are_consistent(self):
        if self.broker is not None:
            self.collect()

    @invariant()
    def bookkeeping_matches_the_members(self):
        if self.broker is None:
            return
        group = self.gc._groups.get(GROUP)
        if group is None:
            return
        with group.lock:
            members = group.members
            if group.state == EMPTY:
                assert not members
            assert group.num_awaiting_join == sum(m.join_future is not None
                                                  for m in members.values())
            assert (group.leader_id in members) if members else group.leader_id is None
            expected = Counter(name for m in members.values() for name, _ in m.protocols)
            assert +group.supported_protocols == expected
            assert group.static_members == {m.group_instance_id: m.member_id
                                            for m in members.values()
                                            if m.group_instance_id is not None}
            assert group.pending_sync <= set(members)
            check_liveness(group)


def check_liveness(group) -> None:
    for m in group.members.values():
        if m.join_future is not None:
            assert group.state == PREPARING_REBALANCE
        if m.sync_future is not None:
            assert group.state == COMPLETING_REBALANCE
        if m.join_future is None and m.sync_future is None:
            assert m.heartbeat_deadline is not None, f"{m.member_id} can never expire"
    if group.state == PREPARING_REBALANCE:
        assert group.join_timer is not None, "a rebalance nothing will complete"
    if group.state == COMPLETING_REBALANCE:
        assert group.sync_deadline is not None and group.pending_sync
    if group.state == STABLE:
        assert all(m.join_future is None and m.sync_future is None
                   for m in group.members.values())


TestGroupMachine = GroupMachine.TestCase
