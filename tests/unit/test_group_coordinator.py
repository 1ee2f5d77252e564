"""GroupCoordinator on a real Broker (tmp directory, fake clock, no background thread).

Goal: the classic group protocol behaves as Kafka's (join phases that complete together, one
leader per generation, rebalances on join/leave/expiry, heartbeat and sync errors, static
members, MEMBER_ID_REQUIRED), and committed offsets, plain and transactional, are durable
Kafka records that a restarted broker replays to the same answers. Method: drive the
coordinator as clients would, from several threads where it matters, move the fake clock and
call expire_members() for timeouts, write markers on the offsets partition directly (or end the
transaction through the transaction coordinator), and reopen the broker on the same directory.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from logstore.record_batch import build_batch
from txn import errors
from txn import offsets_log as ol
from txn.broker import CONSUMER_OFFSETS_TOPIC, Broker
from txn.group_coordinator import (COMPLETING_REBALANCE, DEAD, EMPTY, NON_EMPTY_GROUP,
                                   PREPARING_REBALANCE, STABLE, OffsetAndMetadata)

CONFIG = {"transaction.state.log.num.partitions": 3, "offsets.topic.num.partitions": 3}
SESSION_MS = 10_000
REBALANCE_MS = 30_000
WAIT_S = 10
RANGE = [("range", b"meta")]
OK = 0


class Clock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    opened = []

    def open_broker(**config):
        broker = Broker(str(tmp_path / "data"), {**CONFIG, **config}, time_ms=clock,
                        background=False)
        opened.append(broker)
        return broker

    yield SimpleNamespace(clock=clock, open=open_broker)
    for broker in opened:
        broker.close()


def join(gc, member_id="", *, group="g", client="c", protocols=RANGE, instance=None,
         session=SESSION_MS, rebalance=REBALANCE_MS, protocol_type="consumer",
         require_known=False):
    return gc.join_group(group, member_id, instance, client, "/127.0.0.1", session, rebalance,
                         protocol_type, protocols, require_known)


def sync(gc, joined, assignments=None, group="g"):
    return gc.sync_group(group, joined.generation_id, joined.member_id, "consumer",
                         joined.protocol_name, assignments or {})


def stable_group(gc, size: int, group: str = "g"):
    """Form a Stable group of `size` dynamic members with initial delay 0 (the first member
    joins alone, the others' joins make it rejoin). Returns the JoinResults, leader first."""
    first = join(gc, group=group, client="c0").result(WAIT_S)
    others = [join(gc, group=group, client=f"c{i}") for i in range(1, size)]
    results = [join(gc, first.member_id, group=group).result(WAIT_S)]
    results += [f.result(WAIT_S) for f in others]
    leader = next(r for r in results if r.member_id == r.leader)
    followers = [r for r in results if r is not leader]
    syncs = [sync(gc, r, group=group) for r in followers]
    sync(gc, leader, {r.member_id: r.member_id.encode() for r in results}, group).result(WAIT_S)
    for f in syncs:
        assert f.result(WAIT_S).error_code == OK
    assert gc.describe_groups([group])[0].state == STABLE
    return [leader] + followers


def state_of(gc, group="g"):
    return gc.describe_groups([group])[0].state


# -- membership ---------------------------------------------------------------------------------

def test_a_lone_member_joins_leads_and_syncs(env):
    gc = env.open().group_coordinator
    joined = join(gc).result(WAIT_S)
    assert joined.error_code == OK and joined.generation_id == 1
    assert joined.leader == joined.member_id and joined.member_id.startswith("c-")
    assert joined.protocol_name == "range" and joined.protocol_type == "consumer"
    assert [(m.member_id, m.metadata) for m in joined.members] == [(joined.member_id, b"meta")]
    assert state_of(gc) == COMPLETING_REBALANCE
    synced = sync(gc, joined, {joined.member_id: b"mine"}).result(WAIT_S)
    assert (synced.error_code, synced.assignment, synced.protocol_name) == (OK, b"mine", "range")
    assert state_of(gc) == STABLE


def test_joins_from_threads_complete_together_after_the_initial_delay(env):
    gc = env.open(**{"group.initial.rebalance.delay.ms": 3000}).group_coordinator
    with ThreadPoolExecutor(5) as pool:
        futures = list(pool.map(lambda i: join(gc, client=f"t{i}"), range(5)))
    assert not any(f.done() for f in futures)
    description = gc.describe_groups(["g"])[0]
    assert description.state == PREPARING_REBALANCE and len(description.members) == 5
    env.clock.advance(3000)
    gc.expire_members()          # members kept arriving during the delay: it is extended once
    assert not any(f.done() for f in futures)
    env.clock.advance(3000)
    gc.expire_members()
    results = [f.result(WAIT_S) for f in futures]
    assert {r.error_code for r in results} == {OK}
    assert {r.generation_id for r in results} == {1}
    assert len({r.leader for r in results}) == 1
    leaders = [r for r in results if r.member_id == r.leader]
    assert len(leaders) == 1 and len(leaders[0].members) == 5
    assert all(r.members == () for r in results if r is not leaders[0])


def test_sync_parks_followers_until_the_leader_assigns(env):
    gc = env.open(**{"group.initial.rebalance.delay.ms": 3000}).group_coordinator
    futures = [join(gc, client=f"t{i}") for i in range(3)]
    env.clock.advance(6000)
    gc.expire_members()
    results = [f.result(WAIT_S) for f in futures]
    leader = next(r for r in results if r.member_id == r.leader)
    followers = [r for r in results if r is not leader]
    with ThreadPoolExecutor(2) as pool:
        parked = list(pool.map(lambda r: sync(gc, r), followers))
    assert not any(f.done() for f in parked)
    assignments = {followers[0].member_id: b"first"}          # the other one is left out
    mine = sync(gc, leader, {**assignments, leader.member_id: b"lead"}).result(WAIT_S)
    assert mine.assignment == b"lead"
    assert parked[0].result(WAIT_S).assignment == b"first"
    assert parked[1].result(WAIT_S).assignment == b""
    assert state_of(gc) == STABLE
    again = sync(gc, followers[0]).result(WAIT_S)             # Stable: the current assignment
    assert (again.error_code, again.assignment) == (OK, b"first")


def test_rejoins_from_threads_complete_when_the_last_member_rejoins(env):
    gc = env.open().group_coordinator
    members = stable_group(gc, 3)
    generation = members[0].generation_id
    newcomer = join(gc, client="new")                         # starts a rebalance
    assert state_of(gc) == PREPARING_REBALANCE and not newcomer.done()
    barrier = threading.Barrier(3)

    def rejoin(joined):
        barrier.wait()
        return join(gc, joined.member_id).result(WAIT_S)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(rejoin, members)) + [newcomer.result(WAIT_S)]
    assert {r.generation_id for r in results} == {generation + 1}
    assert len({r.leader for r in results}) == 1
    assert sum(1 for r in results if r.members) == 1
    assert len(next(r for r in results if r.members).members) == 4


