"""Classic consumer groups over the wire: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
DescribeGroups, ListGroups, OffsetCommit, OffsetFetch.

All of them call `broker.group_coordinator` (txn/group_coordinator.py), which implements
Kafka's classic group protocol: the group leader (a client) computes the assignment and sends
it in its SyncGroup; the coordinator only relays it. JoinGroup and SyncGroup return
concurrent Futures that complete when the join or sync phase completes (possibly much later,
when the other members arrive); the handler awaits them with `asyncio.wrap_future`, so a parked
request holds no thread. JoinGroup v4+ requires a known member id (MEMBER_ID_REQUIRED first).

Versions and fields:
  - JoinGroup v0 has no rebalance timeout (-1: the session timeout); protocol names and types
    are non-nullable before v7, so an error response carries "" there.
  - LeaveGroup v0-v2 name one member; v3+ a batch of (member id, group instance id), each with
    its own error code.
  - OffsetCommit v2-v4 carry a retention time (-1: the broker default); it becomes the
    record's expire timestamp. Offsets of unknown topics or partitions get
    UNKNOWN_TOPIC_OR_PARTITION, as Kafka's KafkaApis checks before the coordinator.
  - OffsetFetch: topics null (v2+) means every committed partition; v7+ require_stable answers
    UNSTABLE_OFFSET_COMMIT for offsets pending in an open transaction (KIP-447); v8+ batch
    several groups.
Group-level errors (the coordinator raises them) become every partition's code, and the
top-level code where the version has one.

Thread-safety: coordinator calls that may block (group locks held across offset appends) run on
worker threads via ctx.run.
"""

from __future__ import annotations

import asyncio

from txn.group_coordinator import OffsetAndMetadata
from wire.handlers.common import NONE, UNKNOWN_TOPIC_OR_PARTITION, code_of
from wire.registry import ApiKey, handler

MEMBER_ID_REQUIRED_FROM = 4          # JoinGroup v4: KIP-394
NULLABLE_PROTOCOL_FROM = 7           # JoinGroup v7 / SyncGroup v5: nullable protocol fields
BATCH_LEAVE_FROM = 3
BATCH_FETCH_FROM = 8
CLASSIC = "classic"
NO_EXPIRY = -1


def _ms(value) -> int:
    return round(value.total_seconds() * 1000)


# -- JoinGroup / SyncGroup ----------------------------------------------------------------------

def _join_error(ctx, request, code: int):
    return ctx.response(throttle_time=0, error_code=code, generation_id=-1,
                        protocol_type=None if ctx.at_least(NULLABLE_PROTOCOL_FROM) else "",
                        protocol_name=None if ctx.at_least(NULLABLE_PROTOCOL_FROM) else "",
                        leader="", skip_assignment=False,
                        member_id=getattr(request, "member_id", "") or "", members=[])


@handler(ApiKey.JOIN_GROUP, 0, 9, error=_join_error)
async def join_group(ctx, request):
    rebalance = getattr(request, "rebalance_timeout", None)
    future = await ctx.run(
        ctx.broker.group_coordinator.join_group, request.group_id, request.member_id,
        getattr(request, "group_instance_id", None), ctx.client_id, ctx.client_host,
        _ms(request.session_timeout), -1 if rebalance is None else _ms(rebalance),
        request.protocol_type, [(p.name, p.metadata) for p in request.protocols],
        ctx.api_version >= MEMBER_ID_REQUIRED_FROM)
    ctx.release_order()
    result = await asyncio.wrap_future(future)
    nullable = ctx.at_least(NULLABLE_PROTOCOL_FROM)
    members = [ctx.nested("JoinGroupResponseMember", member_id=m.member_id,
                          group_instance_id=m.group_instance_id, metadata=m.metadata)
               for m in result.members]
    return ctx.response(
        throttle_time=0, error_code=result.error_code, generation_id=result.generation_id,
        protocol_type=result.protocol_type if nullable else (result.protocol_type or ""),
        protocol_name=result.protocol_name if nullable else (result.protocol_name or ""),
        leader=result.leader, skip_assignment=result.skip_assignment,
        member_id=result.member_id, members=members)


def _sync_error(ctx, request, code: int):
    return ctx.response(throttle_time=0, error_code=code, protocol_type=None,
                        protocol_name=None, assignment=b"")


