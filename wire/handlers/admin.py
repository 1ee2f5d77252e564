"""ApiVersions, CreateTopics, DeleteTopics, DescribeConfigs.

ApiVersions advertises the registry's ranges (what the handlers implement) and, from v3, the
`transaction.version` feature finalized at level 2: clients that speak Kafka 4.0's transactions
(EndTxn v5, Produce v12) get them; older clients keep the classic protocol (the version each
request is sent with decides, see transactions.py). An unsupported ApiVersions version is
answered with UNSUPPORTED_VERSION and the list, in a v0 body (server.py calls
`api_versions_response(0, UNSUPPORTED_VERSION)`).

CreateTopics: replication factor -1 or 1 (one node), manual assignments only onto this node,
configs validated by logstore's LogConfig (INVALID_CONFIG names the key), validate_only honoured.
DeleteTopics: by name, or by topic id (v6); internal topics are refused (INVALID_REQUEST).
DescribeConfigs: topics (overrides as DYNAMIC_TOPIC_CONFIG, the rest as DEFAULT_CONFIG) and the
broker (its Broker and server settings, read-only).

Thread-safety: handlers run on the loop; store changes go through ctx.run.
"""

from __future__ import annotations

from logstore.config import LogConfig
from logstore.errors import InvalidPartitions, LogstoreError, TopicAlreadyExists
from logstore.store import PARTITIONS_MAX, validate_topic_name
from wire import schemas
from wire.handlers.common import (
    INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICATION_FACTOR, INVALID_REQUEST, NONE,
    UNKNOWN_TOPIC_OR_PARTITION, UNSUPPORTED_VERSION, ZERO_UUID, code_of, message_of,
    topic_by_id, topic_uuid)
from wire.registry import REGISTRY, ApiKey, handler

__all__ = ["api_versions_response", "UNSUPPORTED_VERSION"]

TRANSACTION_VERSION_FEATURE = "transaction.version"
TRANSACTION_VERSION_MAX = 2
FEATURES_EPOCH = 0
FEATURE_MIN_ZERO_FROM = 4        # ApiVersions v0-v3 omit features whose minimum is 0
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
SOURCE_DYNAMIC_TOPIC = 1
SOURCE_STATIC_BROKER = 4
SOURCE_DEFAULT = 5
CONFIG_TYPE_BOOLEAN = 1
CONFIG_TYPE_STRING = 2
CONFIG_TYPE_LONG = 5
CONFIGS_IN_CREATE_FROM = 5       # CreateTopics v5+ returns the new topic's configs


# -- ApiVersions --------------------------------------------------------------------------------

def api_versions_response(version: int, error: int = NONE):
    key = int(ApiKey.API_VERSIONS)
    entry = schemas.nested(key, version, "ApiVersion")
    keys = [schemas.build(entry, api_key=k, min_version=lo, max_version=hi)
            for k, lo, hi in REGISTRY.versions()]
    extra = {}
    if version >= 3:
        supported = []
        if version >= FEATURE_MIN_ZERO_FROM:
            supported.append(schemas.build(
                schemas.nested(key, version, "SupportedFeatureKey"),
                name=TRANSACTION_VERSION_FEATURE, min_version=0,
                max_version=TRANSACTION_VERSION_MAX))
        finalized = [schemas.build(
            schemas.nested(key, version, "FinalizedFeatureKey"),
            name=TRANSACTION_VERSION_FEATURE, max_version_level=TRANSACTION_VERSION_MAX,
            min_version_level=TRANSACTION_VERSION_MAX)]
        extra = dict(supported_features=supported, finalized_features_epoch=FEATURES_EPOCH,
                     finalized_features=finalized)
    return schemas.build(schemas.response_class(key, version), error_code=error,
                         api_keys=keys, throttle_time=0, **extra)


@handler(ApiKey.API_VERSIONS, 0, 4)
async def api_versions(ctx, request):
    return api_versions_response(ctx.api_version)


# -- CreateTopics -------------------------------------------------------------------------------