def test_leave_triggers_a_rebalance_and_a_new_generation(env):
    gc = env.open().group_coordinator
    leader, follower = stable_group(gc, 2)
    [left] = gc.leave_group("g", [follower.member_id])
    assert left.error is None
    assert state_of(gc) == PREPARING_REBALANCE
    with pytest.raises(errors.RebalanceInProgress):
        gc.heartbeat("g", leader.generation_id, leader.member_id)
    rejoined = join(gc, leader.member_id).result(WAIT_S)
    assert rejoined.generation_id == leader.generation_id + 1
    assert [m.member_id for m in rejoined.members] == [leader.member_id]
    [again] = gc.leave_group("g", [follower.member_id])
    assert isinstance(again.error, errors.UnknownMemberId)


def test_last_member_leaving_empties_the_group_and_it_is_forgotten(env):
    gc = env.open().group_coordinator
    [only] = stable_group(gc, 1)
    gc.leave_group("g", [only.member_id])
    assert state_of(gc) == EMPTY
    gc.expire_members()                                         # no offsets: forgotten
    assert state_of(gc) == DEAD and gc.list_groups() == []


def test_session_expiry_with_a_fake_clock(env):
    gc = env.open().group_coordinator
    leader, follower = stable_group(gc, 2)
    for _ in range(4):                        # the leader heartbeats, the follower is silent
        env.clock.advance(SESSION_MS // 4)
        gc.heartbeat("g", leader.generation_id, leader.member_id)
    gc.expire_members()
    description = gc.describe_groups(["g"])[0]
    assert description.state == PREPARING_REBALANCE
    assert [m.member_id for m in description.members] == [leader.member_id]
    with pytest.raises(errors.UnknownMemberId):
        gc.heartbeat("g", follower.generation_id, follower.member_id)
    rejoined = join(gc, leader.member_id).result(WAIT_S)
    assert rejoined.generation_id == leader.generation_id + 1 and len(rejoined.members) == 1


def test_members_that_do_not_rejoin_are_removed_at_the_rebalance_timeout(env):
    gc = env.open().group_coordinator
    leader, follower = stable_group(gc, 2)
    rejoin = join(gc, leader.member_id)                       # the leader forces a rebalance
    assert not rejoin.done()
    for _ in range(REBALANCE_MS // 5000):                      # the follower keeps heartbeating
        env.clock.advance(5000)
        with pytest.raises(errors.RebalanceInProgress):
            gc.heartbeat("g", follower.generation_id, follower.member_id)
        gc.expire_members()
    result = rejoin.result(WAIT_S)
    assert result.generation_id == leader.generation_id + 1
    assert [m.member_id for m in result.members] == [leader.member_id]


def test_a_member_that_never_syncs_is_removed_after_the_rebalance_timeout(env):
    gc = env.open().group_coordinator
    leader, follower = stable_group(gc, 2)
    again = [join(gc, leader.member_id), join(gc, follower.member_id)]
    results = [f.result(WAIT_S) for f in again]
    new_leader = next(r for r in results if r.member_id == r.leader)
    sync(gc, new_leader, {}).result(WAIT_S)                   # the follower never syncs
    env.clock.advance(REBALANCE_MS)
    gc.heartbeat("g", new_leader.generation_id, new_leader.member_id)   # fires the timers
    description = gc.describe_groups(["g"])[0]
    assert description.state == PREPARING_REBALANCE
    assert [m.member_id for m in description.members] == [new_leader.member_id]


def test_heartbeat_errors(env):
    gc = env.open().group_coordinator
    with pytest.raises(errors.UnknownMemberId):
        gc.heartbeat("nope", 1, "someone")
    with pytest.raises(errors.InvalidGroupId):
        gc.heartbeat("", 1, "someone")
    joined = join(gc).result(WAIT_S)
    gc.heartbeat("g", joined.generation_id, joined.member_id)   # CompletingRebalance: fine
    with pytest.raises(errors.UnknownMemberId):
        gc.heartbeat("g", joined.generation_id, "stranger")
    with pytest.raises(errors.IllegalGeneration):
        gc.heartbeat("g", joined.generation_id + 1, joined.member_id)
    sync(gc, joined, {}).result(WAIT_S)
    gc.heartbeat("g", joined.generation_id, joined.member_id)   # Stable
    pending = join(gc, client="other")
    with pytest.raises(errors.RebalanceInProgress):
        gc.heartbeat("g", joined.generation_id, joined.member_id)
    assert not pending.done()


def test_sync_errors(env):
    gc = env.open().group_coordinator
    joined = join(gc).result(WAIT_S)
    wrong_generation = gc.sync_group("g", 7, joined.member_id, None, None, {}).result(WAIT_S)
    assert wrong_generation.error_code == errors.IllegalGeneration.code
    unknown = gc.sync_group("g", 1, "x", None, None, {}).result(WAIT_S)
    assert unknown.error_code == errors.UnknownMemberId.code
    inconsistent = gc.sync_group("g", 1, joined.member_id, "consumer", "roundrobin",
                                 {}).result(WAIT_S)
    assert isinstance(inconsistent.error, errors.InconsistentGroupProtocol)
    assert gc.sync_group("", 1, "x", None, None, {}).result(WAIT_S).error_code == \
        errors.InvalidGroupId.code
    join(gc, client="other")                                   # PreparingRebalance now
    during = gc.sync_group("g", 1, joined.member_id, None, None, {}).result(WAIT_S)
    assert during.error_code == errors.RebalanceInProgress.code


def test_a_new_member_cancels_a_parked_sync_with_rebalance_in_progress(env):
    gc = env.open().group_coordinator
    leader, follower = stable_group(gc, 2)
    results = [f.result(WAIT_S) for f in (join(gc, leader.member_id),
                                          join(gc, follower.member_id))]
    new_follower = next(r for r in results if r.member_id != r.leader)
    parked = sync(gc, new_follower)
    assert not parked.done()
    join(gc, client="third")
    assert parked.result(WAIT_S).error_code == errors.RebalanceInProgress.code


def test_member_id_required_flow(env):
    gc = env.open().group_coordinator
    first = join(gc, require_known=True).result(WAIT_S)
    assert first.error_code == errors.MemberIdRequired.code and first.member_id
    assert first.generation_id == -1
    joined = join(gc, first.member_id, require_known=True).result(WAIT_S)
    assert joined.error_code == OK and joined.member_id == first.member_id
    # a pending member that never comes back expires after its session timeout
    sync(gc, joined, {}).result(WAIT_S)
    stray = join(gc, require_known=True).result(WAIT_S)
    assert stray.error_code == errors.MemberIdRequired.code
    rejoin = join(gc, joined.member_id, require_known=True)   # leader rejoin: rebalance
    assert not rejoin.done()                                  # waits for the pending member
    env.clock.advance(SESSION_MS)
    gc.expire_members()
    assert rejoin.result(WAIT_S).generation_id == joined.generation_id + 1


def test_protocol_selection_by_vote(env):
    gc = env.open(**{"group.initial.rebalance.delay.ms": 1000}).group_coordinator
    both = [("range", b"r"), ("roundrobin", b"rr")]
    reverse = [("roundrobin", b"rr"), ("range", b"r")]
    futures = [join(gc, protocols=both), join(gc, protocols=reverse),
               join(gc, protocols=reverse + [("sticky", b"s")])]
    env.clock.advance(2000)
    gc.expire_members()
    results = [f.result(WAIT_S) for f in futures]
    assert {r.protocol_name for r in results} == {"roundrobin"}
    leader = next(r for r in results if r.members)
    assert {m.metadata for m in leader.members} == {b"rr"}


def test_inconsistent_group_protocol(env):
    gc = env.open().group_coordinator
    joined = join(gc, protocols=[("range", b"")]).result(WAIT_S)
    assert join(gc, protocols=[("sticky", b"")]).result(WAIT_S).error_code == \
        errors.InconsistentGroupProtocol.code
    other_type = join(gc, protocols=[("range", b"")], protocol_type="connect").result(WAIT_S)
    assert other_type.error_code == errors.InconsistentGroupProtocol.code
    assert join(gc, group="empty", protocols=[]).result(WAIT_S).error_code == \
        errors.InconsistentGroupProtocol.code
    assert state_of(gc) == COMPLETING_REBALANCE and joined.error_code == OK


def test_join_argument_errors(env):
    gc = env.open().group_coordinator
    assert join(gc, session=1000).result(WAIT_S).error_code == errors.InvalidSessionTimeout.code
    assert join(gc, group="").result(WAIT_S).error_code == errors.InvalidGroupId.code
    unknown = join(gc, "ghost", group="nope").result(WAIT_S)
    assert unknown.error_code == errors.UnknownMemberId.code and unknown.member_id == "ghost"
    assert state_of(gc, "nope") == DEAD


def test_a_static_member_rejoining_keeps_its_assignment_without_a_rebalance(env):
    gc = env.open().group_coordinator
    first = join(gc, instance="inst-a").result(WAIT_S)
    assert first.member_id.startswith("inst-a-")
    sync(gc, first, {first.member_id: b"assigned"}).result(WAIT_S)
    restarted = join(gc, instance="inst-a").result(WAIT_S)    # unknown member id, known instance
    assert restarted.error_code == OK and restarted.member_id != first.member_id
    assert restarted.generation_id == first.generation_id and restarted.members == ()
    assert restarted.leader == first.member_id                # the old id: do not re-assign
    assert state_of(gc) == STABLE
    synced = gc.sync_group("g", restarted.generation_id, restarted.member_id, None, None, {},
                           "inst-a").result(WAIT_S)
    assert synced.assignment == b"assigned"
    with pytest.raises(errors.FencedInstanceId):
        gc.heartbeat("g", first.generation_id, first.member_id, "inst-a")
    [left] = gc.leave_group("g", [("", "inst-a")])
    assert left.error is None and state_of(gc) == EMPTY       # its only member left


def test_describe_and_list_groups(env):
    gc = env.open().group_coordinator
    [leader] = stable_group(gc, 1)
    gc.commit_offsets("offsets-only", -1, "", {("t", 0): OffsetAndMetadata(1)})
    [described, unknown] = gc.describe_groups(["g", "unknown"])
    assert (described.state, described.protocol_type, described.protocol_data) == (
        STABLE, "consumer", "range")
    [member] = described.members
    assert (member.member_id, member.client_id, member.client_host, member.metadata,
            member.assignment) == (leader.member_id, "c0", "/127.0.0.1", b"meta",
                                   leader.member_id.encode())
    assert (unknown.state, unknown.members) == (DEAD, ())
    listed = {g.group_id: (g.protocol_type, g.state) for g in gc.list_groups()}
    assert listed == {"g": ("consumer", STABLE), "offsets-only": ("", EMPTY)}
    assert [g.group_id for g in gc.list_groups(states={EMPTY})] == ["offsets-only"]


def test_close_answers_parked_requests(env):
    broker = env.open(**{"group.initial.rebalance.delay.ms": 3000})
    parked = join(broker.group_coordinator)
    broker.close()
    assert parked.result(WAIT_S).error_code == errors.NotCoordinator.code


# -- offsets ------------------------------------------------------------------------------------

def offsets_records(broker, group="g"):
    """(key, value) of every record of the group's offsets partition, decoded."""
    partition = broker.partition(CONSUMER_OFFSETS_TOPIC, broker.offsets_partition(group))
    found = []
    for batch in partition.log.batches():
        if not batch.is_control:
            found += [(r.key, r.value, batch) for r in batch.records()]
    return found


def test_committed_offsets_survive_a_restart(env):
    broker = env.open()
    gc = broker.group_coordinator
    [leader] = stable_group(gc, 1)
    result = gc.commit_offsets("g", leader.generation_id, leader.member_id, {
        ("orders", 0): OffsetAndMetadata(42, leader_epoch=3, metadata="m"),
        ("orders", 1): OffsetAndMetadata(7, commit_timestamp=123)})
    assert result == {("orders", 0): None, ("orders", 1): None}
    gc.commit_offsets("g", leader.generation_id, leader.member_id,
                      {("orders", 0): OffsetAndMetadata(43)})
    expected = {("orders", 0): OffsetAndMetadata(43, -1, "", env.clock.now),
                ("orders", 1): OffsetAndMetadata(7, -1, "", 123)}
    assert gc.fetch_offsets("g") == expected
    broker.close()
    gc = env.open().group_coordinator
    assert gc.fetch_offsets("g") == expected
    assert gc.fetch_offsets("g", [("orders", 1), ("other", 0)]) == {
        ("orders", 1): expected[("orders", 1)], ("other", 0): OffsetAndMetadata(-1)}
    assert gc.describe_groups(["g"])[0].state == EMPTY        # membership is not persisted
    with pytest.raises(errors.UnknownMemberId):
        gc.commit_offsets("g", leader.generation_id, leader.member_id,
                          {("orders", 0): OffsetAndMetadata(44)})


def test_records_are_kafka_offset_commit_key_v1_and_value_v3_or_v1(env):
    broker = env.open()
    gc = broker.group_coordinator
    gc.commit_offsets("g", -1, "", {("t", 2): OffsetAndMetadata(9, 4, "md", 1000)})
    gc.commit_offsets("g", -1, "", {("t", 3): OffsetAndMetadata(10, commit_timestamp=1000,
                                                                 expire_timestamp=5000)})
    [(key1, value1, batch1), (key2, value2, _)] = offsets_records(broker)
    assert key1 == b"\x00\x01" b"\x00\x01g" b"\x00\x01t" b"\x00\x00\x00\x02"
    assert value1 == (b"\x00\x03" + (9).to_bytes(8, "big") + (4).to_bytes(4, "big")
                      + b"\x00\x02md" + (1000).to_bytes(8, "big"))
    assert value2 == (b"\x00\x01" + (10).to_bytes(8, "big") + b"\x00\x00"
                      + (1000).to_bytes(8, "big") + (5000).to_bytes(8, "big"))
    assert ol.decode_key(key2) == ol.OffsetCommitKey("g", "t", 3)
    assert batch1.producer_id == -1 and not batch1.is_transactional


def test_replay_reads_every_value_version_and_skips_records_it_does_not_own(env):
    broker = env.open()
    partition = broker.partition(CONSUMER_OFFSETS_TOPIC, broker.offsets_partition("g"))
    keys, values = [], []
    for version, p in ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4)):
        keys.append(ol.encode_offset_commit_key("g", "t", p, version=version % 2))
        values.append(ol.encode_offset_commit_value(
            ol.OffsetCommitValue(100 + p, f"v{version}", 5, 7), version))
    keys += [ol.encode_group_metadata_key("g"), b"\x00\x05\x00\x01g"]   # ours / not ours
    values += [b"\x00\x03whatever", b"\x00\x00"]
    partition.append(build_batch(values, keys), validate=False, durable=True)
    broker.close()
    fetched = env.open().group_coordinator.fetch_offsets("g")
    assert {tp: (om.offset, om.metadata, om.leader_epoch) for tp, om in fetched.items()} == {
        ("t", 0): (100, "v0", -1), ("t", 1): (101, "v1", -1), ("t", 2): (102, "v2", -1),
        ("t", 3): (103, "v3", 7), ("t", 4): (104, "v4", 7)}


