"""Properties of the range and roundrobin assignors.

Goal: `range_assign` is Kafka's RangeAssignor and `roundrobin_assign` Kafka's
RoundRobinAssignor, for any group. Method: hypothesis draws members (some static, with a
group.instance.id), their subscriptions and topic sizes (including topics without metadata and
names whose Java and Python orders differ), then checks coverage (each partition of a subscribed
topic exactly once, only to subscribers), balance (range: within one per topic), determinism
(member order does not matter), equality with a line-by-line transcription of the Java code
written here, and equality with kafka-python's assignors (an independent implementation) for
dynamic members with ASCII ids (round robin: only where kafka-python's own version works).
"""

from __future__ import annotations

import functools
import types
import warnings
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from txn import assignors
from txn import consumer_protocol as cp

with warnings.catch_warnings():     # kafka-python's package import uses deprecated resources APIs
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

# "\uffff" sorts after "\U00010000" in Java (UTF-16 units) but before it in Python.
ID_CHARS = st.sampled_from(["a", "b", "c", "Z", "\uffff", "\U00010000", "-", "1"])
ids = st.text(ID_CHARS, min_size=1, max_size=4)
TOPIC_NAMES = ["t0", "t1", "t2", "orders", "\U00010000", "\uffff"]


@st.composite
def groups(draw, static=True):
    member_ids = draw(st.lists(ids, min_size=1, max_size=7, unique=True))
    topics = draw(st.lists(st.sampled_from(TOPIC_NAMES), min_size=1, max_size=4, unique=True))
    members = {m: draw(st.lists(st.sampled_from(topics), min_size=1, unique=True))
               for m in member_ids}
    sizes = {t: draw(st.integers(0, 12)) for t in topics if draw(st.integers(0, 5))}
    instances = {}
    if static:
        for m in member_ids:
            if draw(st.booleans()):
                instances[m] = draw(ids.filter(lambda i: i not in instances.values()))
    return members, sizes, instances


# -- Kafka's code, transcribed ----------------------------------------------------------------

def java_compare(a: str, b: str) -> int:
    """String.compareTo: UTF-16 code units."""
    ua, ub = a.encode("utf-16-be", "surrogatepass"), b.encode("utf-16-be", "surrogatepass")
    return (ua > ub) - (ua < ub)


def member_info_compare(a, b) -> int:
    """AbstractPartitionAssignor.MemberInfo.compareTo; a, b = (member_id, instance_id)."""
    if a[1] is not None and b[1] is not None:
        return java_compare(a[1], b[1])
    if a[1] is not None:
        return -1
    if b[1] is not None:
        return 1
    return java_compare(a[0], b[0])


def kafka_range(members, partitions_per_topic, instances):
    consumers_per_topic = {}
    for member_id, topics in members.items():
        for topic in topics:
            consumers_per_topic.setdefault(topic, []).append((member_id, instances.get(member_id)))
    assignment = {m: [] for m in members}
    for topic, consumers in consumers_per_topic.items():
        n = partitions_per_topic.get(topic)
        if n is None:
            continue
        consumers.sort(key=functools.cmp_to_key(member_info_compare))
        per_consumer = n // len(consumers)
        with_extra = n % len(consumers)
        partitions = [(topic, p) for p in range(n)]
        for i in range(len(consumers)):
            start = per_consumer * i + min(i, with_extra)
            length = per_consumer + (0 if i + 1 > with_extra else 1)
            assignment[consumers[i][0]].extend(partitions[start:start + length])
    return assignment


def kafka_roundrobin(members, partitions_per_topic, instances):
    assignment = {m: [] for m in members}
    infos = sorted(((m, instances.get(m)) for m in members),
                   key=functools.cmp_to_key(member_info_compare))
    topics = sorted({t for ts in members.values() for t in ts},
                    key=functools.cmp_to_key(java_compare))
    all_partitions = [(t, p) for t in topics if t in partitions_per_topic
                      for p in range(partitions_per_topic[t])]
    position = 0
    for topic, partition in all_partitions:
        while topic not in members[infos[position % len(infos)][0]]:
            position += 1
        assignment[infos[position % len(infos)][0]].append((topic, partition))
        position += 1
    return assignment


# -- properties ---------------------------------------------------------------------------------

def check_coverage(members, sizes, result):
    assert set(result) == set(members)
    given_out = Counter(tp for parts in result.values() for tp in parts)
    expected = {(t, p) for t in {t for ts in members.values() for t in ts} if t in sizes
                for p in range(sizes[t])}
    assert set(given_out) == expected
    assert all(count == 1 for count in given_out.values())
    for member_id, parts in result.items():
        assert all(topic in members[member_id] for topic, _ in parts)