def _plan_topic(broker, topic, node_id: int) -> tuple[int, dict]:
    """(partitions, config) of a CreatableTopic, validated; raises with the Kafka code."""
    validate_topic_name(topic.name)
    if topic.replication_factor not in (-1, 1):
        raise _coded(INVALID_REPLICATION_FACTOR,
                     f"replication factor {topic.replication_factor}: there is one node")
    partitions = topic.num_partitions
    if topic.assignments:
        if partitions != -1:
            raise _coded(INVALID_REQUEST, "give either partitions or assignments, not both")
        ids = sorted(a.partition_index for a in topic.assignments)
        if ids != list(range(len(ids))) or any(
                list(a.broker_ids) != [node_id] for a in topic.assignments):
            raise _coded(INVALID_REPLICA_ASSIGNMENT,
                         f"assignments must cover partitions 0..n-1, each on node {node_id} "
                         "only")
        partitions = len(ids)
    elif partitions == -1:
        partitions = broker.config["num.partitions"]
    if not 1 <= partitions <= PARTITIONS_MAX:
        raise InvalidPartitions(f"partitions must be in [1, {PARTITIONS_MAX}], got {partitions}")
    config = {c.name: c.value for c in topic.configs}
    LogConfig.from_dict(config, broker.store.default_config)
    return partitions, config


def _coded(code: int, message: str) -> LogstoreError:
    err = LogstoreError(message)
    err.code = code
    return err


def _create_topics(broker, node_id: int, topics, validate_only: bool) -> list[tuple]:
    """[(name, error code, message, TopicInfo | None)] in request order."""
    names = [t.name for t in topics]
    results = []
    for topic in topics:
        if names.count(topic.name) > 1:
            results.append((topic.name, INVALID_REQUEST, "topic named twice in one request",
                            None))
            continue
        try:
            partitions, config = _plan_topic(broker, topic, node_id)
            if broker.store.has_topic(topic.name):
                raise TopicAlreadyExists(f"topic {topic.name!r} already exists")
            info = None
            if not validate_only:
                info = broker.store.create_topic(topic.name, partitions, config)
            results.append((topic.name, NONE, None, info or (partitions, config)))
        except Exception as exc:  # noqa: BLE001 - one topic's error is that topic's result
            results.append((topic.name, code_of(exc, "CreateTopics"), message_of(exc), None))
    return results


@handler(ApiKey.CREATE_TOPICS, 2, 7)
async def create_topics(ctx, request):
    results = await ctx.run(_create_topics, ctx.broker, ctx.server.node_id, request.topics,
                            request.validate_only)
    out = []
    for name, code, message, info in results:
        fields = dict(name=name, error_code=code, error_message=message, topic_id=ZERO_UUID,
                      configs=[])
        if hasattr(info, "partitions"):
            fields.update(topic_id=topic_uuid(info.topic_id), num_partitions=info.partitions,
                          replication_factor=1)
            if ctx.at_least(CONFIGS_IN_CREATE_FROM):
                fields["configs"] = _creatable_configs(ctx, info.config, info.overrides)
        elif info is not None:
            fields.update(num_partitions=info[0], replication_factor=1)
        out.append(ctx.nested("CreatableTopicResult", **fields))
    return ctx.response(throttle_time=0, topics=out)


def _creatable_configs(ctx, config: LogConfig, overrides: dict) -> list:
    return [ctx.nested("CreatableTopicConfigs", name=name, value=_text(value), read_only=False,
                       config_source=SOURCE_DYNAMIC_TOPIC if name in overrides
                       else SOURCE_DEFAULT, is_sensitive=False)
            for name, value in config.to_dict().items()]


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# -- DeleteTopics -------------------------------------------------------------------------------