def test_an_unreadable_offsets_record_names_where_it_is(env):
    broker = env.open()
    partition = broker.partition(CONSUMER_OFFSETS_TOPIC, 0)
    partition.append(build_batch([b"\x00\x09"], [ol.encode_offset_commit_key("g", "t", 0)]),
                     validate=False, durable=True)
    broker.close()
    with pytest.raises(errors.UnsupportedVersion, match="__consumer_offsets-0: batch at offset 0"):
        env.open()


def test_metadata_too_large_fails_only_that_partition(env):
    gc = env.open(**{"offset.metadata.max.bytes": 4}).group_coordinator
    result = gc.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(1, metadata="12345"),
                                             ("t", 1): OffsetAndMetadata(2, metadata="1234"),
                                             ("t", 2): OffsetAndMetadata(3, metadata="ééé")})
    assert isinstance(result[("t", 0)], errors.OffsetMetadataTooLarge)
    assert result[("t", 1)] is None and result[("t", 2)] is None   # counted in UTF-16 units
    fetched = gc.fetch_offsets("g", [("t", 0), ("t", 1)])
    assert fetched[("t", 0)].offset == -1 and fetched[("t", 1)].offset == 2


def test_simple_commits_and_group_checks(env):
    gc = env.open().group_coordinator
    assert gc.commit_offsets("simple", -1, "", {("t", 0): OffsetAndMetadata(5)}) == {
        ("t", 0): None}
    with pytest.raises(errors.IllegalGeneration):               # a generation, but no group
        gc.commit_offsets("absent", 3, "m", {("t", 0): OffsetAndMetadata(5)})
    leader, follower = stable_group(gc, 2)
    with pytest.raises(errors.UnknownMemberId):                 # members exist: not simple
        gc.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(5)})
    with pytest.raises(errors.IllegalGeneration):
        gc.commit_offsets("g", leader.generation_id - 1, leader.member_id,
                          {("t", 0): OffsetAndMetadata(5)})
    with pytest.raises(errors.UnknownMemberId):
        gc.commit_offsets("g", leader.generation_id, "stranger", {("t", 0): OffsetAndMetadata(5)})
    rejoined = [f.result(WAIT_S) for f in (join(gc, leader.member_id),
                                           join(gc, follower.member_id))]
    assert state_of(gc) == COMPLETING_REBALANCE
    with pytest.raises(errors.RebalanceInProgress):
        gc.commit_offsets("g", rejoined[0].generation_id, rejoined[0].member_id,
                          {("t", 0): OffsetAndMetadata(5)})
    with pytest.raises(errors.InvalidGroupId):
        gc.commit_offsets(None, -1, "", {})