@given(groups())
def test_range_covers_each_partition_once_and_balances_per_topic(group):
    members, sizes, instances = group
    result = assignors.range_assign(members, sizes, instances)
    check_coverage(members, sizes, result)
    for topic in sizes:
        counts = [sum(1 for t, _ in result[m] if t == topic)
                  for m in members if topic in members[m]]
        if counts:
            assert max(counts) - min(counts) <= 1


@given(groups(), st.randoms(use_true_random=False))
def test_range_and_roundrobin_are_deterministic(group, rnd):
    members, sizes, instances = group
    shuffled_ids = list(members)
    rnd.shuffle(shuffled_ids)
    shuffled = {m: list(reversed(members[m])) for m in shuffled_ids}
    for assign in (assignors.range_assign, assignors.roundrobin_assign):
        assert assign(members, sizes, instances) == assign(shuffled, sizes, instances)


@given(groups())
def test_range_equals_kafka_range_assignor(group):
    members, sizes, instances = group
    ours = assignors.range_assign(members, sizes, instances)
    theirs = kafka_range(members, sizes, instances)
    # Kafka walks its topics in HashMap order: the same sets; ours are sorted
    assert ours == {m: sorted(ps, key=lambda tp: (assignors.java_order(tp[0]), tp[1]))
                    for m, ps in theirs.items()}


@given(groups())
def test_roundrobin_covers_and_equals_kafka_roundrobin_assignor(group):
    members, sizes, instances = group
    result = assignors.roundrobin_assign(members, sizes, instances)
    check_coverage(members, sizes, result)
    assert result == kafka_roundrobin(members, sizes, instances)


def kafka_python_assign(assignor, members, sizes):
    cluster = types.SimpleNamespace(
        partitions_for_topic=lambda t: set(range(sizes[t])) if t in sizes else None)
    member_objs = [types.SimpleNamespace(member_id=m, group_instance_id=None,
                                         metadata=types.SimpleNamespace(topics=topics))
                   for m, topics in members.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = assignor.assign(cluster, member_objs)
    return {m: [(t, p) for t, ps in a.assigned_partitions for p in ps] for m, a in out.items()}


ascii_groups = groups(static=False).filter(
    lambda g: all(m.isascii() and all(t.isascii() for t in ts) for m, ts in g[0].items()))


@given(ascii_groups)
def test_range_equals_kafka_python_for_dynamic_members(group):
    members, sizes, _ = group
    ours = assignors.range_assign(members, sizes)
    theirs = kafka_python_assign(RangePartitionAssignor, members, sizes)
    assert {m: sorted(ps) for m, ps in ours.items()} == theirs


@given(ascii_groups.filter(lambda g: len({frozenset(ts) for ts in g[0].values()}) == 1))
def test_roundrobin_equals_kafka_python_when_all_members_subscribe_alike(group):
    """kafka-python's round robin breaks (KeyError) once it must skip a member, so the
    comparison is limited to groups where every member subscribes to every topic."""
    members, sizes, _ = group
    ours = assignors.roundrobin_assign(members, sizes)
    theirs = kafka_python_assign(RoundRobinPartitionAssignor, members, sizes)
    assert {m: sorted(ps) for m, ps in ours.items()} == theirs


@given(groups(), st.sampled_from([assignors.RANGE, assignors.ROUNDROBIN]),
       st.integers(0, 3))
def test_assign_members_round_trips_through_the_consumer_protocol(group, name, version):
    members, sizes, instances = group
    joined = [(m, instances.get(m), cp.encode_subscription(cp.Subscription(topics), version))
              for m, topics in members.items()]
    encoded = assignors.assign_members(name, joined, sizes)
    expected = assignors.ASSIGNORS[name](members, sizes, instances)
    for member_id, data in encoded.items():
        decoded = cp.decode_assignment(data)
        assert decoded.version == version
        assert sorted(decoded.partitions) == sorted(expected[member_id])


def test_kafka_javadoc_examples():
    members = {"C0": ["t0", "t1"], "C1": ["t0", "t1"]}
    assert assignors.range_assign(members, {"t0": 3, "t1": 3}) == {
        "C0": [("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)], "C1": [("t0", 2), ("t1", 2)]}
    assert assignors.roundrobin_assign(members, {"t0": 3, "t1": 3}) == {
        "C0": [("t0", 0), ("t0", 2), ("t1", 1)], "C1": [("t0", 1), ("t1", 0), ("t1", 2)]}
