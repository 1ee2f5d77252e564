"""Metadata and FindCoordinator: one node leads everything.

Metadata lists this node as the only broker and the controller, and every partition with leader
= replicas = ISR = this node at leader epoch 0. Topics: all of them (null list, or an empty one
in v0), or those named (v10+ may name them by topic id). An unknown topic is created when the
request allows it (always before v4; `allow_auto_topic_creation` from v4) and the Broker's
`auto.create.topics.enable` is true, with `num.partitions` partitions, and is described at once
(Kafka answers LEADER_NOT_AVAILABLE first and lets the client retry; one node has nothing to
wait for). Otherwise UNKNOWN_TOPIC_OR_PARTITION; an invalid name gives INVALID_TOPIC_EXCEPTION.
Internal topics (`__consumer_offsets`, `__transaction_state`) are listed with is_internal.

FindCoordinator (key type 0 group, 1 transaction; v4+ several keys at once) always names this
node; other key types get INVALID_REQUEST.

Thread-safety: handlers run on the loop; topic creation goes through ctx.run.
"""

from __future__ import annotations

from logstore.errors import UnknownTopicOrPartition
from logstore.store import validate_topic_name
from wire.handlers.common import (
    AUTHORIZED_OPERATIONS_OMITTED, INVALID_REQUEST, LEADER_EPOCH, NONE, ZERO_UUID, code_of,
    topic_by_id, topic_uuid)
from wire.registry import ApiKey, handler

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1
# AclOperation codes a single-node server without ACLs allows on a topic: READ 3, WRITE 4,
# CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (4, 5, 7, 8, 9, 10, 11, 12))


def _wanted_topics(ctx, request) -> list[str] | None:
    """Names asked for, or None for every topic."""
    topics = request.topics
    if topics is None or (not topics and ctx.api_version == 0):
        return None
    names = []
    for topic in topics:
        name = topic.name
        if name is None and getattr(topic, "topic_id", ZERO_UUID) != ZERO_UUID:
            name = topic_by_id(ctx.broker.store, topic.topic_id) or str(topic.topic_id)
        names.append(name)
    return names


def _resolve(broker, names: list[str] | None, auto_create: bool) -> list[tuple]:
    """[(name, error code, TopicInfo | None)] (runs on a worker: creation fsyncs)."""
    store = broker.store
    if names is None:
        return [(name, NONE, info) for name, info in sorted(store.topics().items())]
    out = []
    for name in names:
        try:
            if not store.has_topic(name):
                validate_topic_name(name)
                if not auto_create:
                    raise UnknownTopicOrPartition(f"unknown topic {name!r}")
                broker.ensure_topic(name)
            out.append((name, NONE, store.topic(name)))
        except Exception as exc:  # noqa: BLE001 - the topic's error code
            out.append((name, code_of(exc, "Metadata"), None))
    return out


@handler(ApiKey.METADATA, 0, 12)
async def metadata(ctx, request):
    names = _wanted_topics(ctx, request)
    auto = bool(getattr(request, "allow_auto_topic_creation", True)) and \
        bool(ctx.broker.config["auto.create.topics.enable"])
    if names is None or all(ctx.broker.store.has_topic(n) for n in names):
        resolved = _resolve(ctx.broker, names, False)
    else:
        resolved = await ctx.run(_resolve, ctx.broker, names, auto)
    ctx.release_order()
    node = ctx.server.node_id
    include_ops = bool(getattr(request, "include_topic_authorized_operations", False))
    topics = []
    for name, code, info in resolved:
        partitions = [] if info is None else [
            ctx.nested("MetadataResponsePartition", error_code=NONE, partition_index=p,
                       leader_id=node, leader_epoch=LEADER_EPOCH, replica_nodes=[node],
                       isr_nodes=[node], offline_replicas=[])
            for p in range(info.partitions)]
        topics.append(ctx.nested(
            "MetadataResponseTopic", error_code=code, name=name,
            topic_id=ZERO_UUID if info is None else topic_uuid(info.topic_id),
            is_internal=info is not None and info.internal, partitions=partitions,
            topic_authorized_operations=TOPIC_OPERATIONS if include_ops
            else AUTHORIZED_OPERATIONS_OMITTED))
    include_cluster_ops = bool(getattr(request, "include_cluster_authorized_operations", False))
    broker = ctx.nested("MetadataResponseBroker", node_id=node,
                        host=ctx.server.advertised_host, port=ctx.server.advertised_port,
                        rack=None)
    return ctx.response(
        throttle_time=0, brokers=[broker], cluster_id=ctx.broker.store.cluster_id,
        controller_id=node, topics=topics,
        cluster_authorized_operations=CLUSTER_OPERATIONS if include_cluster_ops
        else AUTHORIZED_OPERATIONS_OMITTED)


def _coordinator(ctx, key: str, key_type: int) -> dict:
    if key_type not in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        return dict(key=key, error_code=INVALID_REQUEST, node_id=-1, host="", port=-1,
                    error_message=f"key type {key_type} is not supported")
    if not key:
        return dict(key=key, error_code=INVALID_REQUEST, node_id=-1, host="", port=-1,
                    error_message="an empty coordinator key")
    return dict(key=key, error_code=NONE, node_id=ctx.server.node_id,
                host=ctx.server.advertised_host, port=ctx.server.advertised_port,
                error_message=None)


@handler(ApiKey.FIND_COORDINATOR, 0, 5)
async def find_coordinator(ctx, request):
    ctx.release_order()
    key_type = getattr(request, "key_type", KEY_TYPE_GROUP)
    if ctx.at_least(4):
        return ctx.response(throttle_time=0, coordinators=[
            ctx.nested("Coordinator", **_coordinator(ctx, key, key_type))
            for key in request.coordinator_keys])
    found = _coordinator(ctx, request.key, key_type)
    found.pop("key")
    if not ctx.at_least(1) and found["error_code"] != NONE:
        found["host"], found["port"] = "", -1
    return ctx.response(throttle_time=0, **found)