def test_a_commit_keeps_a_stable_member_alive(env):
    gc = env.open().group_coordinator
    [leader] = stable_group(gc, 1)
    for _ in range(3):
        env.clock.advance(SESSION_MS - 1)
        gc.commit_offsets("g", leader.generation_id, leader.member_id,
                          {("t", 0): OffsetAndMetadata(1)})
        gc.expire_members()
    assert state_of(gc) == STABLE


def test_delete_groups(env):
    broker = env.open()
    gc = broker.group_coordinator
    gc.commit_offsets("gone", -1, "", {("t", 0): OffsetAndMetadata(5),
                                       ("u", 1): OffsetAndMetadata(6)})
    stable_group(gc, 1, group="busy")
    results = gc.delete_groups(["gone", "busy", "never"])
    assert results["gone"] is None
    assert results["busy"].code == NON_EMPTY_GROUP
    assert isinstance(results["never"], errors.GroupIdNotFound)
    assert gc.fetch_offsets("gone") == {}
    keys = [ol.decode_key(k) for k, v, _ in offsets_records(broker, "gone") if v is None]
    assert ol.GroupMetadataKey("gone") in keys and ol.OffsetCommitKey("gone", "t", 0) in keys
    broker.close()
    gc = env.open().group_coordinator
    assert gc.fetch_offsets("gone") == {} and state_of(gc, "gone") == DEAD