@handler(ApiKey.SYNC_GROUP, 0, 5, error=_sync_error)
async def sync_group(ctx, request):
    assignments = {a.member_id: a.assignment for a in request.assignments}
    future = await ctx.run(
        ctx.broker.group_coordinator.sync_group, request.group_id, request.generation_id,
        request.member_id, getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None), assignments,
        getattr(request, "group_instance_id", None))
    ctx.release_order()
    result = await asyncio.wrap_future(future)
    return ctx.response(throttle_time=0, error_code=result.error_code,
                        protocol_type=result.protocol_type, protocol_name=result.protocol_name,
                        assignment=result.assignment)


# -- Heartbeat / LeaveGroup ---------------------------------------------------------------------

def _heartbeat(coordinator, request) -> int:
    try:
        coordinator.heartbeat(request.group_id, request.generation_id, request.member_id,
                              getattr(request, "group_instance_id", None))
        return NONE
    except Exception as exc:  # noqa: BLE001
        return code_of(exc, "Heartbeat")


@handler(ApiKey.HEARTBEAT, 0, 4)
async def heartbeat(ctx, request):
    code = await ctx.run(_heartbeat, ctx.broker.group_coordinator, request)
    return ctx.response(throttle_time=0, error_code=code)


def _leave(coordinator, group_id: str, members) -> list[tuple[str, str | None, int]]:
    try:
        results = coordinator.leave_group(group_id, members)
    except Exception as exc:  # noqa: BLE001 - the group's error for every member
        code = code_of(exc, "LeaveGroup")
        return [(m, None, code) if isinstance(m, str) else (m[0], m[1], code)
                for m in members]
    return [(r.member_id, r.group_instance_id, NONE if r.error is None
             else code_of(r.error, "LeaveGroup")) for r in results]


@handler(ApiKey.LEAVE_GROUP, 0, 5)
async def leave_group(ctx, request):
    coordinator = ctx.broker.group_coordinator
    if not ctx.at_least(BATCH_LEAVE_FROM):
        results = await ctx.run(_leave, coordinator, request.group_id, [request.member_id])
        return ctx.response(throttle_time=0, error_code=results[0][2])
    members = [(m.member_id, m.group_instance_id) for m in request.members]
    results = await ctx.run(_leave, coordinator, request.group_id, members)
    return ctx.response(throttle_time=0, error_code=NONE, members=[
        ctx.nested("MemberResponse", member_id=member_id, group_instance_id=instance_id,
                   error_code=code) for member_id, instance_id, code in results])


# -- DescribeGroups / ListGroups ----------------------------------------------------------------

@handler(ApiKey.DESCRIBE_GROUPS, 0, 5)
async def describe_groups(ctx, request):
    described = await ctx.run(ctx.broker.group_coordinator.describe_groups,
                              list(request.groups))
    groups = []
    for group in described:
        members = [ctx.nested("DescribedGroupMember", member_id=m.member_id,
                              group_instance_id=m.group_instance_id, client_id=m.client_id,
                              client_host=m.client_host, member_metadata=m.metadata,
                              member_assignment=m.assignment) for m in group.members]
        groups.append(ctx.nested(
            "DescribedGroup", error_code=NONE, group_id=group.group_id,
            group_state=group.state, protocol_type=group.protocol_type,
            protocol_data=group.protocol_data, members=members))
    return ctx.response(throttle_time=0, groups=groups)


@handler(ApiKey.LIST_GROUPS, 0, 5)
async def list_groups(ctx, request):
    states = list(getattr(request, "states_filter", ()) or ()) or None
    types = {t.lower() for t in getattr(request, "types_filter", ()) or ()}
    listed = [] if types and CLASSIC not in types else \
        await ctx.run(ctx.broker.group_coordinator.list_groups, states)
    return ctx.response(throttle_time=0, error_code=NONE, groups=[
        ctx.nested("ListedGroup", group_id=g.group_id, protocol_type=g.protocol_type,
                   group_state=g.state, group_type=CLASSIC) for g in listed])


# -- OffsetCommit -------------------------------------------------------------------------------

def known_partition(store, topic: str, partition: int) -> bool:
    return store.has_topic(topic) and 0 <= partition < store.topic(topic).partitions


def commit_plan(broker, topics, expire: int | None):
    """({(t, p): OffsetAndMetadata} to commit, {(t, p): code} refused up front)."""
    offsets, refused = {}, {}
    for topic in topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            if not known_partition(broker.store, *tp):
                refused[tp] = UNKNOWN_TOPIC_OR_PARTITION
                continue
            offsets[tp] = OffsetAndMetadata(
                p.committed_offset, getattr(p, "committed_leader_epoch", -1),
                p.committed_metadata or "", expire_timestamp=expire)
    return offsets, refused


