"""Client-side partition assignors of the classic consumer protocol ("range", "roundrobin").

In the classic protocol the group leader (a consumer) computes the assignment from every
member's Subscription and hands it to the coordinator in SyncGroup. These are transcriptions of
Kafka's RangeAssignor and RoundRobinAssignor (clients/.../consumer/{Range,RoundRobin}Assignor
.java, without rack awareness: with no rack ids Kafka's result is the same):

  - Members are ordered as AbstractPartitionAssignor.MemberInfo.compareTo orders them: members
    with a group.instance.id first, by instance id; then the others by member id. Strings compare
    as Java's String.compareTo does (UTF-16 code units), not by Python code points.
  - range: per topic, the members subscribed to it in that order; n partitions over m members
    give n // m each and one more to each of the first n % m, in contiguous ranges. Topics are
    taken in sorted order, so a member's list is sorted (Kafka walks a HashMap: same sets,
    unspecified list order).
  - roundrobin: all partitions of all subscribed topics (topics sorted, partitions ascending)
    dealt in turn over the sorted members, skipping a member not subscribed to the topic.

Topics missing from partitions_per_topic are skipped (no metadata). Every member appears in the
result, possibly with no partitions.

`assign_members` runs an assignor over JoinGroup member metadata (consumer_protocol bytes) and
returns SyncGroup assignment bytes: what the embedded consumer does when it leads a group.

Thread-safety: pure functions.
"""

from __future__ import annotations

from typing import Callable, Mapping

from txn import consumer_protocol as cp

RANGE = "range"
ROUNDROBIN = "roundrobin"

Members = Mapping[str, "list[str] | set[str] | tuple[str, ...]"]
AssignmentMap = dict[str, list[tuple[str, int]]]


def java_order(text: str) -> bytes:
    """A sort key equal to Java's String.compareTo order (UTF-16 code units)."""
    return text.encode("utf-16-be", "surrogatepass")


def member_order(member_ids, group_instance_ids: Mapping[str, str | None] | None = None):
    """The member ids in MemberInfo.compareTo order."""
    instance = group_instance_ids or {}

    def key(member_id: str):
        instance_id = instance.get(member_id)
        if instance_id is not None:
            return (0, java_order(instance_id), b"")
        return (1, b"", java_order(member_id))
    return sorted(member_ids, key=key)


def range_assign(members: Members, partitions_per_topic: Mapping[str, int],
                 group_instance_ids: Mapping[str, str | None] | None = None) -> AssignmentMap:
    """Kafka's RangeAssignor: members {member_id: subscribed topics} -> {member_id: [(t, p)]}."""
    assignment: AssignmentMap = {member_id: [] for member_id in members}
    consumers_per_topic: dict[str, list[str]] = {}
    for member_id, topics in members.items():
        for topic in topics:
            consumers_per_topic.setdefault(topic, []).append(member_id)
    for topic in sorted(consumers_per_topic, key=java_order):
        consumers = consumers_per_topic[topic]
        count = partitions_per_topic.get(topic)
        if count is None:
            continue
        consumers = member_order(consumers, group_instance_ids)
        per_consumer, with_extra = divmod(count, len(consumers))
        for i, member_id in enumerate(consumers):
            start = per_consumer * i + min(i, with_extra)
            length = per_consumer + (1 if i < with_extra else 0)
            assignment[member_id].extend((topic, p) for p in range(start, start + length))
    return assignment


def roundrobin_assign(members: Members, partitions_per_topic: Mapping[str, int],
                      group_instance_ids: Mapping[str, str | None] | None = None
                      ) -> AssignmentMap:
    """Kafka's RoundRobinAssignor."""
    assignment: AssignmentMap = {member_id: [] for member_id in members}
    ordered = member_order(members, group_instance_ids)
    if not ordered:
        return assignment
    subscribed = {member_id: set(topics) for member_id, topics in members.items()}
    topics = sorted({t for ts in subscribed.values() for t in ts}, key=java_order)
    turn = 0
    for topic in topics:
        for partition in range(partitions_per_topic.get(topic, 0)):
            while topic not in subscribed[ordered[turn % len(ordered)]]:
                turn += 1
            assignment[ordered[turn % len(ordered)]].append((topic, partition))
            turn += 1
    return assignment


ASSIGNORS: dict[str, Callable[..., AssignmentMap]] = {
    RANGE: range_assign,
    ROUNDROBIN: roundrobin_assign,
}


def assign_members(protocol_name: str, members, partitions_per_topic: Mapping[str, int]
                   ) -> dict[str, bytes]:
    """Leader side of SyncGroup: members [(member_id, group_instance_id, subscription bytes)]
    as JoinGroup hands them to the leader -> {member_id: assignment bytes}. Each assignment is
    encoded at the version of the member's subscription (capped at the newest known)."""
    assignor = ASSIGNORS.get(protocol_name)
    if assignor is None:
        raise ValueError(f"unknown assignor {protocol_name!r} (known: {sorted(ASSIGNORS)})")
    subscriptions = {member_id: cp.decode_subscription(metadata)
                     for member_id, _instance, metadata in members}
    instances = {member_id: instance for member_id, instance, _metadata in members}
    result = assignor({m: s.topics for m, s in subscriptions.items()}, partitions_per_topic,
                      instances)
    return {member_id: cp.encode_assignment(
                cp.Assignment(partitions, None),
                min(subscriptions[member_id].version, cp.HIGHEST_ASSIGNMENT_VERSION))
            for member_id, partitions in result.items()}