# -- transactional offsets ----------------------------------------------------------------------

def begin(broker, txn_id="tx", group="g"):
    tc = broker.transaction_coordinator
    pid, epoch = tc.init_producer_id(txn_id, 60_000)
    tc.add_offsets_to_txn(txn_id, pid, epoch, group)
    return pid, epoch


def write_marker(broker, pid, epoch, commit, group="g"):
    partition = broker.partition(CONSUMER_OFFSETS_TOPIC, broker.offsets_partition(group))
    partition.write_marker(pid, epoch, commit, broker.coordinator_epoch)
    broker.wait_for_completions(WAIT_S)


def test_transactional_offsets_are_pending_until_commit(env):
    broker = env.open()
    gc = broker.group_coordinator
    gc.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(1)})
    pid, epoch = begin(broker)
    result = gc.txn_offset_commit("tx", "g", pid, epoch, -1, "",
                                  {("t", 0): OffsetAndMetadata(10, metadata="txn"),
                                   ("t", 1): OffsetAndMetadata(20)})
    assert result == {("t", 0): None, ("t", 1): None}
    [*_, (_, _, batch)] = offsets_records(broker)
    assert batch.is_transactional and batch.producer_id == pid
    assert batch.producer_epoch == epoch and batch.base_sequence == -1
    assert gc.fetch_offsets("g", [("t", 0), ("t", 1)]) == {
        ("t", 0): OffsetAndMetadata(1, commit_timestamp=env.clock.now),
        ("t", 1): OffsetAndMetadata(-1)}
    stable = gc.fetch_offsets("g", [("t", 0), ("t", 1), ("t", 2)], require_stable=True)
    assert isinstance(stable[("t", 0)], errors.UnstableOffsetCommit)
    assert isinstance(stable[("t", 1)], errors.UnstableOffsetCommit)
    assert stable[("t", 2)] == OffsetAndMetadata(-1)
    write_marker(broker, pid, epoch, commit=True)
    committed = gc.fetch_offsets("g", require_stable=True)
    assert committed[("t", 0)].offset == 10 and committed[("t", 0)].metadata == "txn"
    assert committed[("t", 1)].offset == 20
    broker.close()
    assert env.open().group_coordinator.fetch_offsets("g", require_stable=True) == committed