def commit_results(offsets: dict, refused: dict, call) -> dict:
    """{(t, p): code}: call() -> {(t, p): error | None}; a raised group error is everyone's."""
    codes = dict(refused)
    if not offsets:
        return codes
    try:
        results = call()
    except Exception as exc:  # noqa: BLE001 - a group-level error
        code = code_of(exc, "offset commit")
        codes.update({tp: code for tp in offsets})
        return codes
    for tp in offsets:
        error = results.get(tp)
        codes[tp] = NONE if error is None else code_of(error, "offset commit")
    return codes


def _commit(broker, request, expire_ms: int | None):
    offsets, refused = commit_plan(broker, request.topics, expire_ms)
    coordinator = broker.group_coordinator
    return commit_results(offsets, refused, lambda: coordinator.commit_offsets(
        request.group_id, request.generation_id_or_member_epoch, request.member_id, offsets,
        getattr(request, "group_instance_id", None)))


def commit_response(ctx, topics, codes: dict, topic_name: str, partition_name: str):
    return ctx.response(throttle_time=0, topics=[
        ctx.nested(topic_name, name=t.name, partitions=[
            ctx.nested(partition_name, partition_index=p.partition_index,
                       error_code=codes[(t.name, p.partition_index)])
            for p in t.partitions])
        for t in topics])


@handler(ApiKey.OFFSET_COMMIT, 2, 9)
async def offset_commit(ctx, request):
    retention = getattr(request, "retention_time", None)
    expire = None
    if retention is not None and _ms(retention) != NO_EXPIRY:
        expire = ctx.broker.time_ms() + _ms(retention)
    codes = await ctx.run(_commit, ctx.broker, request, expire)
    return commit_response(ctx, request.topics, codes, "OffsetCommitResponseTopic",
                           "OffsetCommitResponsePartition")


# -- OffsetFetch --------------------------------------------------------------------------------

def _fetch_group(coordinator, group_id: str, topics, require_stable: bool):
    """(group error code, [(topic, [(partition, offset, epoch, metadata, code)])])."""
    partitions = None if topics is None else [
        (t.name, p) for t in topics for p in t.partition_indexes]
    try:
        found = coordinator.fetch_offsets(group_id, partitions, require_stable)
    except Exception as exc:  # noqa: BLE001
        code = code_of(exc, "OffsetFetch")
        rows = [] if partitions is None else partitions
        found = {tp: code for tp in rows}
        group_code = code
    else:
        group_code = NONE
    by_topic: dict[str, list] = {}
    for (topic, partition), value in sorted(found.items()):
        if isinstance(value, OffsetAndMetadata):
            row = (partition, value.offset, value.leader_epoch, value.metadata, NONE)
        else:
            code = value if isinstance(value, int) else code_of(value, "OffsetFetch")
            row = (partition, -1, -1, "", code)
        by_topic.setdefault(topic, []).append(row)
    return group_code, list(by_topic.items())


def _fetch_topics(ctx, rows, topic_name: str, partition_name: str) -> list:
    return [ctx.nested(topic_name, name=topic, partitions=[
        ctx.nested(partition_name, partition_index=p, committed_offset=offset,
                   committed_leader_epoch=epoch, metadata=metadata, error_code=code)
        for p, offset, epoch, metadata, code in parts]) for topic, parts in rows]


@handler(ApiKey.OFFSET_FETCH, 1, 9)
async def offset_fetch(ctx, request):
    ctx.release_order()
    coordinator = ctx.broker.group_coordinator
    stable = bool(getattr(request, "require_stable", False))
    if not ctx.at_least(BATCH_FETCH_FROM):
        code, rows = await ctx.run(_fetch_group, coordinator, request.group_id,
                                   request.topics, stable)
        return ctx.response(throttle_time=0, error_code=code, topics=_fetch_topics(
            ctx, rows, "OffsetFetchResponseTopic", "OffsetFetchResponsePartition"))
    groups = []
    for group in request.groups:
        code, rows = await ctx.run(_fetch_group, coordinator, group.group_id, group.topics,
                                   stable)
        groups.append(ctx.nested("OffsetFetchResponseGroup", group_id=group.group_id,
                                 error_code=code, topics=_fetch_topics(
                                     ctx, rows, "OffsetFetchResponseTopics",
                                     "OffsetFetchResponsePartitions")))
    return ctx.response(throttle_time=0, groups=groups)