def _delete_topics(broker, wanted: list[tuple[str | None, object]]) -> list[tuple]:
    """[(name, topic uuid, error code, message)] for [(name or None, uuid or None)]."""
    results = []
    for name, topic_id in wanted:
        if name is None and topic_id is not None:
            name = topic_by_id(broker.store, topic_id)
        try:
            if name is None or not broker.store.has_topic(name):
                results.append((name, topic_id or ZERO_UUID, UNKNOWN_TOPIC_OR_PARTITION,
                                "unknown topic"))
                continue
            info = broker.store.topic(name)
            if info.internal:
                results.append((name, topic_uuid(info.topic_id), INVALID_REQUEST,
                                "internal topics cannot be deleted"))
                continue
            broker.delete_topic(name)
            results.append((name, topic_uuid(info.topic_id), NONE, None))
        except Exception as exc:  # noqa: BLE001
            results.append((name, topic_id or ZERO_UUID, code_of(exc, "DeleteTopics"),
                            message_of(exc)))
    return results


@handler(ApiKey.DELETE_TOPICS, 1, 6)
async def delete_topics(ctx, request):
    if ctx.at_least(6):
        wanted = [(t.name, None if t.topic_id == ZERO_UUID else t.topic_id)
                  for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    results = await ctx.run(_delete_topics, ctx.broker, wanted)
    return ctx.response(throttle_time=0, responses=[
        ctx.nested("DeletableTopicResult", name=name, topic_id=topic_id, error_code=code,
                   error_message=message)
        for name, topic_id, code, message in results])


# -- DescribeConfigs ----------------------------------------------------------------------------

def _config_entries(ctx, values: dict, overrides: dict, read_only: bool,
                    keys) -> list:
    wanted = None if keys is None else set(keys)
    entries = []
    for name, value in values.items():
        if wanted is not None and name not in wanted:
            continue
        if read_only:
            source = SOURCE_STATIC_BROKER
        else:
            source = SOURCE_DYNAMIC_TOPIC if name in overrides else SOURCE_DEFAULT
        kind = (CONFIG_TYPE_BOOLEAN if isinstance(value, bool) else
                CONFIG_TYPE_LONG if isinstance(value, int) else CONFIG_TYPE_STRING)
        entries.append(ctx.nested("DescribeConfigsResourceResult", name=name,
                                  value=_text(value), read_only=read_only,
                                  config_source=source, is_sensitive=False, synonyms=[],
                                  config_type=kind, documentation=None))
    return entries


def _broker_values(ctx) -> dict:
    server = ctx.server
    values = dict(ctx.broker.config.values)
    values.update({"node.id": server.node_id,
                   "socket.request.max.bytes": server.config.request_max_bytes,
                   "connections.max.idle.ms": server.config.idle_ms,
                   "queued.max.requests": server.config.queued_requests,
                   "num.io.threads": server.config.io_threads})
    return values


def _describe_resource(ctx, resource):
    keys = resource.configuration_keys
    name = resource.resource_name
    try:
        if resource.resource_type == RESOURCE_TOPIC:
            info = ctx.broker.store.topic(name)
            configs = _config_entries(ctx, info.config.to_dict(), info.overrides, False, keys)
        elif resource.resource_type == RESOURCE_BROKER:
            if name not in ("", str(ctx.server.node_id)):
                raise _coded(INVALID_REQUEST, f"there is one broker, node {ctx.server.node_id}")
            configs = _config_entries(ctx, _broker_values(ctx), {}, True, keys)
        else:
            raise _coded(INVALID_REQUEST, f"resource type {resource.resource_type} is not "
                                          "supported (topics 2 and brokers 4 are)")
        code, message = NONE, None
    except Exception as exc:  # noqa: BLE001
        configs, code, message = [], code_of(exc, "DescribeConfigs"), message_of(exc)
    return ctx.nested("DescribeConfigsResult", error_code=code, error_message=message,
                      resource_type=resource.resource_type, resource_name=name,
                      configs=configs)


@handler(ApiKey.DESCRIBE_CONFIGS, 1, 4)
async def describe_configs(ctx, request):
    ctx.release_order()
    return ctx.response(throttle_time=0, results=[_describe_resource(ctx, r)
                                                  for r in request.resources])