def test_aborted_transactional_offsets_are_dropped(env):
    broker = env.open()
    gc = broker.group_coordinator
    gc.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(1)})
    pid, epoch = begin(broker)
    gc.txn_offset_commit("tx", "g", pid, epoch, -1, "", {("t", 0): OffsetAndMetadata(10)})
    write_marker(broker, pid, epoch, commit=False)
    expected = {("t", 0): OffsetAndMetadata(1, commit_timestamp=env.clock.now)}
    assert gc.fetch_offsets("g", require_stable=True) == expected
    broker.close()
    assert env.open().group_coordinator.fetch_offsets("g", require_stable=True) == expected


def test_pending_offsets_survive_a_restart_and_resolve_after_it(env):
    broker = env.open()
    pid, epoch = begin(broker)
    broker.group_coordinator.txn_offset_commit("tx", "g", pid, epoch, -1, "",
                                               {("t", 0): OffsetAndMetadata(10)})
    broker.close()
    broker = env.open()
    gc = broker.group_coordinator
    assert isinstance(gc.fetch_offsets("g", [("t", 0)], require_stable=True)[("t", 0)],
                      errors.UnstableOffsetCommit)
    write_marker(broker, pid, epoch, commit=True)
    assert gc.fetch_offsets("g", require_stable=True)[("t", 0)].offset == 10


def test_a_later_plain_commit_wins_over_an_earlier_transactional_one(env):
    broker = env.open()
    gc = broker.group_coordinator
    pid, epoch = begin(broker)
    gc.txn_offset_commit("tx", "g", pid, epoch, -1, "", {("t", 0): OffsetAndMetadata(10)})
    gc.commit_offsets("g", -1, "", {("t", 0): OffsetAndMetadata(99)})   # later in the log
    write_marker(broker, pid, epoch, commit=True)
    assert gc.fetch_offsets("g")[("t", 0)].offset == 99
    broker.close()
    assert env.open().group_coordinator.fetch_offsets("g")[("t", 0)].offset == 99


def test_a_tombstone_drops_pending_offsets(env):
    broker = env.open()
    gc = broker.group_coordinator
    pid, epoch = begin(broker)
    gc.txn_offset_commit("tx", "g", pid, epoch, -1, "", {("t", 0): OffsetAndMetadata(10)})
    assert gc.delete_groups(["g"]) == {"g": None}
    write_marker(broker, pid, epoch, commit=True)
    assert gc.fetch_offsets("g") == {}
    broker.close()
    assert env.open().group_coordinator.fetch_offsets("g") == {}


def test_end_txn_through_the_transaction_coordinator(env):
    broker = env.open()
    gc, tc = broker.group_coordinator, broker.transaction_coordinator
    [leader] = stable_group(gc, 1)
    pid, epoch = begin(broker)
    with pytest.raises(errors.IllegalGeneration):           # KIP-447 generation check
        gc.txn_offset_commit("tx", "g", pid, epoch, leader.generation_id + 5, leader.member_id,
                             {("t", 0): OffsetAndMetadata(10)})
    gc.txn_offset_commit("tx", "g", pid, epoch, leader.generation_id, leader.member_id,
                         {("t", 0): OffsetAndMetadata(10)})
    tc.end_txn("tx", pid, epoch, commit=True)
    broker.wait_for_completions(WAIT_S)
    assert gc.fetch_offsets("g", require_stable=True)[("t", 0)].offset == 10


def test_txn_offset_commit_needs_the_partition_in_the_transaction(env):
    broker = env.open()
    tc = broker.transaction_coordinator
    pid, epoch = tc.init_producer_id("tx", 60_000)                  # no AddOffsetsToTxn
    with pytest.raises(errors.InvalidTxnState):
        broker.group_coordinator.txn_offset_commit("tx", "g", pid, epoch, -1, "",
                                                   {("t", 0): OffsetAndMetadata(1)})
    assert broker.group_coordinator.fetch_offsets("g") == {}


def test_a_marker_seen_before_its_commit_is_applied_still_resolves_it(env):
    """The marker listener runs on the completion thread; it may run before the thread that
    appended the offsets applies them. The commit must not stay pending forever."""
    broker = env.open()
    gc = broker.group_coordinator
    pid, epoch = begin(broker)
    state = gc._state("g")
    original = state.put_pending
    entered, release = threading.Event(), threading.Event()

    def slow_put_pending(*args):
        entered.set()
        assert release.wait(WAIT_S)
        original(*args)

    state.put_pending = slow_put_pending
    with ThreadPoolExecutor(1) as pool:
        committing = pool.submit(gc.txn_offset_commit, "tx", "g", pid, epoch, -1, "",
                                 {("t", 0): OffsetAndMetadata(10)})
        assert entered.wait(WAIT_S)
        write_marker(broker, pid, epoch, commit=True)       # listener ran: nothing pending yet
        release.set()
        committing.result(WAIT_S)
    assert gc.fetch_offsets("g", require_stable=True)[("t", 0)].offset == 10


def test_concurrent_commits_from_threads_all_land(env):
    gc = env.open().group_coordinator

    def commit(i):
        return gc.commit_offsets(f"g{i % 3}", -1, "", {("t", i): OffsetAndMetadata(i)})

    with ThreadPoolExecutor(6) as pool:
        assert all(r == {("t", i): None} for i, r in enumerate(pool.map(commit, range(30))))
    for g in range(3):
        assert {tp: om.offset for tp, om in gc.fetch_offsets(f"g{g}").items()} == {
            ("t", i): i for i in range(g, 30, 3)}


def test_the_broker_scheduler_completes_a_delayed_join_in_the_background(tmp_path):
    """Real clock, background scheduler: the initial delay ends without anyone calling in."""
    broker = Broker(str(tmp_path / "bg"), {**CONFIG, "group.initial.rebalance.delay.ms": 50})
    try:
        joined = join(broker.group_coordinator)
        assert not joined.done()
        assert joined.result(WAIT_S).generation_id == 1     # expire_members runs every second
    finally:
        broker.close()
